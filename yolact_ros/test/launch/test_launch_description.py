"""segment.launch.py evaluated with the real ``launch``/``launch_ros`` (no process is started).

The launch description is visited in a :class:`launch.LaunchContext` with the given arguments,
and each node's command line and environment are expanded exactly as ``ros2 launch`` would.
"""

from pathlib import Path

import _launch_gate  # noqa: F401,I100  (skips the module where launch tests cannot run)
from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext
from launch.launch_description_sources import get_launch_description_from_python_launch_file
from launch.utilities import perform_substitutions
from launch_ros.actions import Node
import pytest
import yaml

SHARE = get_package_share_directory('yolact_ros')
LAUNCH_FILE = Path(SHARE) / 'launch' / 'segment.launch.py'
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def evaluate(arguments=None) -> tuple:
    """Return the nodes the launch file starts with ``arguments``, and the launch context."""
    context = LaunchContext()
    context.launch_configurations.update(arguments or {})
    pending = list(get_launch_description_from_python_launch_file(str(LAUNCH_FILE)).entities)
    nodes = []
    while pending:
        action = pending.pop(0)
        if isinstance(action, Node):
            nodes.append(action)
            continue
        pending[:0] = action.visit(context) or []
    return nodes, context


def expand(node: Node, context: LaunchContext):
    """Expand a Node's command line and environment as ``Node.execute`` does, without running."""
    node._perform_substitutions(context)
    ros_arguments = {'name': f'__node:={node._Node__expanded_node_name}'}
    if node.expanded_node_namespace != '':
        ros_arguments['ns'] = f'__ns:={node.expanded_node_namespace}'
    context.extend_locals({'ros_specific_arguments': ros_arguments})
    node.process_description.prepare(context, node)
    return node.process_description.final_cmd, node.process_description.final_env


def params_files(command: list) -> list:
    """Return each ``--params-file`` of ``command``: a path, or the dict launch_ros wrote.

    launch_ros writes a dict of parameters to a file whose one entry is the node's full name.
    """
    found = []
    for flag, value in zip(command, command[1:]):
        if flag == '--params-file':
            if Path(value).name.startswith('launch_params_'):
                # FullLoader: launch_ros writes list parameters as tuples (!!python/tuple)
                (content,) = yaml.load(Path(value).read_text(), yaml.FullLoader).values()
                value = content['ros__parameters']
            found.append(value)
    return found


def test_defaults_start_only_the_node_with_the_package_params():
    (node,), context = evaluate()
    command, env = expand(node, context)
    assert command[0].endswith('/lib/yolact_ros/segment_node')
    assert command[1] == '--ros-args'
    assert ['-r', '__node:=segment_node'] == command[2:4]
    assert ['-r', '__ns:=/'] == command[4:6]
    assert params_files(command) == [f'{SHARE}/config/params.yaml', {}]  # no override
    for rule in ('image:=image', 'image/compressed:=image/compressed'):
        assert rule in command
    assert not set(PROFILE_VARIABLES) & set(env)


def test_arguments_override_params_remap_namespace_and_profile(tmp_path):
    my_params = tmp_path / 'my.yaml'
    my_params.write_text('/**/segment_node:\n  ros__parameters:\n    top_k: 5\n')
    (segment_node, rviz), context = evaluate({
        'weights': '/models/w.pth', 'device': 'cpu', 'image': '/camera/color/image_raw',
        'image_transport': 'compressed', 'namespace': 'robot1', 'params_file': str(my_params),
        'dds_profile': 'true', 'rviz': 'true'})
    segment, env = expand(segment_node, context)
    assert ['-r', '__ns:=/robot1'] == segment[4:6]
    assert params_files(segment) == [str(my_params), {
        'weights': '/models/w.pth', 'device': 'cpu', 'image_transport': 'compressed'}]
    assert 'image:=/camera/color/image_raw' in segment
    assert 'image/compressed:=/camera/color/image_raw/compressed' in segment
    for name in PROFILE_VARIABLES:
        assert env[name] == f'{SHARE}/config/fastdds_camera.xml'
    assert Path(env[PROFILE_VARIABLES[0]]).is_file()
    rviz._perform_substitutions(context)  # its executable is not installed here: no command
    assert (rviz.node_package, rviz.expanded_node_namespace) == ('rviz2', '/robot1')
    assert [perform_substitutions(context, part) for part in rviz.cmd[1:3]] == [
        '-d', f'{SHARE}/config/yolact.rviz']
    assert {perform_substitutions(context, key): perform_substitutions(context, value)
            for key, value in rviz.additional_env} == {name: env[name]
                                                       for name in PROFILE_VARIABLES}


def test_depth_enables_3d_and_remaps_the_depth_image_and_its_camera_info():
    (node,), context = evaluate({'depth': '/camera/aligned_depth_to_color/image_raw'})
    command, _ = expand(node, context)
    assert params_files(command)[1] == {'depth.enabled': True}
    assert 'depth/image:=/camera/aligned_depth_to_color/image_raw' in command
    assert 'depth/camera_info:=/camera/aligned_depth_to_color/camera_info' in command


def test_cameras_set_the_parameter_and_remap_each_camera_given_a_topic():
    (node,), context = evaluate({'cameras': 'front=/cam0/image_raw, rear'})
    command, _ = expand(node, context)
    assert params_files(command)[1] == {'cameras': ('front', 'rear')}
    assert 'front/image:=/cam0/image_raw' in command
    assert 'front/image/compressed:=/cam0/image_raw/compressed' in command
    assert not any(rule.startswith('rear/') for rule in command)  # no topic: its own name


def test_dds_profile_accepts_a_path():
    (node,), context = evaluate({'dds_profile': '/etc/my_profile.xml'})
    _, env = expand(node, context)
    assert {env[name] for name in PROFILE_VARIABLES} == {'/etc/my_profile.xml'}


@pytest.mark.parametrize('arguments, message', [
    ({'image_transport': 'jpeg'}, 'image_transport'),
])
def test_invalid_choice_is_an_error(arguments, message):
    with pytest.raises(Exception, match=message):
        evaluate(arguments)


def test_camera_profile_sizes_shared_memory_for_frames():
    """The SHM segment holds several 640x480 bgr8 frames; UDP stays as the fallback."""
    import xml.etree.ElementTree as ET

    ns = {'dds': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
    root = ET.parse(Path(SHARE) / 'config' / 'fastdds_camera.xml').getroot()
    transports = {t.findtext('dds:transport_id', namespaces=ns): t
                  for t in root.iterfind('.//dds:transport_descriptor', ns)}
    kinds = {t.findtext('dds:type', namespaces=ns) for t in transports.values()}
    assert kinds == {'SHM', 'UDPv4'}
    shm = next(t for t in transports.values() if t.findtext('dds:type', namespaces=ns) == 'SHM')
    assert int(shm.findtext('dds:segment_size', namespaces=ns)) >= 4 * 640 * 480 * 3
    participant = root.find('.//dds:participant', ns)
    assert participant.get('is_default_profile') == 'true'
    used = [t.text for t in participant.iterfind('.//dds:userTransports/dds:transport_id', ns)]
    assert sorted(used) == sorted(transports)
    assert participant.findtext('.//dds:useBuiltinTransports', namespaces=ns) == 'false'
