"""sim_range_sensor end to end: rclpy publishes odometry, the Rust node publishes
ranges, and the test checks them against distances it computes itself."""

import math
import subprocess

import pytest
from nav_msgs.msg import Odometry
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Range

from landmark_flow.msg import RangeMeasurement

from conftest import executable, write_params

LANDMARKS = {"beacon_a": (4.7, -3.1, 0.0), "beacon_b": (-20.0, 10.0, 1.5)}
OFFSET = (0.3, 0.1, 0.2)  # sensor in base_link, m
SIGMA = 0.5
OUTLIER_P = 0.1
MAX_RANGE = 100.0


def sensor_params(**overrides):
    p = {
        "rate_hz": 100.0,
        "noise_std_m": SIGMA,
        "outlier_probability": OUTLIER_P,
        "dropout_probability": 0.0,
        "max_range_m": MAX_RANGE,
        "sensor_offset_m": list(OFFSET),
        "frame_id": "uwb_link",
        "report_variance": True,
        "publish_sensor_msgs_range": True,
        "seed": 7,
        "landmarks": {
            "ids": list(LANDMARKS),
            "positions_m": [v for p in LANDMARKS.values() for v in p],
        },
    }
    p.update(overrides)
    return p


def pose_at(t):
    """Robot on a circle of radius 3 m, heading along the tangent."""
    w = 0.5
    x, y = 3.0 * math.cos(w * t), 3.0 * math.sin(w * t)
    yaw = w * t + math.pi / 2
    return x, y, yaw


def sensor_position(x, y, yaw):
    ox, oy, oz = OFFSET
    return (x + math.cos(yaw) * ox - math.sin(yaw) * oy,
            y + math.sin(yaw) * ox + math.cos(yaw) * oy,
            oz)


def test_ranges_have_the_configured_statistics(peer, start_node, tmp_path):
    start_node("sim_range_sensor",
               params_file=write_params(tmp_path, "sim_range_sensor", sensor_params()))
    node = peer.node
    odom_pub = node.create_publisher(Odometry, "odom", 10)
    ranges, raws = [], []
    node.create_subscription(RangeMeasurement, "range", ranges.append, 100)
    node.create_subscription(Range, "range_raw", raws.append, qos_profile_sensor_data)

    truth = {}  # stamp (sec, nanosec) -> sensor position

    def publish_odom():
        t = node.get_clock().now()
        sec, nsec = t.seconds_nanoseconds()
        x, y, yaw = pose_at(sec + nsec * 1e-9)
        msg = Odometry()
        msg.header.stamp = t.to_msg()
        msg.header.frame_id = "odom"
        msg.child_frame_id = "base_link"
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        msg.pose.pose.orientation.z = math.sin(yaw / 2)
        msg.pose.pose.orientation.w = math.cos(yaw / 2)
        truth[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = sensor_position(x, y, yaw)
        odom_pub.publish(msg)

    node.create_timer(0.01, publish_odom)
    assert peer.spin_until(lambda: len(ranges) >= 10, timeout_s=20), "no ranges arrived"
    ranges.clear()
    raws.clear()
    assert peer.spin_until(lambda: len(ranges) >= 3000, timeout_s=60), f"only {len(ranges)} ranges"

    inliers, outliers = [], 0
    for m in ranges:
        assert m.header.frame_id == "uwb_link"
        assert m.landmark_id in LANDMARKS
        assert m.variance == pytest.approx(SIGMA**2)
        key = (m.header.stamp.sec, m.header.stamp.nanosec)
        assert key in truth, "measurement stamp is not an odometry stamp"
        d = math.dist(truth[key], LANDMARKS[m.landmark_id])
        e = m.range - d
        if abs(e) > 5 * SIGMA:
            outliers += 1
        else:
            inliers.append(e)
    n = len(ranges)
    # A uniform outlier on [0, MAX_RANGE] falls within ±5σ of the truth with
    # probability 10σ/MAX_RANGE; those count as inliers here.
    expected_outliers = OUTLIER_P * (1 - 10 * SIGMA / MAX_RANGE)
    frac = outliers / n
    tol = 4 * math.sqrt(expected_outliers * (1 - expected_outliers) / n)
    assert abs(frac - expected_outliers) < tol, (frac, expected_outliers)
    k = len(inliers)
    mean = sum(inliers) / k
    std = math.sqrt(sum((e - mean) ** 2 for e in inliers) / (k - 1))
    # Inliers include the few outliers inside ±5σ (about 0.5 % of them): they widen
    # the std by well under 1 %. Bounds: 4 standard errors.
    assert abs(mean) < 4 * SIGMA / math.sqrt(k), mean
    assert abs(std - SIGMA) < 4 * SIGMA / math.sqrt(2 * k) + 0.01 * SIGMA, std
    print(f"{n} ranges: mean error {mean:+.4f} m, std {std:.4f} m (sigma {SIGMA}), "
          f"outliers {frac:.3f} (expected {expected_outliers:.3f})")

    assert peer.spin_until(lambda: len(raws) >= 20, timeout_s=10)
    for r in raws:
        assert r.header.frame_id in LANDMARKS
        assert r.max_range == pytest.approx(MAX_RANGE)


def run_until_exit(args, env, timeout_s=20):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.parametrize("override, parameter", [
    ({"noise_std_m": -1.0}, "noise_std_m"),
    ({"landmarks": {"ids": ["a"], "positions_m": [1.0, 2.0]}}, "landmarks.positions_m"),
    ({"rate_hz": 0.0}, "rate_hz"),
    ({"noise_sdt_m": 1.0}, "noise_sdt_m"),
])
def test_invalid_parameter_exits_nonzero_naming_it(ros_env, tmp_path, override, parameter):
    params = write_params(tmp_path, "sim_range_sensor", sensor_params(**override))
    r = run_until_exit([executable("sim_range_sensor"), "--ros-args", "--params-file", str(params)],
                       ros_env)
    assert r.returncode != 0
    assert parameter in r.stderr + r.stdout, r.stderr + r.stdout


def test_empty_landmark_list_is_rejected(ros_env, tmp_path):
    params = sensor_params()
    del params["landmarks"]
    path = write_params(tmp_path, "sim_range_sensor", params)
    r = run_until_exit([executable("sim_range_sensor"), "--ros-args", "--params-file", str(path)],
                       ros_env)
    assert r.returncode != 0
    assert "landmarks.ids" in r.stderr, r.stderr


def test_command_line_override_wins(ros_env, tmp_path):
    path = write_params(tmp_path, "sim_range_sensor", sensor_params())
    r = run_until_exit([executable("sim_range_sensor"), "--ros-args", "--params-file", str(path),
                        "-p", "dropout_probability:=2.0"], ros_env)
    assert r.returncode != 0
    assert "dropout_probability" in r.stderr, r.stderr
