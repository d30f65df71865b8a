"""The colcon install tree has everything where ROS tools look for it, and the launch
files only name executables and config files that are installed."""

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = Path(os.environ.get("LANDMARK_FLOW_WS", REPO / "_ws")) / "install" / "landmark_flow"


def launch_files():
    return sorted((REPO / "launch").glob("*.launch.py"))


EXECUTABLES = ["landmark_flow_node", "sim_range_sensor", "sim_robot"]
# Topics landmark_flow_node publishes (src/bin/landmark_flow_node.rs) and sim_robot's odom.
PUBLISHED = {"markers", "criterion_heatmap", "goal_pose", "landmark_beliefs", "odom", "/diagnostics"}
# ... and with localizer.odometry: drifting.
PUBLISHED_DRIFTING = {"odometry_correction", "/tf", "robot_pose"}


def test_executables_are_where_ros2_run_looks():
    for exe in EXECUTABLES + ["landmark_flow_replay"]:
        path = PREFIX / "lib" / "landmark_flow" / exe
        assert path.is_file() and os.access(path, os.X_OK), path


def test_only_the_product_is_installed():
    """The nodes and the bag replayer, nothing else (research programs live in
    examples/ and are not installed next to the nodes)."""
    installed = {p.name for p in (PREFIX / "lib" / "landmark_flow").iterdir() if p.is_file()}
    assert installed == set(EXECUTABLES) | {"landmark_flow_replay"}, installed


def test_share_has_package_xml_launch_and_config():
    share = PREFIX / "share" / "landmark_flow"
    assert (share / "package.xml").is_file()
    for f in launch_files():
        assert (share / "launch" / f.name).is_file(), f.name
    for f in (REPO / "config").glob("*.yaml"):
        assert (share / "config" / f.name).is_file(), f.name
    for f in (REPO / "rviz").glob("*.rviz"):
        assert (share / "rviz" / f.name).is_file(), f.name
    index = PREFIX / "share" / "ament_index" / "resource_index"
    assert (index / "packages" / "landmark_flow").is_file()
    interfaces = (index / "rosidl_interfaces" / "landmark_flow").read_text()
    assert "msg/RangeMeasurement" in interfaces and "msg/OdometryCorrection" in interfaces


def test_python_interfaces_import():
    from landmark_flow.msg import LandmarkBelief, LandmarkBeliefArray, OdometryCorrection, RangeMeasurement  # noqa
    from tf2_msgs.msg import TFMessage  # the distribution's, or vendor/tf2_msgs when embedded

    assert LandmarkBelief.STATE_TRACKING == 1
    assert len(OdometryCorrection().covariance) == 9 and TFMessage().transforms == []
    m = RangeMeasurement()
    assert m.variance == 0.0 and m.landmark_id == ""


def _node_actions(tree):
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            yield {k.arg: k.value for k in call.keywords}


def _constants(tree):
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


@pytest.mark.parametrize("launch_file", launch_files(), ids=lambda p: p.name)
def test_launch_file_names_installed_executables_and_configs(launch_file):
    tree = ast.parse(launch_file.read_text())
    nodes = list(_node_actions(tree))
    assert nodes, "no Node actions"
    for kw in nodes:
        package = ast.literal_eval(kw["package"])
        if package == "rviz2":
            continue
        assert package == "landmark_flow"
        if isinstance(kw["executable"], ast.Constant):
            exe = ast.literal_eval(kw["executable"])
            assert (PREFIX / "lib" / "landmark_flow" / exe).is_file(), exe
    # Every config file a launch file joins into a path exists in the share tree.
    for const in ast.walk(tree):
        if isinstance(const, ast.Constant) and isinstance(const.value, str) \
                and const.value.endswith(".yaml"):
            assert (PREFIX / "share" / "landmark_flow" / "config" / const.value).is_file(), const.value


def _exec_depends():
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "package.xml").getroot()
    return {e.text for tag in ("exec_depend", "depend") for e in root.iter(tag)}


@pytest.mark.parametrize("launch_file", launch_files(), ids=lambda p: p.name)
def test_launch_file_dependencies_are_exec_depends(launch_file):
    """Every package a launch file imports or starts is an exec_depend (or depend) of
    package.xml, so rosdep installs it on a user's machine."""
    tree = ast.parse(launch_file.read_text())
    needed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            needed.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            needed.update(a.name.split(".")[0] for a in node.names)
    needed -= {"os", "sys", "pathlib"}
    needed |= {ast.literal_eval(kw["package"]) for kw in _node_actions(tree)} - {"landmark_flow"}
    missing = needed - _exec_depends()
    assert not missing, f"{launch_file.name} needs {sorted(missing)} in package.xml"


@pytest.mark.parametrize("launch_file", launch_files(), ids=lambda p: p.name)
def test_launch_files_take_use_sim_time_and_start_optional_actions_first(launch_file):
    """`use_sim_time:=true` reaches every node (the `ros2 bag play --clock` workflow), and
    conditional actions (RViz) come before the package's nodes in the launch
    description: if one fails, launch stops before it has started anything that could
    be left running."""
    tree = ast.parse(launch_file.read_text())
    declared = {ast.literal_eval(c.args[0]) for c in ast.walk(tree)
                if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "DeclareLaunchArgument"}
    assert "use_sim_time" in declared
    for kw in _node_actions(tree):
        assert "use_sim_time" in ast.unparse(kw["parameters"]), ast.unparse(kw["parameters"])
    assigned = {t.id: a.value for a in ast.walk(tree) if isinstance(a, ast.Assign)
                for t in a.targets if isinstance(t, ast.Name)}

    def is_conditional(element):
        value = assigned.get(element.id) if isinstance(element, ast.Name) else element
        return isinstance(value, ast.Call) and any(k.arg == "condition" for k in value.keywords)

    description = next(c for c in ast.walk(tree)
                       if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "LaunchDescription")
    actions = [e for e in description.args[0].elts
               if not (isinstance(e, ast.Call) and getattr(e.func, "id", None) == "DeclareLaunchArgument")]
    kinds = [is_conditional(e) for e in actions]
    assert kinds == sorted(kinds, reverse=True), [ast.unparse(e) for e in actions]


def test_demo_launch_nodes_are_installed_and_configured():
    """make demo starts DEMO_NODES of demo.launch.py with DEFAULT_CONFIG: every node is
    an installed executable with a section in that file (whose keys the Rust test
    tests/config_files.rs validates against the node's config struct)."""
    import yaml

    consts = _constants(ast.parse((REPO / "launch" / "demo.launch.py").read_text()))
    config = yaml.safe_load((REPO / "config" / consts["DEFAULT_CONFIG"]).read_text())
    assert len(consts["DEMO_NODES"]) == 3
    for executable, name, remappings in consts["DEMO_NODES"]:
        assert (PREFIX / "lib" / "landmark_flow" / executable).is_file(), executable
        assert "ros__parameters" in config[name], name
        for src, dst in remappings:
            assert src and dst
    assert (PREFIX / "share" / "landmark_flow" / "rviz" / consts["RVIZ_CONFIG"]).is_file()


def test_rviz_config_shows_what_the_node_publishes():
    import yaml

    rviz = yaml.safe_load((REPO / "rviz" / "landmark_flow.rviz").read_text())
    manager = rviz["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "odom"
    topics = {d["Topic"]["Value"] for d in manager["Displays"] if "Topic" in d}
    assert {"markers", "criterion_heatmap", "goal_pose", "odom"} <= topics
    assert "robot_pose" in topics
    assert all(t in PUBLISHED | PUBLISHED_DRIFTING or t.startswith("landmarks/") for t in topics), topics
    classes = {d["Class"] for d in manager["Displays"]}
    assert {"rviz_default_plugins/MarkerArray", "rviz_default_plugins/Map",
            "rviz_default_plugins/PoseWithCovariance", "rviz_default_plugins/TF"} <= classes


def test_demo_launch_drift_argument_selects_the_drift_config_and_map_frame():
    """demo.launch.py drift:=true (make demo-drift): DRIFT_CONFIG is installed, starts the
    same DEMO_NODES with drifting odometry, and RViz's fixed frame is then the node's
    map frame; without it the fixed frame is RVIZ_CONFIG's own."""
    import yaml

    tree = ast.parse((REPO / "launch" / "demo.launch.py").read_text())
    consts = _constants(tree)
    declared = {ast.literal_eval(c.args[0]): c for c in ast.walk(tree)
                if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "DeclareLaunchArgument"}
    assert {"namespace", "use_rviz", "drift", "config", "use_sim_time"} <= set(declared)
    assert ast.literal_eval(next(k.value for k in declared["drift"].keywords if k.arg == "default_value")) == "false"
    # `config` is declared after `drift`: its default substitutes drift's value.
    names = [ast.literal_eval(c.args[0]) for c in ast.walk(tree)
             if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "DeclareLaunchArgument"]
    assert names.index("drift") < names.index("config")
    config_default = ast.unparse(next(k.value for k in declared["config"].keywords if k.arg == "default_value"))
    assert "DRIFT_CONFIG" in config_default and "DEFAULT_CONFIG" in config_default, config_default

    assert (PREFIX / "share" / "landmark_flow" / "config" / consts["DRIFT_CONFIG"]).is_file()
    drift = yaml.safe_load((REPO / "config" / consts["DRIFT_CONFIG"]).read_text())
    for _, name, _ in consts["DEMO_NODES"]:
        assert "ros__parameters" in drift[name], name
    localizer = drift["landmark_flow_node"]["ros__parameters"]["localizer"]
    assert localizer["odometry"] == "drifting"
    assert localizer["map_frame_id"] == consts["DRIFT_FIXED_FRAME"]
    robot = drift["sim_robot"]["ros__parameters"]
    assert robot["gyro_bias_rad_per_s"] != 0 and robot["wheel_scale_error"] != 0
    assert robot["map_frame_id"] == consts["DRIFT_FIXED_FRAME"]

    rviz = yaml.safe_load((REPO / "rviz" / consts["RVIZ_CONFIG"]).read_text())
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == consts["FIXED_FRAME"]
    rviz_node = next(kw for kw in _node_actions(tree) if ast.literal_eval(kw["package"]) == "rviz2")
    assert "if_drift(DRIFT_FIXED_FRAME, FIXED_FRAME)" in ast.unparse(rviz_node["arguments"])


def test_an_old_cargo_stops_the_build_at_once_with_one_line(tmp_path):
    """Ubuntu 24.04's rosdep cargo (1.75) cannot build the locked dependencies: the
    configure step stops with the required version (Cargo.toml's rust-version) and how
    to get it, instead of failing deep inside cargo; the cargo in use passes."""
    import re
    cmake = shutil.which("cmake")
    assert cmake, "cmake is on PATH under scripts/with_ros"
    rust_version = re.search(r'^rust-version = "([0-9.]+)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)
    old = tmp_path / "cargo"
    old.write_text("#!/bin/sh\necho 'cargo 1.75.0'\n")
    old.chmod(0o755)
    script = str(REPO / "cmake" / "check_cargo.cmake")
    r = subprocess.run([cmake, f"-DCARGO_EXECUTABLE={old}", "-P", script], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    message = " ".join(r.stderr.split())
    assert f"needs cargo >= {rust_version}" in message and "cargo 1.75.0" in message and "rustup" in message, message
    current = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    r = subprocess.run([cmake, f"-DCARGO_EXECUTABLE={current}", "-P", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
