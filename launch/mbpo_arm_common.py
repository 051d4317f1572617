"""Pieces the mbpo_arm launch files share: the robot description, the controllers, our node.

Imported by arm.launch.py, gazebo.launch.py and teleop_record.launch.py from this directory.
"""

import os
import tempfile

import yaml
from ament_index_python.packages import get_package_share_directory
from launch_ros.actions import Node

PACKAGE = 'mbpo_arm'
URDF_FILE = 'urdf/arm.urdf'
CONTROLLERS_FILE = 'config/controllers.yaml'
CONFIG_FILE = 'config/mbpo_arm.yaml'
# The stand-in plugin named in the URDF's <ros2_control> block (replaced per launch file).
URDF_PLUGIN = 'mock_components/GenericSystem'


def share_path(relative):
    """A file of the installed package."""
    return os.path.join(get_package_share_directory(PACKAGE), relative)


def robot_description(urdf_path, hardware_plugin, gazebo=False):
    """The URDF text with the given ros2_control plugin.

    For Gazebo, also points gz_ros2_control at the installed controllers file and fixes the base
    to the world (the plain URDF leaves the base free, as the embedded simulator expects).
    """
    with open(urdf_path, encoding='utf-8') as f:
        text = f.read()
    plugin_tag = '<plugin>%s</plugin>' % URDF_PLUGIN
    if plugin_tag not in text:
        raise RuntimeError('%s: no %s in its <ros2_control> block' % (urdf_path, plugin_tag))
    text = text.replace(plugin_tag, '<plugin>%s</plugin>' % hardware_plugin)
    if gazebo:
        params_tag = '<parameters>%s</parameters>' % CONTROLLERS_FILE
        if params_tag not in text:
            raise RuntimeError('%s: no %s in its <gazebo> block' % (urdf_path, params_tag))
        text = text.replace(params_tag, '<parameters>%s</parameters>' % share_path(CONTROLLERS_FILE))
        world = (
            '<link name="world"/>\n'
            '  <joint name="world_joint" type="fixed">'
            '<parent link="world"/><child link="base_link"/></joint>\n'
            '  <link name="base_link">'
        )
        text = text.replace('<link name="base_link">', world, 1)
    return text


def controller_joints(controllers_path):
    """The effort controller's joints, in its order (our node publishes in this order)."""
    with open(controllers_path, encoding='utf-8') as f:
        doc = yaml.safe_load(f)
    return list(doc['effort_controller']['ros__parameters']['joints'])


def robot_state_publisher(description, use_sim_time):
    return Node(
        package='robot_state_publisher',
        executable='robot_state_publisher',
        parameters=[{'robot_description': description, 'use_sim_time': use_sim_time}],
        output='screen',
    )


def controller_spawners(use_sim_time):
    """Spawn joint_state_broadcaster and effort_controller on /controller_manager."""
    return [
        Node(
            package='controller_manager',
            executable='spawner',
            arguments=[name, '--controller-manager', '/controller_manager'],
            parameters=[{'use_sim_time': use_sim_time}],
            output='screen',
        )
        for name in ('joint_state_broadcaster', 'effort_controller')
    ]


def node_overrides_file(overrides):
    """The launch file's own settings as a parameter file scoped to our node's name.

    A dict in `parameters=` reaches the node under the `/**` wildcard, which rcl ranks below the
    `mbpo_arm:` section of config/mbpo_arm.yaml whatever the order: the params file's `driver: sim`
    won over the launch file's `driver: ros2`. Scoped to the node and passed after the params file,
    the launch file's keys win, and only those keys.
    """
    handle, path = tempfile.mkstemp(prefix='mbpo_arm_launch_', suffix='.yaml')
    with os.fdopen(handle, 'w', encoding='utf-8') as f:
        yaml.safe_dump({'mbpo_arm': {'ros__parameters': overrides}}, f)
    return path


def mbpo_arm_node(mode, policy, episodes, autostart, config_path, joints, use_sim_time, learn=None):
    """Our node: the mbpo-arm CLI's `node` command, with config/mbpo_arm.yaml as its parameters.

    `learn`: for mode learn, the `train` flags to pass (e.g. {'steps': '3000', 'profile': 'quick',
    'out': DIR, 'resume': DIR}); empty values are left out.
    """
    arguments = ['--mode', mode, '--episodes', str(episodes)]
    if mode != 'teleop':
        arguments += ['--policy', policy]
    if autostart:
        arguments.append('--autostart')
    if mode == 'learn':
        for flag, value in (learn or {}).items():
            if value:
                arguments += ['--' + flag, str(value)]
    return Node(
        package=PACKAGE,
        executable='mbpo_arm_node',
        name='mbpo_arm',
        arguments=arguments,
        parameters=[
            config_path,
            # The node takes the arm from robot_state_publisher's /robot_description (the same
            # text ros2_control runs), not from its own urdf parameter: `urdf:=` changes both.
            node_overrides_file({
                'driver': 'ros2',
                'controller_joints': joints,
                'use_sim_time': use_sim_time,
                'robot_description_topic': '/robot_description',
            }),
        ],
        output='screen',
        emulate_tty=True,
    )
