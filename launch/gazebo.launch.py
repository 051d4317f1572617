"""The arm in Gazebo (gz sim via ros_gz_sim): the world, the arm spawned from robot_description,
gz_ros2_control with effort command interfaces and config/controllers.yaml, a /clock bridge, the
same controllers and the mbpo_arm node, all on simulated time (use_sim_time).

    ros2 launch mbpo_arm gazebo.launch.py
"""

import os
import sys

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbpo_arm_common as common  # noqa: E402

from ament_index_python.packages import get_package_share_directory  # noqa: E402


def launch_setup(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    controllers = common.share_path(common.CONTROLLERS_FILE)
    config = arg('config') or common.share_path(common.CONFIG_FILE)
    description = common.robot_description(
        common.share_path(common.URDF_FILE), 'gz_ros2_control/GazeboSimSystem', gazebo=True
    )
    gz_sim = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            os.path.join(get_package_share_directory('ros_gz_sim'), 'launch', 'gz_sim.launch.py')
        ),
        launch_arguments={'gz_args': '-r -v 3 %s' % arg('world')}.items(),
    )
    spawn = Node(
        package='ros_gz_sim',
        executable='create',
        arguments=['-topic', 'robot_description', '-name', 'mbpo_arm', '-z', '0.0'],
        output='screen',
    )
    clock_bridge = Node(
        package='ros_gz_bridge',
        executable='parameter_bridge',
        arguments=['/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock'],
        output='screen',
    )
    return [
        gz_sim,
        clock_bridge,
        common.robot_state_publisher(description, True),
        spawn,
        *common.controller_spawners(True),
        common.mbpo_arm_node(
            arg('mode'),
            arg('policy'),
            arg('episodes'),
            arg('autostart') == 'true',
            config,
            common.controller_joints(controllers),
            True,
            learn={name: arg(name) for name in ('steps', 'profile', 'out', 'resume')},
        ),
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('world', default_value='empty.sdf', description='Gazebo world'),
        DeclareLaunchArgument('config', default_value='', description='parameter file (default: config/mbpo_arm.yaml)'),
        DeclareLaunchArgument('mode', default_value='run', description='run | learn | teleop'),
        DeclareLaunchArgument('policy', default_value='pd', description='policy in run mode'),
        DeclareLaunchArgument('episodes', default_value='0', description='episodes per ~/start (0: until ~/stop)'),
        DeclareLaunchArgument('autostart', default_value='false', description='start without waiting for ~/start'),
        DeclareLaunchArgument('steps', default_value='', description='learn: real steps to collect (0: until ~/stop)'),
        DeclareLaunchArgument('profile', default_value='', description='learn: hyperparameter profile (empty: the default, quick; eager: quick learning from the 200th real step with G = 20; paper: the papers\' sizes)'),
        DeclareLaunchArgument('out', default_value='', description='learn: run directory'),
        DeclareLaunchArgument('resume', default_value='', description='learn: continue the run in this directory'),
        OpaqueFunction(function=launch_setup),
    ])
