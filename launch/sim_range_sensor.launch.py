"""Start the simulated range sensor with a parameters file.

    ros2 launch landmark_flow sim_range_sensor.launch.py [config:=<file>] [namespace:=<ns>]
                                                         [use_sim_time:=true]
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("landmark_flow")
    return LaunchDescription([
        DeclareLaunchArgument(
            "config", default_value=os.path.join(share, "config", "sim_range_sensor.yaml"),
            description="parameters file for sim_range_sensor"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="run on /clock"),
        Node(
            package="landmark_flow",
            executable="sim_range_sensor",
            name="sim_range_sensor",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("config"), {"use_sim_time": LaunchConfiguration("use_sim_time")}],
            output="screen",
        ),
    ])
