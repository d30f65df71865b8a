"""The colcon install tree has everything where ROS tools look for it, and the launch
files only name executables and config files that are installed."""

import ast
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = Path(os.environ.get("LANDMARK_FLOW_WS", REPO / "_ws")) / "install" / "landmark_flow"


def launch_files():
    return sorted((REPO / "launch").glob("*.launch.py"))


def test_executables_are_where_ros2_run_looks():
    for exe in ["sim_range_sensor"]:
        path = PREFIX / "lib" / "landmark_flow" / exe
        assert path.is_file() and os.access(path, os.X_OK), path


def test_share_has_package_xml_launch_and_config():
    share = PREFIX / "share" / "landmark_flow"
    assert (share / "package.xml").is_file()
    for f in launch_files():
        assert (share / "launch" / f.name).is_file(), f.name
    for f in (REPO / "config").glob("*.yaml"):
        assert (share / "config" / f.name).is_file(), f.name
    index = PREFIX / "share" / "ament_index" / "resource_index"
    assert (index / "packages" / "landmark_flow").is_file()
    assert "msg/RangeMeasurement" in (index / "rosidl_interfaces" / "landmark_flow").read_text()


def test_python_interfaces_import():
    from landmark_flow.msg import LandmarkBelief, LandmarkBeliefArray, RangeMeasurement  # noqa

    assert LandmarkBelief.STATE_TRACKING == 1
    m = RangeMeasurement()
    assert m.variance == 0.0 and m.landmark_id == ""


def _node_actions(tree):
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            yield {k.arg: k.value for k in call.keywords}


@pytest.mark.parametrize("launch_file", launch_files(), ids=lambda p: p.name)
def test_launch_file_names_installed_executables_and_configs(launch_file):
    tree = ast.parse(launch_file.read_text())
    nodes = list(_node_actions(tree))
    assert nodes, "no Node actions"
    for kw in nodes:
        assert ast.literal_eval(kw["package"]) == "landmark_flow"
        exe = ast.literal_eval(kw["executable"])
        assert (PREFIX / "lib" / "landmark_flow" / exe).is_file(), exe
    # Every config file a launch file joins into a path exists in the share tree.
    for const in ast.walk(tree):
        if isinstance(const, ast.Constant) and isinstance(const.value, str) \
                and const.value.endswith(".yaml"):
            assert (PREFIX / "share" / "landmark_flow" / "config" / const.value).is_file(), const.value
