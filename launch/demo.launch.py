"""Closed-loop demo: a simulated robot, a simulated range sensor and landmark_flow_node.

    ros2 launch landmark_flow demo.launch.py [namespace:=<ns>] [use_rviz:=true] [config:=<file>]
                                             [use_sim_time:=true]

sim_robot drives toward goal_pose; sim_range_sensor ranges the true landmark from the
robot's true pose (ground_truth/odom); landmark_flow_node fuses the ranges with the
robot's odometry and plans the next goal. `make demo` starts the same DEMO_NODES with
the same config file where `ros2 launch` is not installed (scripts/demo.py).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# (executable, node name, remappings). scripts/demo.py reads this list.
DEMO_NODES = [
    ("sim_robot", "sim_robot", []),
    ("sim_range_sensor", "sim_range_sensor", [("odom", "ground_truth/odom")]),
    ("landmark_flow_node", "landmark_flow_node", []),
]
DEFAULT_CONFIG = "demo.yaml"
RVIZ_CONFIG = "landmark_flow.rviz"


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
        arguments=["-d", os.path.join(share, "rviz", RVIZ_CONFIG)],
        parameters=[use_sim_time],
        condition=IfCondition(LaunchConfiguration("use_rviz")),
    )
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="", description="namespace of all nodes"),
        DeclareLaunchArgument("use_rviz", default_value="false", description="start RViz"),
        DeclareLaunchArgument(
            "config", default_value=os.path.join(share, "config", DEFAULT_CONFIG),
            description="parameters file for all demo nodes"),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false",
            description="run every node on /clock (e.g. `ros2 bag play --clock`)"),
        # RViz first: an optional action that fails (rviz2 not installed) then fails
        # before any node is started, instead of leaving them running as orphans.
        rviz,
        *nodes,
    ])
