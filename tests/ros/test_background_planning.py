"""The node plans on its planning thread (NodeCore::with_background_planning): with the
shipped configuration it publishes goal_pose and criterion_heatmap, stamped with the
range they were planned after; with plans made slow and asked for on every range it
keeps fusing, keeps publishing goals, and still stops within 1 s on SIGINT while a
plan runs."""

import math
import signal
import time

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.qos import QoSProfile, ReliabilityPolicy

from landmark_flow.msg import LandmarkBeliefArray, RangeMeasurement

from conftest import REPO

SHIPPED = REPO / "config" / "landmark_flow_node.yaml"
BEACON = (4.0, 3.0)


class Rig:
    def __init__(self, peer):
        self.peer = peer
        n = peer.node
        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self.odom_pub = n.create_publisher(Odometry, "odom", qos)
        self.range_pub = n.create_publisher(RangeMeasurement, "range", qos)
        self.goals, self.heatmaps, self.beliefs = [], [], []
        n.create_subscription(PoseStamped, "goal_pose", self.goals.append, 50)
        n.create_subscription(OccupancyGrid, "criterion_heatmap", self.heatmaps.append, 50)
        n.create_subscription(LandmarkBeliefArray, "landmark_beliefs", self.beliefs.append, 500)
        ok = peer.spin_until(lambda: self.odom_pub.get_subscription_count() > 0
                             and self.range_pub.get_subscription_count() > 0
                             and n.count_publishers("goal_pose") > 0
                             and n.count_publishers("landmark_beliefs") > 0, timeout_s=20)
        assert ok, "no connection to the node"

    def send(self, t, x, y):
        """Odometry at (x, y), then the exact range to BEACON, both stamped t."""
        sec, nsec = int(t), int(round((t - int(t)) * 1e9))
        o = Odometry()
        o.header.stamp.sec, o.header.stamp.nanosec = sec, nsec
        o.header.frame_id = "odom"
        o.pose.pose.position.x, o.pose.pose.position.y = x, y
        o.pose.pose.orientation.w = 1.0
        self.odom_pub.publish(o)
        self.peer.spin_until(lambda: False, timeout_s=0.005)
        r = RangeMeasurement()
        r.header.stamp.sec, r.header.stamp.nanosec = sec, nsec
        r.landmark_id = "beacon"
        r.range = math.hypot(BEACON[0] - x, BEACON[1] - y)
        r.variance = 0.09
        self.range_pub.publish(r)

    def fused(self):
        for msg in reversed(self.beliefs):
            for b in msg.beliefs:
                if b.landmark_id == "beacon":
                    return b.measurements_fused
        return 0


def stamp_s(msg):
    return msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec


def test_shipped_configuration_publishes_goals_planned_on_the_thread(peer, start_node):
    node = start_node("landmark_flow_node", params_file=SHIPPED)
    rig = Rig(peer)
    # An unknown id gets the default prior; the first fused range asks for the first plan.
    # The shipped input QoS is best effort: send until something is fused.
    sent = []
    for k in range(100):
        sent.append(1000.0 + 0.05 * k)
        rig.send(sent[-1], 0.0, 0.0)
        if peer.spin_until(lambda: rig.goals and rig.heatmaps, timeout_s=0.05):
            break
    assert peer.spin_until(lambda: rig.goals and rig.heatmaps, timeout_s=10), node.output()
    g = rig.goals[0]
    assert min(abs(stamp_s(g) - t) for t in sent) < 1e-6, "stamped with the range it was planned after"
    assert stamp_s(rig.heatmaps[0]) == stamp_s(g)
    assert math.hypot(g.pose.position.x, g.pose.position.y) <= 1.0 + 1e-9, "within max_step_m of the robot"
    assert "(on its own thread)" in node.output()


def test_keeps_fusing_and_stops_at_once_while_slow_plans_run(peer, start_node):
    # 101 x 101 candidates: a plan takes tens of ms; one is asked for on every range (no
    # timer: every goal is stamped with its range, on the stamps' clock).
    # (One landmark scored: 101 x 101 candidates x 16 landmarks is over the per-plan work cap.)
    node = start_node("landmark_flow_node", "-p", "planner.resolution_m:=0.02", "-p", "planner.landmarks:=target",
                      "-p", "goal.replan_on_update:=true",
                      "-p", "goal.target_landmark:=beacon", "-p", "inputs.reliable:=true",
                      "-p", "goal.replan_period_s:=0.0", params_file=SHIPPED)
    rig = Rig(peer)
    n = 100
    for k in range(n):
        a = 2 * math.pi * k / n
        rig.send(1000.0 + 0.02 * k, 2.0 * math.cos(a), 2.0 * math.sin(a))
        peer.spin_until(lambda: False, timeout_s=0.015)
    assert peer.spin_until(lambda: rig.fused() == n, timeout_s=20), f"fused {rig.fused()} of {n}"
    assert peer.spin_until(lambda: len(rig.goals) >= 2, timeout_s=10), node.output()
    stamps = [stamp_s(g) for g in rig.goals]
    assert stamps == sorted(stamps), "a goal never comes after a newer one"
    # A plan is running (asked for by the last ranges) or one is asked for right now.
    for k in range(5):
        rig.send(1010.0 + 0.02 * k, 0.0, 0.0)
    start = time.monotonic()
    node.proc.send_signal(signal.SIGINT)
    code = node.proc.wait(timeout=5)
    elapsed = time.monotonic() - start
    assert code == 0 and elapsed < 1.0, (code, elapsed, node.output())
