"""landmark_flow_node with `localizer.odometry: drifting` (range-only SLAM), end to end
with rclpy: the node offers odometry_correction, /tf and robot_pose only in that mode,
and after each accepted odometry message publishes the odom -> map correction, the
same correction as the map -> odom transform on /tf, and the robot's pose in the map
frame, all with finite numbers."""

import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from landmark_flow.msg import OdometryCorrection

from conftest import write_params
from test_landmark_flow_node import NOISE_VAR, TRUE_A, Rig, circle, node_params

DRIFT_TOPICS = {
    "/odometry_correction": "landmark_flow/msg/OdometryCorrection",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/robot_pose": "geometry_msgs/msg/PoseWithCovarianceStamped",
}
# tf2's /tf QoS (TransformBroadcaster/TransformListener): reliable, volatile, depth 100.
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def drifting_params(mode="drifting"):
    p = node_params()
    p["localizer"].update({"odometry": mode, "map_frame_id": "map", "odom_frame_id": "odom"})
    return p


@pytest.mark.parametrize("mode", ["drifting", "exact"])
def test_drift_topics_are_offered_only_with_drifting_odometry(mode, peer, start_node, tmp_path):
    start_node("landmark_flow_node",
               params_file=write_params(tmp_path, "landmark_flow_node", drifting_params(mode)))
    rig = Rig(peer)
    rig.wait_connected()
    node = peer.node
    if mode == "exact":
        # The node's other publishers are discovered by now (wait_connected); give the
        # drift ones, if any, the same bounded time to show up.
        assert not peer.spin_until(lambda: any(node.count_publishers(t) for t in DRIFT_TOPICS), timeout_s=2), \
            {t: node.count_publishers(t) for t in DRIFT_TOPICS}
        return
    assert peer.spin_until(lambda: all(node.count_publishers(t) for t in DRIFT_TOPICS), timeout_s=10), \
        {t: node.count_publishers(t) for t in DRIFT_TOPICS}
    for topic, type_name in DRIFT_TOPICS.items():
        # The node is the only publisher on this test's domain.
        infos = node.get_publishers_info_by_topic(topic)
        assert len(infos) == 1, (topic, infos)
        assert infos[0].topic_type == type_name
        assert infos[0].qos_profile.reliability == ReliabilityPolicy.RELIABLE
        assert infos[0].qos_profile.durability == DurabilityPolicy.VOLATILE


def finite(*values):
    return all(math.isfinite(v) for v in values)


def test_drifting_odometry_publishes_correction_tf_and_robot_pose(peer, start_node, tmp_path):
    start_node("landmark_flow_node",
               params_file=write_params(tmp_path, "landmark_flow_node", drifting_params()))
    rig = Rig(peer)
    tfs, corrections, robot_poses = [], [], []
    node = peer.node
    node.create_subscription(TFMessage, "/tf", tfs.append, TF_QOS)
    node.create_subscription(OdometryCorrection, "odometry_correction", corrections.append, 200)
    node.create_subscription(PoseWithCovarianceStamped, "robot_pose", robot_poses.append, 200)
    rig.wait_connected()
    assert peer.spin_until(lambda: all(node.count_publishers(t) for t in DRIFT_TOPICS), timeout_s=10)
    rng = np.random.default_rng(5)
    for x, y in circle(20):
        z = float(np.linalg.norm(TRUE_A - [x, y]) + rng.normal(0, math.sqrt(NOISE_VAR)))
        rig.stay_at(x, y, [("beacon_a", z)])
        peer.spin_until(lambda: False, timeout_s=0.05)
    # Each of the 60 odometry messages gives one correction, one transform, one pose.
    assert peer.spin_until(lambda: min(len(tfs), len(corrections), len(robot_poses)) >= 60, timeout_s=10), \
        (len(tfs), len(corrections), len(robot_poses))

    correction_stamps = {(c.header.stamp.sec, c.header.stamp.nanosec) for c in corrections}
    transforms = [t for m in tfs for t in m.transforms]
    assert transforms
    for t in transforms:
        assert (t.header.frame_id, t.child_frame_id) == ("map", "odom")
        tr, q = t.transform.translation, t.transform.rotation
        assert finite(tr.x, tr.y, tr.z, q.x, q.y, q.z, q.w), t
        assert tr.z == 0.0 and q.x == 0.0 and q.y == 0.0
        assert abs(math.hypot(q.z, q.w) - 1.0) < 1e-9, q
        assert (t.header.stamp.sec, t.header.stamp.nanosec) in correction_stamps
    by_stamp = {(c.header.stamp.sec, c.header.stamp.nanosec): c for c in corrections}
    for c in corrections:
        assert (c.header.frame_id, c.child_frame_id) == ("map", "odom")
        assert finite(c.x_m, c.y_m, c.yaw_rad, c.gyro_bias_rad_per_s, c.gyro_bias_variance, *c.covariance), c
        cov = np.array(c.covariance).reshape(3, 3)
        assert np.allclose(cov, cov.T) and np.all(np.diag(cov) >= 0), cov
        assert c.gyro_bias_variance >= 0
    # The transform is the correction: same translation, yaw as a quaternion about z.
    for t in transforms:
        c = by_stamp[(t.header.stamp.sec, t.header.stamp.nanosec)]
        q = t.transform.rotation
        assert (t.transform.translation.x, t.transform.translation.y) == (c.x_m, c.y_m)
        dyaw = 2.0 * math.atan2(q.z, q.w) - c.yaw_rad
        assert abs(math.remainder(dyaw, 2 * math.pi)) < 1e-9, (q, c.yaw_rad)
    for p in robot_poses:
        assert p.header.frame_id == "map"
        pos, q = p.pose.pose.position, p.pose.pose.orientation
        assert finite(pos.x, pos.y, pos.z, q.x, q.y, q.z, q.w, *p.pose.covariance), p
        cov = np.array(p.pose.covariance).reshape(6, 6)
        xy_yaw = cov[np.ix_([0, 1, 5], [0, 1, 5])]
        assert np.allclose(xy_yaw, xy_yaw.T) and np.all(np.diag(xy_yaw) > 0), cov
