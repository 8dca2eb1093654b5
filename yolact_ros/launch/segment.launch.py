"""Launch segment_node, and RViz showing its overlay on request.

    ros2 launch yolact_ros segment.launch.py weights:=/path/to/weights.pth \
        image:=/camera/color/image_raw rviz:=true

Non-empty ``weights``, ``config``, ``device`` and ``image_transport`` override ``params_file``.
``image`` remaps the node's ``image`` input (and ``image/compressed`` to ``<image>/compressed``).
A non-empty ``cameras`` serves several cameras with one model: ``cameras:=front,rear`` sets the
``cameras`` parameter (``front/image`` in, ``front/instances``, ... out) and
``cameras:=front=/cam0/image_raw,rear=/cam1/image_raw`` also remaps each camera's input.
A non-empty ``depth`` (an aligned depth image topic) sets ``depth.enabled`` and remaps
``depth/image`` to it and ``depth/camera_info`` to the ``camera_info`` beside it.
``dds_profile:=true`` starts the nodes with the package's Fast DDS profile for camera-sized
frames (``config/fastdds_camera.xml``; a path selects another file); the publisher needs it too.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

TRUE_VALUES = ('true', '1', 'yes', 'on')
FALSE_VALUES = ('false', '0', 'no', 'off', '')
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def dds_environment(dds_profile: str, share: str) -> dict:
    """Return the environment that applies ``dds_profile`` (true, false or an XML path)."""
    if dds_profile.lower() in FALSE_VALUES:
        return {}
    if dds_profile.lower() in TRUE_VALUES:
        dds_profile = share + '/config/fastdds_camera.xml'
    return dict.fromkeys(PROFILE_VARIABLES, dds_profile)


def camera_inputs(cameras: str) -> tuple:
    """Return the camera names of ``cameras`` (``NAME[=TOPIC],...``) and their remappings."""
    names, remappings = [], []
    for entry in filter(None, (part.strip() for part in cameras.split(','))):
        name, _, topic = (part.strip() for part in entry.partition('='))
        names.append(name)
        if topic:
            remappings += [(name + '/image', topic),
                           (name + '/image/compressed', topic + '/compressed')]
    return names, remappings


def launch_setup(context, *args, **kwargs):
    """Build the nodes from the evaluated launch arguments."""
    def value(name):
        return LaunchConfiguration(name).perform(context)

    overrides = {name: value(name) for name in ('weights', 'config', 'device', 'image_transport')
                 if value(name)}
    image = value('image')
    remappings = [('image', image), ('image/compressed', image + '/compressed')]
    cameras, camera_remappings = camera_inputs(value('cameras'))
    if cameras:
        overrides['cameras'] = cameras
        remappings += camera_remappings
    depth = value('depth')
    if depth:
        overrides['depth.enabled'] = True
        remappings += [('depth/image', depth),
                       ('depth/camera_info', depth.rsplit('/', 1)[0] + '/camera_info')]
    namespace = value('namespace')
    share = FindPackageShare('yolact_ros').perform(context)
    env = dds_environment(value('dds_profile'), share)
    nodes = [Node(
        package='yolact_ros', executable='segment_node', name='segment_node',
        namespace=namespace, output='screen', emulate_tty=True,
        parameters=[value('params_file'), overrides],
        remappings=remappings,
        additional_env=env)]
    if value('rviz').lower() in TRUE_VALUES:
        nodes.append(Node(
            package='rviz2', executable='rviz2', name='rviz2', namespace=namespace,
            arguments=['-d', share + '/config/yolact.rviz'], output='screen',
            additional_env=env))
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
        DeclareLaunchArgument('cameras', default_value='',
                              description='Several cameras, one model: NAME[=TOPIC],... '
                                          '(NAME/image in, NAME/instances, ... out)'),
        DeclareLaunchArgument('depth', default_value='',
                              description='Aligned depth image topic: enables 3D outputs; '
                                          'camera_info is read beside it'),
        DeclareLaunchArgument('image_transport', default_value='',
                              choices=['', 'raw', 'compressed'],
                              description='raw: subscribe <image>; compressed: subscribe '
                                          '<image>/compressed (overrides params_file if set)'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its topics'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters YAML of segment_node'),
        DeclareLaunchArgument('dds_profile', default_value='false',
                              description='true: Fast DDS profile for camera-sized frames '
                                          '(config/fastdds_camera.xml); or a profile XML path'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='Start RViz showing the overlay'),
        OpaqueFunction(function=launch_setup),
    ])
