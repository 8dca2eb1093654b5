"""Launch segment_node, and RViz showing its overlay on request.

    ros2 launch yolact_ros segment.launch.py weights:=/path/to/weights.pth \
        image:=/camera/color/image_raw rviz:=true

Non-empty ``weights``, ``config`` and ``device`` override ``params_file``. ``image`` remaps the
node's ``image`` input (and ``image/compressed`` to ``<image>/compressed``).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

TRUE_VALUES = ('true', '1', 'yes', 'on')


def launch_setup(context, *args, **kwargs):
    """Build the nodes from the evaluated launch arguments."""
    def value(name):
        return LaunchConfiguration(name).perform(context)

    overrides = {name: value(name) for name in ('weights', 'config', 'device') if value(name)}
    image = value('image')
    namespace = value('namespace')
    nodes = [Node(
        package='yolact_ros', executable='segment_node', name='segment_node',
        namespace=namespace, output='screen', emulate_tty=True,
        parameters=[value('params_file'), overrides],
        remappings=[('image', image), ('image/compressed', image + '/compressed')])]
    if value('rviz').lower() in TRUE_VALUES:
        share = FindPackageShare('yolact_ros').perform(context)
        nodes.append(Node(
            package='rviz2', executable='rviz2', name='rviz2', namespace=namespace,
            arguments=['-d', share + '/config/yolact.rviz'], output='screen'))
    return nodes


def generate_launch_description():
    """Declare the arguments and defer the nodes to :func:`launch_setup`."""
    default_params = PathJoinSubstitution(
        [FindPackageShare('yolact_ros'), 'config', 'params.yaml'])
    return LaunchDescription([
        DeclareLaunchArgument('weights', default_value='',
                              description='Model weights file (overrides params_file if set)'),
        DeclareLaunchArgument('config', default_value='',
                              description='Model config name (overrides params_file if set)'),
        DeclareLaunchArgument('device', default_value='',
                              description='auto, cpu, cuda or cuda:N (overrides params_file)'),
        DeclareLaunchArgument('image', default_value='image',
                              description='Input image topic'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its topics'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters YAML of segment_node'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Start RViz showing the overlay'),
        OpaqueFunction(function=launch_setup),
    ])
