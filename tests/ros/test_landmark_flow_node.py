"""landmark_flow_node end to end, with rclpy as the only peer.

rclpy plays odometry and ranges; the test computes what the node must publish from
independent references (a hand-written EKF update in the linear-algebra-exact case,
the true landmark for convergence) and checks the node's outputs and diagnostics."""

import math
import subprocess
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from landmark_flow.msg import LandmarkBeliefArray, RangeMeasurement

from conftest import executable, write_params

PRIOR_MEAN = [1.0, 1.0]
PRIOR_COV = [5.5, -1.5, -1.5, 5.5]
TRUE_A = np.array([4.7, -3.1])
TRUE_B = np.array([-3.0, 4.0])
NOISE_VAR = 0.09  # sigma = 0.3 m
BOUNDS = {"min_x_m": -6.0, "max_x_m": 6.0, "min_y_m": -6.0, "max_y_m": 6.0}


def node_params(method="mixture", ids=("beacon_a",), **goal):
    g = {"target_landmark": ids[0], "replan_period_s": 0.5, "goal_tolerance_m": 0.2}
    g.update(goal)
    return {
        "localizer": {
            "odom_frame_id": "odom",
            "sensor_frame_id": "uwb",
            "default_noise_std_m": 1.0,
            "max_range_m": 50.0,
            "unknown_landmarks": "reject",
            "priors": {
                "ids": list(ids),
                "means_m": PRIOR_MEAN * len(ids),
                "covs_m2": PRIOR_COV * len(ids),
            },
            "estimator": {"method": method},
            # The rig jumps between measurement positions faster than a robot drives:
            # the odometry gate's speed bound is off here (tested in the core).
            "odometry_gate": {"max_speed_mps": 0.0},
        },
        "planner": {"policy": "d_optimal", "max_step_m": 1.0, "min_landmark_distance_m": 1.0,
                    "workspace": BOUNDS},
        "goal": g,
        "inputs": {"reliable": True, "depth": 200},
    }


class Rig:
    """Publishes odometry and ranges; records everything the node publishes."""

    def __init__(self, peer, landmark_topics=("beacon_a",)):
        self.peer = peer
        n = peer.node
        reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self.odom_pub = n.create_publisher(Odometry, "odom", reliable)
        self.range_pub = n.create_publisher(RangeMeasurement, "range", reliable)
        self.beliefs, self.goals, self.diags = [], [], []
        self.poses = {lid: [] for lid in landmark_topics}
        n.create_subscription(LandmarkBeliefArray, "landmark_beliefs", self.beliefs.append, 200)
        n.create_subscription(PoseStamped, "goal_pose", self.goals.append, 50)
        n.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 50)
        for lid in landmark_topics:
            n.create_subscription(PoseWithCovarianceStamped, f"landmarks/{lid}/pose", self.poses[lid].append, 200)
        self.t = 1000.0  # stamps, s

    def wait_connected(self):
        ok = self.peer.spin_until(
            lambda: self.odom_pub.get_subscription_count() > 0 and self.range_pub.get_subscription_count() > 0,
            timeout_s=20)
        assert ok, "node did not subscribe"
        # Discovery of the node's publishers by our subscriptions.
        self.peer.spin_until(lambda: self.peer.node.count_publishers("landmark_beliefs") > 0, timeout_s=10)

    def stamp(self, t):
        sec = int(math.floor(t))
        return sec, int(round((t - sec) * 1e9))

    def odom(self, x, y, frame="odom", t=None):
        m = Odometry()
        m.header.stamp.sec, m.header.stamp.nanosec = self.stamp(self.t if t is None else t)
        m.header.frame_id = frame
        m.child_frame_id = "base_link"
        m.pose.pose.position.x, m.pose.pose.position.y = x, y
        m.pose.pose.orientation.w = 1.0
        self.odom_pub.publish(m)

    def range(self, lid, r, variance=NOISE_VAR, frame="uwb", t=None):
        m = RangeMeasurement()
        m.header.stamp.sec, m.header.stamp.nanosec = self.stamp(self.t if t is None else t)
        m.header.frame_id = frame
        m.landmark_id = lid
        m.range = r
        m.variance = variance
        self.range_pub.publish(m)

    def stay_at(self, x, y, ranges):
        """Robot still at (x, y): odometry around the range stamps, then the ranges."""
        t0 = self.t
        for k in range(3):
            self.odom(x, y, t=t0 + 0.01 * k)
        self.peer.spin_until(lambda: False, timeout_s=0.02)
        for k, (lid, r) in enumerate(ranges):
            self.range(lid, r, t=t0 + 0.01 + 0.0001 * k)
        self.t = t0 + 0.05

    def latest(self, lid):
        for msg in reversed(self.beliefs):
            for b in msg.beliefs:
                if b.landmark_id == lid:
                    return b
        return None

    def fused(self, lid):
        b = self.latest(lid)
        return 0 if b is None else b.measurements_fused

    def counters(self):
        if not self.diags:
            return {}
        return {kv.key: kv.value for kv in self.diags[-1].status[0].values}


def circle(n, radius=3.0):
    return [(radius * math.cos(2 * math.pi * k / n), radius * math.sin(2 * math.pi * k / n)) for k in range(n)]


def ekf(mean, cov, x, z, var):
    d = mean - x
    r = np.linalg.norm(d)
    h = (d / r).reshape(1, 2)
    s = (h @ cov @ h.T)[0, 0] + var
    k = cov @ h.T / s
    mean = mean + (k * (z - r)).ravel()
    i_kh = np.eye(2) - k @ h
    cov = i_kh @ cov @ i_kh.T + var * (k @ k.T)  # Joseph form
    return mean, cov


def test_ekf_posterior_and_published_covariance_match_an_independent_ekf(peer, start_node, tmp_path):
    """With method ekf the node's belief has a closed form: the test's own EKF over the
    same sensor positions and ranges must match it to rounding (1e-9)."""
    start_node("landmark_flow_node",
               params_file=write_params(tmp_path, "landmark_flow_node", node_params("ekf")))
    rig = Rig(peer)
    rig.wait_connected()
    rng = np.random.default_rng(3)
    mean, cov = np.array(PRIOR_MEAN), np.array(PRIOR_COV).reshape(2, 2)
    # Far from the landmark so the EKF stays well conditioned.
    for k, (x, y) in enumerate(circle(12, radius=10.0)):
        z = float(np.linalg.norm(TRUE_A - [x, y]) + rng.normal(0, math.sqrt(NOISE_VAR)))
        rig.stay_at(x, y, [("beacon_a", z)])
        mean, cov = ekf(mean, cov, np.array([x, y]), z, NOISE_VAR)
        peer.spin_until(lambda: rig.fused("beacon_a") > k, timeout_s=2)
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 12, timeout_s=10), rig.counters()
    b = rig.latest("beacon_a")
    assert b.header.frame_id == "odom"
    assert np.allclose([b.mean.x, b.mean.y], mean, atol=1e-9), (b.mean, mean)
    got = np.array(b.covariance).reshape(3, 3)
    assert np.allclose(got[:2, :2], cov, atol=1e-9)
    assert np.all(got[2, :] == 0) and np.all(got[:, 2] == 0)
    assert peer.spin_until(lambda: len(rig.poses["beacon_a"]) >= 12, timeout_s=5)
    p = rig.poses["beacon_a"][-1]
    c = np.array(p.pose.covariance).reshape(6, 6)
    assert np.allclose(c[:2, :2], cov, atol=1e-9), "published covariance is not the belief's"
    assert np.allclose([p.pose.pose.position.x, p.pose.pose.position.y], mean, atol=1e-9)
    assert p.header.frame_id == "odom"
    assert (p.header.stamp.sec, p.header.stamp.nanosec) == (b.header.stamp.sec, b.header.stamp.nanosec)


def test_sensor_mount_from_tf_static_places_every_range(peer, start_node, tmp_path):
    """The sensor mount comes from /tf_static, as tf2's static broadcaster publishes it
    (transient local, so the node gets it even though it was sent before): base_link ->
    uwb at (0.5, 0.2, 0) with sensor_offset_m left at 0. The EKF belief must equal the
    test's own EKF over the robot positions shifted by that mount (1e-9), which it
    cannot if the mount is ignored."""
    from rclpy.qos import DurabilityPolicy
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage

    static_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
    tf_pub = peer.node.create_publisher(TFMessage, "/tf_static", static_qos)
    t = TransformStamped()
    t.header.frame_id, t.child_frame_id = "base_link", "uwb"
    t.transform.translation.x, t.transform.translation.y = 0.5, 0.2
    t.transform.rotation.w = 1.0
    tf_pub.publish(TFMessage(transforms=[t]))
    start_node("landmark_flow_node",
               params_file=write_params(tmp_path, "landmark_flow_node", node_params("ekf")))
    rig = Rig(peer)
    rig.wait_connected()
    # The late-joining node receives it (its diagnostics count the static transforms).
    assert peer.spin_until(lambda: rig.counters().get("static_transforms") == "1", timeout_s=10), rig.counters()
    rng = np.random.default_rng(5)
    mean, cov = np.array(PRIOR_MEAN), np.array(PRIOR_COV).reshape(2, 2)
    mount = np.array([0.5, 0.2])
    for k, (x, y) in enumerate(circle(8, radius=10.0)):
        sensor = np.array([x, y]) + mount
        z = float(np.linalg.norm(TRUE_A - sensor) + rng.normal(0, math.sqrt(NOISE_VAR)))
        rig.stay_at(x, y, [("beacon_a", z)])
        mean, cov = ekf(mean, cov, sensor, z, NOISE_VAR)
        peer.spin_until(lambda: rig.fused("beacon_a") > k, timeout_s=2)
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 8, timeout_s=10), rig.counters()
    b = rig.latest("beacon_a")
    assert np.allclose([b.mean.x, b.mean.y], mean, atol=1e-9), (b.mean, mean)


def test_ids_differing_only_in_punctuation_publish_on_their_own_topics(peer, start_node, tmp_path):
    """`beacon-a` and `beacon.a` used to share landmarks/beacon_a/pose. A ROS name token
    stays itself; anything else becomes x_ + the hex of its bytes (computed here from the
    id, not by the node): each id's pose arrives on its own topic and only there."""
    ids = ("beacon-a", "beacon.a")
    topics = {lid: "landmarks/x_" + lid.encode().hex() + "/pose" for lid in ids}
    assert len(set(topics.values())) == 2
    start_node("landmark_flow_node",
               params_file=write_params(tmp_path, "landmark_flow_node", node_params("ekf", ids=ids)))
    rig = Rig(peer, landmark_topics=())
    received = {lid: [] for lid in ids}
    for lid in ids:
        peer.node.create_subscription(PoseWithCovarianceStamped, topics[lid], received[lid].append, 50)
    rig.wait_connected()
    for k in range(3):
        rig.stay_at(-3.0 + k, -4.0, [("beacon-a", 6.0)])
    assert peer.spin_until(lambda: len(received["beacon-a"]) == 3, timeout_s=10), rig.counters()
    rig.stay_at(0.0, -4.0, [("beacon.a", 7.0)])
    assert peer.spin_until(lambda: len(received["beacon.a"]) == 1, timeout_s=10), rig.counters()
    peer.spin_until(lambda: False, timeout_s=0.3)
    assert len(received["beacon-a"]) == 3 and len(received["beacon.a"]) == 1


def test_two_namespaced_nodes_publish_distinct_diagnostics(peer, start_node, tmp_path):
    """Two robots' nodes (namespaces /robot1 and /robot2, one parameters file for both
    through the `/**` wildcard) publish on the shared /diagnostics under their own fully
    qualified names, so neither hides the other's status."""
    import yaml

    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": node_params("ekf")}}))
    for ns in ("/robot1", "/robot2"):
        start_node("landmark_flow_node", "-r", f"__ns:={ns}", params_file=path)
    names = set()
    peer.node.create_subscription(DiagnosticArray, "/diagnostics",
                                  lambda m: names.update(s.name for s in m.status), 50)
    want = {"/robot1/landmark_flow_node: inputs", "/robot2/landmark_flow_node: inputs"}
    assert peer.spin_until(lambda: want <= names, timeout_s=20), names


def test_mixture_converges_and_goals_stay_in_bounds(peer, start_node, tmp_path):
    """Default estimator (mixture) on the slides' near geometry (robot on the radius-3
    circle, the landmark outside it): 60 ranges with sigma = 0.3 m. The estimator
    report's mixture median error after 30 ranges at sigma^2 = 2 is 0.57 m; with 60
    ranges and 22x less noise variance the posterior std is ~0.1 m, so 0.5 m and
    tr(Sigma) < 0.1 m^2 leave a wide margin and still catch a lost or diverged lobe."""
    start_node("landmark_flow_node", params_file=write_params(tmp_path, "landmark_flow_node", node_params()))
    rig = Rig(peer)
    rig.wait_connected()
    rng = np.random.default_rng(7)
    for k, (x, y) in enumerate(circle(60)):
        z = float(np.linalg.norm(TRUE_A - [x, y]) + rng.normal(0, math.sqrt(NOISE_VAR)))
        rig.stay_at(x, y, [("beacon_a", z)])
        peer.spin_until(lambda: rig.fused("beacon_a") > k, timeout_s=2)
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 60, timeout_s=10), rig.counters()
    b = rig.latest("beacon_a")
    err = math.hypot(b.mean.x - TRUE_A[0], b.mean.y - TRUE_A[1])
    trace = b.covariance[0] + b.covariance[4]
    print(f"mixture after 60 ranges: error {err:.3f} m, tr(Sigma) {trace:.4f} m^2")
    assert err < 0.5 and trace < 0.1
    assert abs(sum(c.weight for c in b.components) - 1.0) < 1e-9
    # Goals: on goal_pose, in the odometry frame, inside the workspace, <= max_step from
    # the robot, >= min distance from the mean. The robot stays at the last circle point
    # now, so goals planned by the re-plan timer (0.5 s) from here on start from it.
    robot = np.array(circle(60)[-1])
    rig.goals.clear()
    assert peer.spin_until(lambda: len(rig.goals) >= 3, timeout_s=10)
    g = rig.goals[-1]
    assert g.header.frame_id == "odom"
    gx, gy = g.pose.position.x, g.pose.position.y
    assert BOUNDS["min_x_m"] <= gx <= BOUNDS["max_x_m"] and BOUNDS["min_y_m"] <= gy <= BOUNDS["max_y_m"]
    assert np.linalg.norm(np.array([gx, gy]) - robot) <= 1.0 + 1e-9
    assert math.hypot(gx - b.mean.x, gy - b.mean.y) >= 1.0 - 1e-6


def test_bad_inputs_are_rejected_counted_and_never_published(peer, start_node, tmp_path):
    start_node("landmark_flow_node", params_file=write_params(tmp_path, "landmark_flow_node", node_params()))
    rig = Rig(peer)
    rig.wait_connected()
    rng = np.random.default_rng(11)
    bad = {
        "non_finite_range": lambda: rig.range("beacon_a", float("nan")),
        "negative_range": lambda: rig.range("beacon_a", -2.0),
        "beyond_max_range": lambda: rig.range("beacon_a", 80.0),
        "bad_variance": lambda: rig.range("beacon_a", 5.0, variance=-1.0),
        "wrong_frame": lambda: rig.range("beacon_a", 5.0, frame="lidar"),
        "unknown_landmark": lambda: rig.range("nobody", 5.0),
        "stamp_backwards": lambda: rig.range("beacon_a", 5.0, t=rig.t - 0.5),
        "odom_non_finite": lambda: rig.odom(float("nan"), 0.0, t=rig.t + 0.001),
        "odom_stamp_backwards": lambda: rig.odom(0.0, 0.0, t=rig.t - 1.0),
        "newer_than_odometry": lambda: rig.range("beacon_a", 5.0, t=rig.t + 30.0),
    }
    expected = {}
    for k, (x, y) in enumerate(circle(20)):
        z = float(np.linalg.norm(TRUE_A - [x, y]) + rng.normal(0, 0.3))
        rig.stay_at(x, y, [("beacon_a", z)])
        name = list(bad)[k % len(bad)]
        bad[name]()
        expected[name] = expected.get(name, 0) + 1
        if name == "non_finite_range":
            rig.range("beacon_a", float("inf"))
            expected[name] += 1
        peer.spin_until(lambda: rig.fused("beacon_a") > k, timeout_s=2)
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 20, timeout_s=10)
    want = {f"rejected.{k}": str(v) for k, v in expected.items()}
    ok = peer.spin_until(lambda: all(rig.counters().get(k) == v for k, v in want.items()), timeout_s=5)
    assert ok, {k: (rig.counters().get(k), v) for k, v in want.items() if rig.counters().get(k) != v}
    assert rig.counters()["accepted"] == "20"
    values = []
    for msg in rig.beliefs:
        for b in msg.beliefs:
            values += [b.mean.x, b.mean.y, *b.covariance] + [c.weight for c in b.components]
    for p in rig.poses["beacon_a"]:
        values += [p.pose.pose.position.x, p.pose.pose.position.y, *p.pose.covariance]
    for g in rig.goals:
        values += [g.pose.position.x, g.pose.position.y]
    assert values and all(math.isfinite(v) for v in values), "a non-finite value was published"


def test_reset_restores_the_prior(peer, start_node, tmp_path):
    start_node("landmark_flow_node", params_file=write_params(tmp_path, "landmark_flow_node", node_params()))
    rig = Rig(peer)
    rig.wait_connected()
    for x, y in circle(8):
        rig.stay_at(x, y, [("beacon_a", float(np.linalg.norm(TRUE_A - [x, y])))])
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 8, timeout_s=10), (rig.fused("beacon_a"), rig.counters().get("waiting_for_odometry"), len(rig.beliefs))
    client = peer.node.create_client(Trigger, "landmark_flow_node/reset")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    assert peer.spin_until(future.done, timeout_s=10)
    assert future.result().success, future.result().message
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 0, timeout_s=5)
    b = rig.latest("beacon_a")
    assert [b.mean.x, b.mean.y] == PRIOR_MEAN
    cov = np.array(b.covariance).reshape(3, 3)[:2, :2]
    assert np.allclose(cov, np.array(PRIOR_COV).reshape(2, 2), atol=1e-12)


def test_two_landmarks_at_once(peer, start_node, tmp_path):
    ids = ("beacon_a", "beacon_b")
    start_node("landmark_flow_node", params_file=write_params(tmp_path, "landmark_flow_node", node_params(ids=ids)))
    rig = Rig(peer, landmark_topics=ids)
    rig.wait_connected()
    rng = np.random.default_rng(5)
    for k, (x, y) in enumerate(circle(60)):
        zs = [(lid, float(np.linalg.norm(p - [x, y]) + rng.normal(0, 0.3))) for lid, p in zip(ids, (TRUE_A, TRUE_B))]
        rig.stay_at(x, y, zs)
        peer.spin_until(lambda: rig.fused("beacon_a") > k and rig.fused("beacon_b") > k, timeout_s=2)
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 60 and rig.fused("beacon_b") == 60, timeout_s=10)
    for lid, truth in zip(ids, (TRUE_A, TRUE_B)):
        b = rig.latest(lid)
        err = math.hypot(b.mean.x - truth[0], b.mean.y - truth[1])
        assert err < 0.5, (lid, err)
        assert rig.poses[lid], f"nothing on landmarks/{lid}/pose"


def test_command_line_override_is_applied(peer, start_node, tmp_path):
    start_node("landmark_flow_node", "-p", "localizer.max_range_m:=4.0",
               params_file=write_params(tmp_path, "landmark_flow_node", node_params()))
    rig = Rig(peer)
    rig.wait_connected()
    rig.stay_at(0.0, 0.0, [("beacon_a", 5.0), ("beacon_a", 3.0)])
    ok = peer.spin_until(lambda: rig.counters().get("rejected.beyond_max_range") == "1"
                         and rig.counters().get("accepted") == "1", timeout_s=10)
    assert ok, rig.counters()


def run_until_exit(args, env, timeout_s=20):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.parametrize("mutate, parameter", [
    (lambda p: p["localizer"].update(default_noise_std_m=-1.0), "localizer.default_noise_std_m"),
    (lambda p: p["localizer"]["priors"].update(covs_m2=[1.0, 2.0, 2.0, 1.0]), "localizer.priors.covs_m2"),
    (lambda p: p["planner"].update(max_step_m=0.0), "planner.max_step_m"),
    (lambda p: p["localizer"]["estimator"].update(method="kalmann"), "kalmann"),
    (lambda p: p.update(typo_key=1), "typo_key"),
])
def test_invalid_params_file_exits_nonzero_naming_the_parameter(ros_env, tmp_path, mutate, parameter):
    params = node_params()
    mutate(params)
    path = write_params(tmp_path, "landmark_flow_node", params)
    r = run_until_exit([executable("landmark_flow_node"), "--ros-args", "--params-file", str(path)], ros_env)
    assert r.returncode != 0
    assert parameter in r.stderr, r.stderr


@pytest.mark.parametrize("name, content", [
    ("truncated.yaml", b"landmark_flow_node:\n  ros__parameters:\n    localizer: [unclosed\n"),
    ("binary.yaml", bytes(range(256))),
    ("tabs.yaml", b"landmark_flow_node:\n\tros__parameters:\n\t\tgoal: {}\n"),
    ("scalar.yaml", b"just text\n"),
    ("missing.yaml", None),
    ("huge.yaml", b"landmark_flow_node:\n  ros__parameters:\n" + b"    # padding\n" * 200_000),
], ids=lambda v: v if isinstance(v, str) else "")
def test_malformed_params_file_exits_2_naming_the_file(ros_env, tmp_path, name, content):
    """Each kind of broken parameters file ends the node with exit 2 and a message
    naming the file, before rcl parses it (rcl's parse errors used to panic in r2r)."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    for exe in ("landmark_flow_node", "sim_robot", "sim_range_sensor"):
        r = run_until_exit([executable(exe), "--ros-args", "--params-file", str(path)], ros_env)
        assert r.returncode == 2, (exe, r.returncode, r.stderr)
        assert name in r.stderr, (exe, r.stderr)


def test_use_sim_time_drives_the_node_clock(peer, start_node, tmp_path):
    """With use_sim_time the node's clock is /clock (as under `ros2 bag play --clock`):
    its diagnostics are stamped in sim time and its periodic work follows /clock."""
    from rosgraph_msgs.msg import Clock

    start_node("landmark_flow_node", "-p", "use_sim_time:=true",
               params_file=write_params(tmp_path, "landmark_flow_node", node_params()))
    rig = Rig(peer)
    clock_pub = peer.node.create_publisher(Clock, "/clock", 10)
    sim = {"t": 5000.0}

    def tick():
        sim["t"] += 0.1
        m = Clock()
        m.clock.sec, m.clock.nanosec = rig.stamp(sim["t"])
        clock_pub.publish(m)

    peer.node.create_timer(0.02, tick)
    assert peer.spin_until(lambda: len(rig.diags) >= 2, timeout_s=20), "no diagnostics under sim time"
    # The status is named after the node's fully qualified name (distinct per namespace).
    assert rig.diags[-1].status[0].name == "/landmark_flow_node: inputs"
    assert rig.diags[-1].status[0].hardware_id == "uwb"  # localizer.sensor_frame_id
    stamp = rig.diags[-1].header.stamp.sec + rig.diags[-1].header.stamp.nanosec * 1e-9
    assert 5000.0 < stamp <= sim["t"] + 1e-6, (stamp, sim["t"])


def test_parameter_services_apply_runtime_changes_and_refuse_the_rest_with_a_reason(peer, start_node, tmp_path):
    """`ros2 param set/describe` through rcl_interfaces with rclpy, as rclcpp answers:
    a new value of a start-only parameter, a wrong type, an unknown name and an invalid
    value are refused with a reason and change nothing; the current value is accepted;
    a run-time parameter is applied (goals stop after `goal.enabled: false` and come
    back after `true`); `describe_parameters` gives the type, a description with unit
    and `read_only`; `use_sim_time` is declared."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters, SetParametersAtomically

    start_node("landmark_flow_node", params_file=write_params(tmp_path, "landmark_flow_node", node_params()))
    base = "/landmark_flow_node/"
    setter = peer.node.create_client(SetParameters, base + "set_parameters")
    atomic = peer.node.create_client(SetParametersAtomically, base + "set_parameters_atomically")
    getter = peer.node.create_client(GetParameters, base + "get_parameters")
    describer = peer.node.create_client(DescribeParameters, base + "describe_parameters")
    clients = (setter, atomic, getter, describer)
    assert peer.spin_until(lambda: all(c.service_is_ready() for c in clients), timeout_s=20)

    def call(client, request):
        future = client.call_async(request)
        assert peer.spin_until(future.done, timeout_s=10), "no answer"
        return future.result()

    def get(name):
        return call(getter, GetParameters.Request(names=[name])).values[0]

    def double(v):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)

    def boolean(v):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v)

    noise = get("localizer.default_noise_std_m")
    results = call(setter, SetParameters.Request(parameters=[
        Parameter(name="localizer.default_noise_std_m", value=double(noise.double_value + 1.0)),
        Parameter(name="goal.enabled", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="no")),
        Parameter(name="no.such.parameter", value=boolean(True)),
        Parameter(name="goal.replan_period_s", value=double(-1.0)),
        Parameter(name="localizer.default_noise_std_m", value=noise),
    ])).results
    assert [r.successful for r in results] == [False, False, False, False, True], results
    assert "read-only" in results[0].reason and "restart" in results[0].reason, results[0]
    assert "wrong type" in results[1].reason and "bool" in results[1].reason, results[1]
    assert "no such parameter" in results[2].reason, results[2]
    assert "goal.replan_period_s" in results[3].reason, results[3]
    assert get("localizer.default_noise_std_m").double_value == noise.double_value
    assert get("goal.replan_period_s").double_value == 0.5
    # All or none: one bad value leaves the good one unset.
    r = call(atomic, SetParametersAtomically.Request(parameters=[
        Parameter(name="goal.goal_tolerance_m", value=double(0.5)),
        Parameter(name="goal.replan_period_s", value=double(-1.0)),
    ])).result
    assert not r.successful and get("goal.goal_tolerance_m").double_value == 0.2, r

    descriptors = call(describer, DescribeParameters.Request(
        names=["localizer.default_noise_std_m", "goal.enabled", "use_sim_time"])).descriptors
    assert descriptors[0].type == ParameterType.PARAMETER_DOUBLE and descriptors[0].read_only
    assert ", m (default 0.5)" in descriptors[0].description, descriptors[0]
    ranged = call(describer, DescribeParameters.Request(names=["localizer.max_range_m", "inputs.depth"])).descriptors
    r = ranged[0].floating_point_range[0]
    assert (r.from_value, r.to_value) == (0.001, 1e6), ranged[0]
    r = ranged[1].integer_range[0]
    assert (r.from_value, r.to_value) == (1, 10000), ranged[1]
    assert descriptors[1].type == ParameterType.PARAMETER_BOOL and not descriptors[1].read_only
    assert descriptors[1].description, descriptors[1]
    assert descriptors[2].type == ParameterType.PARAMETER_BOOL and descriptors[2].read_only
    assert get("use_sim_time").bool_value is False

    # A run-time change takes effect: the re-plan timer (0.5 s) publishes goals until
    # goal.enabled is false, and again once it is true.
    rig = Rig(peer)
    rig.wait_connected()

    def goals_within(seconds):
        before = len(rig.goals)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rig.t += 0.05
            rig.odom(0.0, -4.0)
            peer.spin_until(lambda: False, timeout_s=0.05)
        return len(rig.goals) - before

    assert peer.spin_until(lambda: goals_within(0.5) > 0 or len(rig.goals) > 0, timeout_s=10), "no goals at start"
    assert call(setter, SetParameters.Request(parameters=[Parameter(name="goal.enabled", value=boolean(False))])).results[0].successful
    goals_within(0.3)  # the change reaches the loop
    assert goals_within(2.0) == 0, "goals after goal.enabled: false"
    assert get("goal.enabled").bool_value is False
    assert call(setter, SetParameters.Request(parameters=[Parameter(name="goal.enabled", value=boolean(True))])).results[0].successful
    assert peer.spin_until(lambda: goals_within(0.5) > 0, timeout_s=10), "no goals after goal.enabled: true"


def test_odometry_gate_rejects_a_jump_and_a_far_future_stamp_and_keeps_fusing(peer, start_node, tmp_path):
    """With the odometry gate on (its defaults): one pose 1e6 m away and one stamped at
    sec = 2^31 - 1 are rejected and counted, and neither is used: every range is fused
    with the right pose, so the EKF belief equals the test's own EKF over the true
    sensor positions (1e-9)."""
    params = node_params("ekf")
    del params["localizer"]["odometry_gate"]
    start_node("landmark_flow_node", params_file=write_params(tmp_path, "landmark_flow_node", params))
    rig = Rig(peer)
    rig.wait_connected()
    rng = np.random.default_rng(7)
    mean, cov = np.array(PRIOR_MEAN), np.array(PRIOR_COV).reshape(2, 2)
    for k in range(10):
        x, y = -3.0 + 0.3 * k, -4.0
        z = float(np.linalg.norm(TRUE_A - [x, y]) + rng.normal(0, math.sqrt(NOISE_VAR)))
        rig.stay_at(x, y, [("beacon_a", z)])
        mean, cov = ekf(mean, cov, np.array([x, y]), z, NOISE_VAR)
        peer.spin_until(lambda: rig.fused("beacon_a") > k, timeout_s=2)
        if k == 3:
            rig.odom(1e6, -1e6, t=rig.t)
            rig.odom(x, y, t=float(2**31 - 1))
            peer.spin_until(lambda: False, timeout_s=0.1)
    assert peer.spin_until(lambda: rig.fused("beacon_a") == 10, timeout_s=10), rig.counters()
    want = {"rejected.odom_jump": "1", "rejected.odom_stamp_future": "1", "accepted": "10"}
    ok = peer.spin_until(lambda: all(rig.counters().get(k) == v for k, v in want.items()), timeout_s=5)
    assert ok, rig.counters()
    b = rig.latest("beacon_a")
    assert np.allclose([b.mean.x, b.mean.y], mean, atol=1e-9), (b.mean, mean)
