"""A real arm under ros2_control: robot_state_publisher, ros2_control_node with
config/controllers.yaml, the joint_state_broadcaster and effort_controller spawners, and the
mbpo_arm node.

    ros2 launch mbpo_arm arm.launch.py hardware_plugin:=<your ros2_control hardware plugin>

Without hardware_plugin the URDF's mock_components/GenericSystem runs the graph with no arm (it
echoes commands as states: a dry run of the wiring, not of the dynamics).
"""

import os
import sys

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbpo_arm_common as common  # noqa: E402


def launch_setup(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    urdf = arg('urdf') or common.share_path(common.URDF_FILE)
    controllers = common.share_path(common.CONTROLLERS_FILE)
    config = arg('config') or common.share_path(common.CONFIG_FILE)
    description = common.robot_description(urdf, arg('hardware_plugin'))
    control_node = Node(
        package='controller_manager',
        executable='ros2_control_node',
        parameters=[{'robot_description': description}, controllers],
        output='screen',
    )
    return [
        common.robot_state_publisher(description, False),
        control_node,
        *common.controller_spawners(False),
        common.mbpo_arm_node(
            arg('mode'),
            arg('policy'),
            arg('episodes'),
            arg('autostart') == 'true',
            config,
            common.controller_joints(controllers),
            False,
            learn={name: arg(name) for name in ('steps', 'profile', 'out', 'resume')},
        ),
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            'hardware_plugin',
            default_value=common.URDF_PLUGIN,
            description="the arm's ros2_control hardware plugin (effort command interfaces)",
        ),
        DeclareLaunchArgument('urdf', default_value='', description='robot description (default: urdf/arm.urdf)'),
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
