#!/usr/bin/env python3
"""make demo (for now): start sim_range_sensor with config/sim_range_sensor.yaml, drive
a scripted robot around a 3 m circle by publishing odometry from rclpy, and print
the ranges the sensor publishes next to the true distances.

Run through scripts/with_ros (make demo does), which keeps DDS on this machine."""

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import rclpy
import rclpy.executors
import yaml
from nav_msgs.msg import Odometry

from landmark_flow.msg import RangeMeasurement

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "sim_range_sensor.yaml"
DURATION_S = 10.0


def main():
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain = int(os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 5)))
    params = yaml.safe_load(CONFIG.read_text())["sim_range_sensor"]["ros__parameters"]
    lm = params["landmarks"]
    landmarks = {i: tuple(lm["positions_m"][3 * k:3 * k + 3]) for k, i in enumerate(lm["ids"])}
    offset = params["sensor_offset_m"]

    exe = shutil.which("sim_range_sensor")
    if exe is None:
        sys.exit("sim_range_sensor not found: run `make demo` (it builds first)")
    sensor = subprocess.Popen([exe, "--ros-args", "--params-file", str(CONFIG)])

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("demo_odometry", context=context)
    pub = node.create_publisher(Odometry, "odom", 10)
    truth = {}
    received = []

    def publish_odom():
        now = node.get_clock().now()
        t = now.nanoseconds * 1e-9
        yaw = 0.3 * t + math.pi / 2
        x, y = 3.0 * math.cos(0.3 * t), 3.0 * math.sin(0.3 * t)
        msg = Odometry()
        msg.header.stamp = now.to_msg()
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        sx = x + math.cos(yaw) * offset[0] - math.sin(yaw) * offset[1]
        sy = y + math.sin(yaw) * offset[0] + math.cos(yaw) * offset[1]
        truth[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = (sx, sy, offset[2])
        pub.publish(msg)

    def on_range(m):
        key = (m.header.stamp.sec, m.header.stamp.nanosec)
        d = math.dist(truth[key], landmarks[m.landmark_id]) if key in truth else float("nan")
        received.append(m.range - d)
        if len(received) % 10 == 1:
            print(f"t={m.header.stamp.sec % 1000:3d}.{m.header.stamp.nanosec // 1_000_000:03d}s "
                  f"{m.landmark_id}: range {m.range:7.3f} m  true {d:7.3f} m  "
                  f"error {m.range - d:+.3f} m  variance {m.variance:.3f} m^2  frame {m.header.frame_id}")

    node.create_timer(0.02, publish_odom)
    node.create_subscription(RangeMeasurement, "range", on_range, 50)
    print(f"demo: robot circling for {DURATION_S:.0f} s, landmarks {landmarks}")
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    end = time.monotonic() + DURATION_S
    try:
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
    finally:
        sensor.send_signal(signal.SIGINT)
        try:
            sensor.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sensor.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    errs = [e for e in received if not math.isnan(e)]
    if not errs:
        sys.exit("demo: no ranges received")
    mean = sum(errs) / len(errs)
    std = math.sqrt(sum((e - mean) ** 2 for e in errs) / max(1, len(errs) - 1))
    print(f"demo: {len(errs)} ranges, error mean {mean:+.3f} m, std {std:.3f} m "
          f"(configured sigma {params['noise_std_m']} m)")


if __name__ == "__main__":
    main()
