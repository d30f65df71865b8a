"""scripts/add_gyro_bias.py against the closed form: a robot driving straight at
1 m/s whose heading is turned by b*t drives the arc x = sin(bt)/b, y = (1 - cos(bt))/b.
Written and read back with the PyPI `rosbags` library; other topics pass unchanged."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from conftest import REPO

STORE = get_typestore(Stores.ROS2_JAZZY)
T = STORE.types


def write_straight_bag(path, seconds=20.0, rate_hz=50.0):
    Odometry, Header, Time = T["nav_msgs/msg/Odometry"], T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    Range = T["sensor_msgs/msg/Range"]
    g = "geometry_msgs/msg/"
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        odom = w.add_connection("/odom", Odometry.__msgtype__, typestore=STORE)
        rng = w.add_connection("/range", Range.__msgtype__, typestore=STORE)
        for k in range(int(seconds * rate_hz) + 1):
            t = 100.0 + k / rate_hz
            stamp = Time(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
            pose = T[g + "Pose"](position=T[g + "Point"](x=k / rate_hz, y=0.0, z=0.0),
                                 orientation=T[g + "Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0))
            twist = T[g + "Twist"](linear=T[g + "Vector3"](x=1.0, y=0.0, z=0.0), angular=T[g + "Vector3"](x=0.0, y=0.0, z=0.0))
            msg = Odometry(header=Header(stamp=stamp, frame_id="odom"), child_frame_id="base_link",
                           pose=T[g + "PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
                           twist=T[g + "TwistWithCovariance"](twist=twist, covariance=np.zeros(36)))
            w.write(odom, int(t * 1e9), STORE.serialize_cdr(msg, msg.__msgtype__))
            if k % 10 == 0:
                r = Range(header=Header(stamp=stamp, frame_id="beacon_0"), radiation_type=2, field_of_view=1.0,
                          min_range=0.0, max_range=200.0, range=float(k), variance=0.0)
                w.write(rng, int(t * 1e9) + 1, STORE.serialize_cdr(r, r.__msgtype__))


def read(path, topic):
    with AnyReader([Path(path)], default_typestore=STORE) as r:
        conns = [c for c in r.connections if c.topic == topic]
        return [r.deserialize(raw, c.msgtype) for c, _, raw in r.messages(connections=conns)]


def test_a_straight_drive_becomes_the_arc_of_the_biased_heading(tmp_path):
    src, out = tmp_path / "straight", tmp_path / "biased"
    write_straight_bag(src)
    subprocess.run([sys.executable, str(REPO / "scripts" / "add_gyro_bias.py"), str(src), str(out), "1.0"],
                   check=True, capture_output=True, text=True)
    poses = read(out, "/odom")
    b = 1.0 / 20.0  # rad/s: 1 rad over the 20 s
    worst = 0.0
    for m in poses:
        t = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 - 100.0
        p, q = m.pose.pose.position, m.pose.pose.orientation
        # Each 0.02 m step is taken along the previous heading: the discrete arc lags
        # the continuous one by at most half a step's turn, |dx| <= b * dt * t / 2.
        x, y = math.sin(b * t) / b, (1 - math.cos(b * t)) / b
        worst = max(worst, math.hypot(p.x - x, p.y - y))
        assert abs(2 * math.atan2(q.z, q.w) - b * t) < 1e-9
    assert worst < b * 0.02 * 20.0, worst
    assert abs(2 * math.atan2(poses[-1].pose.pose.orientation.z, poses[-1].pose.pose.orientation.w) - 1.0) < 1e-9
    # Other topics unchanged.
    assert [m.range for m in read(out, "/range")] == [m.range for m in read(src, "/range")]
