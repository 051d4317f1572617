"""Teleoperation with recording: the arm (real, or Gazebo with sim:=true) with the mbpo_arm node in
teleop mode, following /teleop/joint_targets (a leader arm or a joystick node publishes them), and
`ros2 bag record -s mcap` of the topics that bootstrapping reads.

    ros2 launch mbpo_arm teleop_record.launch.py hardware_plugin:=<plugin> bag:=teleop_bag
    ros2 service call /mbpo_arm/start std_srvs/srv/Trigger
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

# What the bootstrap import reads: the measured states, the efforts sent, the operator's targets,
# and the node's diagnostics (safety events).
RECORDED_TOPICS = [
    '/joint_states',
    '/effort_controller/commands',
    '/teleop/joint_targets',
    '/diagnostics',
]


def launch_setup(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    here = os.path.dirname(os.path.abspath(__file__))
    sim = arg('sim') == 'true'
    robot = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(here, 'gazebo.launch.py' if sim else 'arm.launch.py')),
        launch_arguments={'mode': 'teleop', **({} if sim else {'hardware_plugin': arg('hardware_plugin')})}.items(),
    )
    record = ExecuteProcess(
        cmd=['ros2', 'bag', 'record', '-s', 'mcap', '-o', arg('bag'), *RECORDED_TOPICS],
        output='screen',
    )
    return [robot, record]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('sim', default_value='false', description='true: Gazebo instead of a real arm'),
        DeclareLaunchArgument(
            'hardware_plugin',
            default_value='mock_components/GenericSystem',
            description="the arm's ros2_control hardware plugin",
        ),
        DeclareLaunchArgument('bag', default_value='teleop_bag', description='output bag directory'),
        OpaqueFunction(function=launch_setup),
    ])
