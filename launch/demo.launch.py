"""Closed-loop demo: a simulated robot, a simulated range sensor and landmark_flow_node.

    ros2 launch landmark_flow demo.launch.py [namespace:=<ns>] [use_rviz:=true] [config:=<file>]
                                             [use_sim_time:=true] [drift:=true]

sim_robot drives toward goal_pose; sim_range_sensor ranges the true landmark from the
robot's true pose (ground_truth/odom); landmark_flow_node fuses the ranges with the
robot's odometry and plans the next goal. `make demo` starts the same DEMO_NODES with
the same config file where `ros2 launch` is not installed (scripts/demo.py).

drift:=true: the same scenario with drifting odometry (DRIFT_CONFIG: sim_robot with a
gyro bias and a wheel scale error, landmark_flow_node with `localizer.odometry:
drifting`), RViz in the map frame; `make demo-drift` is its headless twin. An explicit
config:= wins over drift:= for the parameters.

config:=$(ros2 pkg prefix landmark_flow)/share/landmark_flow/config/demo_3d.yaml: a ceiling
anchor 2.5 m up, estimated in 3-D (`localizer.dimension: 3`; RViz shows its ellipsoid);
`make demo-3d` is its headless twin.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node

# (executable, node name, remappings). scripts/demo.py reads this list.
DEMO_NODES = [
    ("sim_robot", "sim_robot", []),
    ("sim_range_sensor", "sim_range_sensor", [("odom", "ground_truth/odom")]),
    ("landmark_flow_node", "landmark_flow_node", []),
]
DEFAULT_CONFIG = "demo.yaml"
# drift:=true: parameters and RViz fixed frame (the node's localizer.map_frame_id).
DRIFT_CONFIG = "demo_drift.yaml"
DRIFT_FIXED_FRAME = "map"
RVIZ_CONFIG = "landmark_flow.rviz"
# The fixed frame of RVIZ_CONFIG.
FIXED_FRAME = "odom"


def if_drift(when_drift, otherwise):
    """A substitution: `when_drift` with drift:=true, else `otherwise`."""
    return PythonExpression([
        f"{when_drift!r} if '", LaunchConfiguration("drift"), f"'.lower() == 'true' else {otherwise!r}"])


def generate_launch_description():
    share = get_package_share_directory("landmark_flow")
    namespace = LaunchConfiguration("namespace")
    config = LaunchConfiguration("config")
    use_sim_time = {"use_sim_time": LaunchConfiguration("use_sim_time")}
    nodes = [
        Node(
            package="landmark_flow",
            executable=executable,
            name=name,
            namespace=namespace,
            parameters=[config, use_sim_time],
            remappings=remappings,
            output="screen",
        )
        for executable, name, remappings in DEMO_NODES
    ]
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        namespace=namespace,
        arguments=["-d", os.path.join(share, "rviz", RVIZ_CONFIG),
                   "-f", if_drift(DRIFT_FIXED_FRAME, FIXED_FRAME)],
        parameters=[use_sim_time],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
    )
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all nodes"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="start RViz"),
        DeclareLaunchArgument(
            "drift", default_value="false",
            description=f"drifting odometry: {DRIFT_CONFIG} and RViz in the {DRIFT_FIXED_FRAME} frame"),
        DeclareLaunchArgument(
            "config",
            default_value=PathJoinSubstitution([share, "config", if_drift(DRIFT_CONFIG, DEFAULT_CONFIG)]),
            description=f"parameters file for all demo nodes (default {DEFAULT_CONFIG}, "
                        f"{DRIFT_CONFIG} with drift:=true)"),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false",
            description="run every node on /clock (e.g. `ros2 bag play --clock`)"),
        # RViz first: an optional action that fails (rviz2 not installed) then fails
        # before any node is started, instead of leaving them running as orphans.
        rviz,
        *nodes,
    ])
