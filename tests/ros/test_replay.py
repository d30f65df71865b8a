"""landmark_flow_replay against bags written by the PyPI `rosbags` library (an
independent writer and reader), and against the live node fed the same messages.

The recording: a robot on a circle (radius 5 m, 0.2 rad/s), odometry at 20 Hz, ranges
at 10 Hz round-robin over three landmarks, seeded Gaussian noise (sigma 0.3 m):
landmarks a and b as landmark_flow/RangeMeasurement on /range, c as sensor_msgs/Range
on /range_raw (landmark id in header.frame_id). Each range is stamped with the stamp of
an odometry message and recorded 5 ms after it; odometry 1 ms after its stamp.

The replayer is the one colcon installs (on PATH under scripts/with_ros after
`make build`); without an install it is built with cargo.
"""

import csv
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from conftest import REPO, write_params

LANDMARKS = {"a": (4.0, 3.0), "b": (-6.0, 2.0), "c": (1.0, -7.0)}
RAW_LANDMARKS = {"c"}  # sent as sensor_msgs/Range on /range_raw
DURATION_S = 20.0
START_S = 100.0
NOISE_STD_M = 0.3
NODE_PARAMS = {
    "inputs": {"reliable": True, "depth": 500, "sensor_msgs_range": True},
    "publish": {"heatmap": False, "markers": False},
}


def replay_binary():
    path = shutil.which("landmark_flow_replay")
    if path:
        return path
    subprocess.run(["cargo", "build", "--release", "--no-default-features", "--features", "bag",
                    "--bin", "landmark_flow_replay"],
                   cwd=REPO, check=True)
    return str(REPO / "target" / "release" / "landmark_flow_replay")


@pytest.fixture(scope="module")
def replay():
    binary = replay_binary()

    def run(bag, out, *args):
        return subprocess.run([binary, str(bag), "--out", str(out), "--no-plots", *args],
                              capture_output=True, text=True, timeout=120)

    return run


def scenario():
    """The recording as (bag time ns, kind, fields), in bag-time order."""
    rng = np.random.default_rng(11)
    out = []
    ids = list(LANDMARKS)
    k_range = 0
    for k in range(int(DURATION_S * 20)):
        stamp_ns = int(round((START_S + k / 20) * 1e9))
        t = k / 20
        angle = 0.2 * t
        x, y = 5 * math.cos(angle), 5 * math.sin(angle)
        yaw = angle + math.pi / 2
        out.append((stamp_ns + 1_000_000, "odom", dict(stamp_ns=stamp_ns, x=x, y=y, yaw=yaw)))
        if k % 2 == 0:
            lid = ids[k_range % len(ids)]
            k_range += 1
            lx, ly = LANDMARKS[lid]
            z = max(0.0, math.hypot(x - lx, y - ly) + rng.normal(0.0, NOISE_STD_M))
            kind = "range_raw" if lid in RAW_LANDMARKS else "range"
            out.append((stamp_ns + 5_000_000, kind, dict(stamp_ns=stamp_ns, id=lid, z=z)))
    return out


def typestore():
    ts = get_typestore(Stores.ROS2_JAZZY)
    text = (REPO / "msg" / "RangeMeasurement.msg").read_text()
    ts.register(get_types_from_msg(text, "landmark_flow/msg/RangeMeasurement"))
    return ts


def write_bag(path, storage):
    """Writes the scenario with rosbags; returns the number of range messages."""
    ts = typestore()
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]

    def header(stamp_ns, frame):
        return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame)

    ranges = 0
    with Writer(path, version=9, storage_plugin=storage) as w:
        conns = {
            "odom": w.add_connection("/odom", "nav_msgs/msg/Odometry", typestore=ts),
            "range": w.add_connection("/range", "landmark_flow/msg/RangeMeasurement", typestore=ts),
            "range_raw": w.add_connection("/range_raw", "sensor_msgs/msg/Range", typestore=ts),
        }
        for t_ns, kind, f in scenario():
            if kind == "odom":
                pose = T["geometry_msgs/msg/Pose"](
                    position=T["geometry_msgs/msg/Point"](x=f["x"], y=f["y"], z=0.0),
                    orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(f["yaw"] / 2),
                                                                  w=math.cos(f["yaw"] / 2)))
                twist = T["geometry_msgs/msg/Twist"](linear=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                                                     angular=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0))
                msg = T["nav_msgs/msg/Odometry"](
                    header=header(f["stamp_ns"], "odom"), child_frame_id="base_link",
                    pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
                    twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)))
            elif kind == "range":
                ranges += 1
                msg = T["landmark_flow/msg/RangeMeasurement"](
                    header=header(f["stamp_ns"], "uwb"), landmark_id=f["id"], range=f["z"],
                    variance=NOISE_STD_M**2)
            else:
                ranges += 1
                msg = T["sensor_msgs/msg/Range"](
                    header=header(f["stamp_ns"], f["id"]), radiation_type=2, field_of_view=0.0,
                    min_range=0.0, max_range=200.0, range=np.float32(f["z"]), variance=np.float32(NOISE_STD_M**2))
            w.write(conns[kind], t_ns, ts.serialize_cdr(msg, msg.__msgtype__))
    return ranges


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    d = tmp_path_factory.mktemp("bags")
    n = write_bag(d / "bag_mcap", StoragePlugin.MCAP)
    write_bag(d / "bag_sqlite", StoragePlugin.SQLITE3)
    return d, n


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def landmark_numbers(report_yaml):
    """Per-landmark results of report.yaml, without the run-dependent throughput."""
    r = yaml.safe_load(Path(report_yaml).read_text())
    return r["landmarks"], r["rejected_by_reason"], r["ranges_fused"]


def test_mcap_and_sqlite_bags_replay_to_the_same_numbers(bags, replay, tmp_path):
    d, n_ranges = bags
    for name in ("bag_mcap", "bag_sqlite"):
        res = replay(d / name, tmp_path / name)
        assert res.returncode == 0, res.stderr
    a, b = (read_csv(tmp_path / n / "updates.csv") for n in ("bag_mcap", "bag_sqlite"))
    assert a == b
    assert len([r for r in a if r["status"] == "fused"]) == n_ranges
    assert {r["topic"] for r in a} == {"/range", "/range_raw"}
    assert landmark_numbers(tmp_path / "bag_mcap" / "report.yaml") == \
        landmark_numbers(tmp_path / "bag_sqlite" / "report.yaml")
    # A single .mcap / .db3 file replays too, to the same numbers.
    single = tmp_path / "single"
    res = replay(next((d / "bag_sqlite").glob("*.db3")), single)
    assert res.returncode == 0, res.stderr
    assert read_csv(single / "updates.csv") == a


def test_output_bag_reads_back_with_rosbags_and_equals_the_csv(bags, replay, tmp_path):
    d, n_ranges = bags
    gt = tmp_path / "gt.yaml"
    gt.write_text(yaml.safe_dump({"beacons": {k: {"x": v[0], "y": v[1]} for k, v in LANDMARKS.items()}}))
    res = replay(d / "bag_mcap", tmp_path / "out", "--ground-truth", str(gt))
    assert res.returncode == 0, res.stderr
    fused = [r for r in read_csv(tmp_path / "out" / "updates.csv") if r["status"] == "fused"]
    poses, arrays, goals = {}, [], 0
    with AnyReader([tmp_path / "out" / "replay_bag"]) as reader:
        for conn, t_ns, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == "/landmark_beliefs":
                arrays.append((t_ns, msg))
            elif conn.topic.startswith("/landmarks/"):
                poses.setdefault(conn.topic.split("/")[2], []).append((t_ns, msg))
            elif conn.topic == "/goal_pose":
                goals += 1
    assert len(arrays) == len(fused) == n_ranges
    assert goals > 0
    for lid in LANDMARKS:
        rows = [r for r in fused if r["landmark_id"] == lid]
        msgs = poses[lid]
        assert len(rows) == len(msgs) > 0
        for row, (t_ns, m) in zip(rows, msgs):
            p = m.pose.pose.position
            c = m.pose.covariance
            # The CSV prints the shortest repr that reads back to the same double: exact.
            assert (p.x, p.y) == (float(row["mean_x_m"]), float(row["mean_y_m"]))
            assert (c[0], c[1], c[7]) == (float(row["cov_xx_m2"]), float(row["cov_xy_m2"]), float(row["cov_yy_m2"]))
            assert t_ns == round(float(row["bag_time_s"]) * 1e9) or abs(t_ns - float(row["bag_time_s"]) * 1e9) < 1e3
            assert m.header.frame_id == "odom"
    last = arrays[-1][1]
    final = {lid: [r for r in fused if r["landmark_id"] == lid][-1] for lid in LANDMARKS}
    for b in last.beliefs:
        assert (b.mean.x, b.mean.y) == (float(final[b.landmark_id]["mean_x_m"]), float(final[b.landmark_id]["mean_y_m"]))
        assert b.measurements_fused == int(final[b.landmark_id]["measurements_fused"])
    # With 200 ranges at sigma 0.3 m from a circle around them, every landmark is found.
    report = yaml.safe_load((tmp_path / "out" / "report.yaml").read_text())
    for lm in report["landmarks"]:
        assert lm["final_error_m"] < 0.5, lm


def test_truncated_and_corrupt_bags_name_the_damage_and_keep_what_came_before(bags, replay, tmp_path):
    d, n_ranges = bags
    # MCAP cut at 60 %.
    cut = tmp_path / "cut_mcap"
    shutil.copytree(d / "bag_mcap", cut)
    mcap = next(cut.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 6 // 10])
    res = replay(cut, tmp_path / "out_cut")
    assert res.returncode == 1, res.stdout + res.stderr
    assert str(mcap) in res.stderr and "truncated at byte offset" in res.stderr, res.stderr
    kept = [r for r in read_csv(tmp_path / "out_cut" / "updates.csv") if r["status"] == "fused"]
    assert 0 < len(kept) < n_ranges
    with AnyReader([tmp_path / "out_cut" / "replay_bag"]) as reader:
        assert sum(1 for _ in reader.messages()) >= len(kept)
    # MCAP with 2 kB of garbage in the middle of its chunk.
    bad = tmp_path / "bad_mcap"
    shutil.copytree(d / "bag_mcap", bad)
    mcap = next(bad.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 2048] = b"\xff" * 2048
    mcap.write_bytes(bytes(data))
    res = replay(bad, tmp_path / "out_bad")
    assert res.returncode == 1, res.stdout + res.stderr
    assert str(mcap) in res.stderr and "byte offset" in res.stderr, res.stderr
    assert (tmp_path / "out_bad" / "report.md").exists()
    # sqlite3 cut in half.
    cut_db = tmp_path / "cut_sqlite"
    shutil.copytree(d / "bag_sqlite", cut_db)
    db3 = next(cut_db.glob("*.db3"))
    data = db3.read_bytes()
    db3.write_bytes(data[: len(data) // 2])
    res = replay(cut_db, tmp_path / "out_db")
    assert res.returncode == 1, res.stdout + res.stderr
    assert str(db3) in res.stderr and ("row" in res.stderr or "malformed" in res.stderr), res.stderr


def test_no_matching_topic_lists_the_bag_topics(bags, replay, tmp_path):
    d, _ = bags
    res = replay(d / "bag_mcap", tmp_path / "out", "--range-topic", "/uwb_ranges")
    assert res.returncode == 1
    assert "no range topic" in res.stderr and "/uwb_ranges" in res.stderr, res.stderr
    assert "/odom (nav_msgs/msg/Odometry" in res.stderr and "/range_raw (sensor_msgs/msg/Range" in res.stderr, res.stderr


def test_replay_equals_live(bags, replay, peer, start_node, tmp_path):
    """The same messages through the live node (rclpy publishing, reliable QoS) and
    through the replayer give the same final beliefs and the same goal sequence.

    Tolerance 1e-9: both run the same localizer code on the same doubles (ranges are
    float32 in sensor_msgs/Range on both paths; stamps travel as sec/nanosec on both),
    and the default estimator (mixture of natural flows with Gauss-Hermite cubature)
    is deterministic, so the results should be bit-identical; the tolerance only
    admits last-digit differences and still catches any different sequence of
    updates (one more or one fewer range moves the means by millimetres or more).
    Transport cannot reorder ranges of one landmark (one reliable topic each), and a
    range that arrives before the odometry of its stamp waits for it and is fused with
    the same interpolated pose.

    Goals: re-planned after every fused range of the target (replan_on_update), no
    timer and a goal tolerance no robot reaches, so every goal follows a fused range and
    is planned from the pose of that range's odometry (the newest one sent when the
    range is, on both paths): the sequences must match goal for goal. The live node
    plans on its planning thread, where a request replaced by a newer one before it
    started is never planned (the newest wins); pacing also on the goals (after a range,
    until the live node has published as many goals as the replay had by that range's
    stamp) gives every plan its time, so none is replaced.
    """
    from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Quaternion
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Range
    from std_msgs.msg import Header
    from builtin_interfaces.msg import Time

    from landmark_flow.msg import LandmarkBeliefArray, RangeMeasurement

    d, n_ranges = bags
    # odom_tolerance_s = 0: a range that overtakes its odometry in transport (they are
    # different topics, DDS keeps no order between them) waits for it instead of being
    # fused with the previous pose (50 ms old here, inside the default 0.1 s
    # tolerance), so the result does not depend on delivery order across topics.
    params = write_params(tmp_path, "landmark_flow_node",
                          {**NODE_PARAMS, "localizer": {"odom_tolerance_s": 0.0},
                           "goal": {"replan_on_update": True, "replan_period_s": 0.0, "goal_tolerance_m": 1e-6}})
    res = replay(d / "bag_mcap", tmp_path / "out", "--params", str(params))
    assert res.returncode == 0, res.stderr
    with AnyReader([tmp_path / "out" / "replay_bag"]) as reader:
        conns = [c for c in reader.connections if c.topic == "/landmark_beliefs"]
        replayed = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)][-1]
        conns = [c for c in reader.connections if c.topic == "/goal_pose"]
        replayed_goals = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]

    start_node("landmark_flow_node", params_file=params)
    n = peer.node
    qos = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
    pubs = {"odom": n.create_publisher(Odometry, "odom", qos),
            "range": n.create_publisher(RangeMeasurement, "range", qos),
            "range_raw": n.create_publisher(Range, "range_raw", qos)}
    from geometry_msgs.msg import PoseStamped

    live = []
    live_goals = []
    n.create_subscription(LandmarkBeliefArray, "landmark_beliefs", live.append, qos)
    n.create_subscription(PoseStamped, "goal_pose", live_goals.append, qos)
    assert peer.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values())
                           and n.count_publishers("landmark_beliefs") > 0, timeout_s=20), "node not connected"

    def header(stamp_ns, frame):
        return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame)

    sent = 0
    for _, kind, f in scenario():
        if kind == "odom":
            m = Odometry(header=header(f["stamp_ns"], "odom"), child_frame_id="base_link")
            m.pose = PoseWithCovariance(pose=Pose(
                position=Point(x=f["x"], y=f["y"], z=0.0),
                orientation=Quaternion(x=0.0, y=0.0, z=math.sin(f["yaw"] / 2), w=math.cos(f["yaw"] / 2))))
            pubs["odom"].publish(m)
            continue
        if kind == "range":
            pubs["range"].publish(RangeMeasurement(header=header(f["stamp_ns"], "uwb"), landmark_id=f["id"],
                                                   range=f["z"], variance=NOISE_STD_M**2))
        else:
            pubs["range_raw"].publish(Range(header=header(f["stamp_ns"], f["id"]), radiation_type=2,
                                            field_of_view=0.0, min_range=0.0, max_range=200.0,
                                            range=float(np.float32(f["z"])),
                                            variance=float(np.float32(NOISE_STD_M**2))))
        sent += 1
        # Paced: the node has fused (and published for) every range sent so far, and
        # published the goals the replay had planned by then.
        assert peer.spin_until(lambda: len(live) >= sent, timeout_s=10), f"no beliefs for range {sent}"
        planned = sum(1 for g in replayed_goals if (g.header.stamp.sec * 10**9 + g.header.stamp.nanosec) <= f["stamp_ns"])
        assert peer.spin_until(lambda: len(live_goals) >= planned, timeout_s=10), f"{len(live_goals)} goals of {planned}"
    assert sent == n_ranges == len(live)
    final_live = {b.landmark_id: b for b in live[-1].beliefs}
    final_replay = {b.landmark_id: b for b in replayed.beliefs}
    assert set(final_live) == set(final_replay) == set(LANDMARKS)
    for lid, r in final_replay.items():
        l = final_live[lid]
        assert l.measurements_fused == r.measurements_fused
        assert math.isclose(l.mean.x, r.mean.x, abs_tol=1e-9) and math.isclose(l.mean.y, r.mean.y, abs_tol=1e-9), lid
        assert np.allclose(np.array(l.covariance), np.array(r.covariance), rtol=0, atol=1e-9), lid
    assert len(replayed_goals) > 10, "the scenario re-plans"
    assert peer.spin_until(lambda: len(live_goals) >= len(replayed_goals), timeout_s=10), \
        f"{len(live_goals)} live goals, {len(replayed_goals)} replayed"
    assert len(live_goals) == len(replayed_goals)
    for k, (l, r) in enumerate(zip(live_goals, replayed_goals)):
        assert (l.header.stamp.sec, l.header.stamp.nanosec) == (r.header.stamp.sec, r.header.stamp.nanosec), k
        for a, b in [(l.pose.position.x, r.pose.position.x), (l.pose.position.y, r.pose.position.y),
                     (l.pose.orientation.z, r.pose.orientation.z), (l.pose.orientation.w, r.pose.orientation.w)]:
            assert math.isclose(a, b, abs_tol=1e-9), (k, a, b)


def test_drifting_replay_writes_correction_tf_and_robot_pose(bags, replay, tmp_path):
    """With localizer.odometry: drifting the output bag has the node's drift topics
    (/odometry_correction, /tf, /robot_pose), one message each per odometry message,
    readable by rosbags from the schemas the replayer writes."""
    d, _ = bags
    params = write_params(tmp_path, "landmark_flow_node",
                          {**NODE_PARAMS, "localizer": {"odometry": "drifting", "map_frame_id": "map"}})
    res = replay(d / "bag_mcap", tmp_path / "out", "--params", str(params))
    assert res.returncode == 0, res.stderr
    got = {"/odometry_correction": [], "/tf": [], "/robot_pose": []}
    with AnyReader([tmp_path / "out" / "replay_bag"]) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for conn, _, raw in reader.messages():
            if conn.topic in got:
                got[conn.topic].append(reader.deserialize(raw, conn.msgtype))
    assert types.get("/odometry_correction") == "landmark_flow/msg/OdometryCorrection", types
    assert types.get("/tf") == "tf2_msgs/msg/TFMessage", types
    assert types.get("/robot_pose") == "geometry_msgs/msg/PoseWithCovarianceStamped", types
    n_odom = sum(1 for _, kind, _ in scenario() if kind == "odom")
    assert len(got["/odometry_correction"]) == len(got["/tf"]) == len(got["/robot_pose"]) == n_odom
    for c, tf in zip(got["/odometry_correction"], got["/tf"]):
        (t,) = tf.transforms
        assert (t.header.frame_id, t.child_frame_id) == ("map", c.child_frame_id) == ("map", "odom")
        assert (t.transform.translation.x, t.transform.translation.y) == (c.x_m, c.y_m)
        dyaw = 2 * math.atan2(t.transform.rotation.z, t.transform.rotation.w) - c.yaw_rad
        assert abs(math.remainder(dyaw, 2 * math.pi)) < 1e-9
        assert all(math.isfinite(v) for v in [c.x_m, c.y_m, c.yaw_rad, *c.covariance])
    for p in got["/robot_pose"]:
        assert p.header.frame_id == "map"
        assert all(math.isfinite(v) for v in p.pose.covariance)
