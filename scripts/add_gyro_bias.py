#!/usr/bin/env python3
"""Adds a constant gyro bias to the /odom dead reckoning of a rosbag2 bag (MCAP out).

The odometry's body-frame increments are re-integrated with the heading turned by an
extra b*(t - t0), b chosen so that the heading error reaches TOTAL_RAD at the last
message: the common failure of wheel/IMU odometry (a heading error growing linearly in
time), applied to real odometry and real ranges. `--profile quadratic` makes the bias
itself grow linearly from 0 (a heading error TOTAL_RAD*u^2, u the fraction of the bag:
a bias that drifts with temperature). Every other topic is copied unchanged,
and ground_truth.yaml too when the input has one. The first pose is kept, so beacon
positions in the input's frame stay the truth for the output.

    scripts/with_ros python3 scripts/add_gyro_bias.py IN_BAG OUT_BAG TOTAL_RAD [--profile quadratic]

Used for README "Drifting odometry" (Plaza1 DR with +-2 and +4 rad): a stand-in for a
gyro-biased data set, built from data the repository has.
"""
import argparse
import math
import shutil
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore


def yaw_of(q):
    return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


def stamp_s(msg):
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("in_bag", type=Path)
    parser.add_argument("out_bag", type=Path)
    parser.add_argument("total_rad", type=float, help="heading error at the last /odom message, rad")
    parser.add_argument("--odom-topic", default="/odom")
    parser.add_argument(
        "--profile",
        choices=["linear", "quadratic"],
        default="linear",
        help="heading error against the fraction u of the bag: TOTAL_RAD*u (a constant bias) or TOTAL_RAD*u^2",
    )
    args = parser.parse_args()
    store = get_typestore(Stores.ROS2_JAZZY)
    if args.out_bag.exists():
        parser.error(f"{args.out_bag} exists")
    with AnyReader([args.in_bag], default_typestore=store) as reader:
        odom = [c for c in reader.connections if c.topic == args.odom_topic]
        if not odom:
            parser.error(f"no {args.odom_topic} in {args.in_bag}")
        stamps = [stamp_s(reader.deserialize(raw, c.msgtype)) for c, _, raw in reader.messages(connections=odom)]
        t0, t1 = stamps[0], stamps[-1]
        power = 1 if args.profile == "linear" else 2

        def heading_error(t):
            return args.total_rad * ((t - t0) / (t1 - t0)) ** power

        print(f"gyro bias {power * args.total_rad / (t1 - t0):.4e} rad/s at the end, over {t1 - t0:.0f} s ({args.profile})")
        with Writer(args.out_bag, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
            out = {c.topic: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
            previous = None  # (x, y, yaw) of the input's previous pose
            x = y = heading = 0.0
            for c, t, raw in reader.messages():
                if c.topic != args.odom_topic:
                    writer.write(out[c.topic], t, raw)
                    continue
                m = reader.deserialize(raw, c.msgtype)
                p, yaw = m.pose.pose.position, yaw_of(m.pose.pose.orientation)
                if previous is None:
                    x, y, heading = p.x, p.y, yaw
                else:
                    px, py, pyaw = previous
                    dx, dy = p.x - px, p.y - py
                    # The increment in the previous body frame, replayed from the biased heading.
                    forward = math.cos(pyaw) * dx + math.sin(pyaw) * dy
                    left = -math.sin(pyaw) * dx + math.cos(pyaw) * dy
                    x += math.cos(heading) * forward - math.sin(heading) * left
                    y += math.sin(heading) * forward + math.cos(heading) * left
                    heading = yaw + heading_error(stamp_s(m))
                previous = (p.x, p.y, yaw)
                m.pose.pose.position.x, m.pose.pose.position.y = x, y
                o = m.pose.pose.orientation
                o.x, o.y, o.z, o.w = 0.0, 0.0, math.sin(heading / 2), math.cos(heading / 2)
                writer.write(out[c.topic], t, store.serialize_cdr(m, c.msgtype))
    truth = args.in_bag / "ground_truth.yaml"
    if truth.exists():
        shutil.copy(truth, args.out_bag / "ground_truth.yaml")


if __name__ == "__main__":
    main()
