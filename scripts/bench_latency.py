#!/usr/bin/env python3
"""End-to-end latency of landmark_flow_node: time from a range published by rclpy to
the LandmarkBeliefArray that fuses it, received by rclpy, at 50 Hz over loopback
(odometry at 50 Hz too), plus the node's resident memory. Run through scripts/with_ros
(`make bench-latency`). Prints p50/p99/max and RSS; writes out/bench/latency.csv.
BENCH_REPLAN_PERIOD_S sets goal.replan_period_s (default: the shipped file's)."""

import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rclpy
import rclpy.executors
import yaml
from nav_msgs.msg import Odometry
from rclpy.qos import qos_profile_sensor_data

from landmark_flow.msg import LandmarkBeliefArray, RangeMeasurement

REPO = Path(__file__).resolve().parents[1]
RATE_HZ = 50.0
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "1500"))
WARMUP = 50
LANDMARK = (4.7, -3.1)


def rss_kib(pid):
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def main():
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain = int(os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 5)))
    params = yaml.safe_load((REPO / "config" / "landmark_flow_node.yaml").read_text())
    p = params["landmark_flow_node"]["ros__parameters"]
    p["localizer"]["priors"] = {"ids": ["beacon_a"], "means_m": [1.0, 1.0], "covs_m2": [5.5, -1.5, -1.5, 5.5]}
    p["localizer"]["odom_frame_id"] = "odom"
    if "BENCH_REPLAN_PERIOD_S" in os.environ:
        p["goal"]["replan_period_s"] = float(os.environ["BENCH_REPLAN_PERIOD_S"])
    tmp = Path(tempfile.mkdtemp())
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    exe = shutil.which("landmark_flow_node") or sys.exit("landmark_flow_node not on PATH: make build")
    node_proc = subprocess.Popen([exe, "--ros-args", "--params-file", str(tmp / "params.yaml")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("latency_bench", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    odom_pub = node.create_publisher(Odometry, "odom", qos_profile_sensor_data)
    range_pub = node.create_publisher(RangeMeasurement, "range", qos_profile_sensor_data)
    sent = {}
    latencies = []

    def on_beliefs(msg):
        t = time.perf_counter()
        for b in msg.beliefs:
            k = b.measurements_fused
            if k in sent:
                latencies.append((k, t - sent.pop(k)))

    node.create_subscription(LandmarkBeliefArray, "landmark_beliefs", on_beliefs, 100)
    deadline = time.monotonic() + 20
    while (odom_pub.get_subscription_count() == 0 or node.count_publishers("landmark_beliefs") == 0) \
            and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    time.sleep(1.0)  # let the node finish matching our publishers too

    period = 1.0 / RATE_HZ
    k = 0
    next_t = time.perf_counter()
    start = time.monotonic()
    while k < SAMPLES + WARMUP:
        now = time.perf_counter()
        if now >= next_t:
            next_t += period
            t = time.time()
            stamp = node.get_clock().now().to_msg()
            x, y = 10.0 * math.cos(0.05 * k), 10.0 * math.sin(0.05 * k)
            o = Odometry()
            o.header.stamp, o.header.frame_id, o.child_frame_id = stamp, "odom", "base_link"
            o.pose.pose.position.x, o.pose.pose.position.y = x, y
            o.pose.pose.orientation.w = 1.0
            odom_pub.publish(o)
            r = RangeMeasurement()
            r.header.stamp, r.header.frame_id = stamp, "range_sensor"
            r.landmark_id, r.range, r.variance = "beacon_a", math.dist((x, y), LANDMARK), 0.25
            k += 1
            sent[k] = time.perf_counter()
            range_pub.publish(r)
        executor.spin_once(timeout_sec=max(0.0, min(0.002, next_t - time.perf_counter())))
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)
    rss, hwm = rss_kib(node_proc.pid)
    node_proc.send_signal(signal.SIGINT)
    try:
        node_proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        node_proc.kill()
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)

    lat = sorted(l for kk, l in latencies if kk > WARMUP)
    if not lat:
        sys.exit("no latency samples")
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1e3
    out = REPO / "out" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latency.csv").write_text("k,latency_s\n" + "".join(f"{kk},{l}\n" for kk, l in latencies))
    lost = SAMPLES + WARMUP - len(latencies)
    print(f"latency over {len(lat)} ranges at {RATE_HZ:.0f} Hz: p50 {q(0.5):.2f} ms, p99 {q(0.99):.2f} ms, "
          f"max {lat[-1] * 1e3:.2f} ms, mean {statistics.mean(lat) * 1e3:.2f} ms; not received {lost}")
    print(f"node memory: RSS {rss / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
