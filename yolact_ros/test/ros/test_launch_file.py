"""segment.launch.py evaluated with stand-ins for launch / launch_ros (no ROS needed)."""

from pathlib import Path

import launch_standins
import pytest
import yaml

PACKAGE = Path(__file__).resolve().parents[2]
LAUNCH_FILE = PACKAGE / 'launch' / 'segment.launch.py'
SHARE = '/opt/ws/install/yolact_ros/share/yolact_ros'


@pytest.fixture
def standins(monkeypatch):
    launch_standins.install(monkeypatch, {'yolact_ros': SHARE})


def test_defaults_start_only_the_node_with_the_package_params(standins):
    (node,) = launch_standins.run_launch_file(LAUNCH_FILE)
    kwargs = node.kwargs
    assert (kwargs['package'], kwargs['executable'], kwargs['name']) == (
        'yolact_ros', 'segment_node', 'segment_node')
    assert kwargs['namespace'] == ''
    assert kwargs['parameters'] == [f'{SHARE}/config/params.yaml', {}]
    assert kwargs['remappings'] == [('image', 'image'), ('image/compressed', 'image/compressed')]


def test_arguments_override_params_remap_and_namespace(standins):
    nodes = launch_standins.run_launch_file(LAUNCH_FILE, {
        'weights': '/models/w.pth', 'device': 'cpu', 'image': '/camera/color/image_raw',
        'namespace': 'robot1', 'params_file': '/tmp/my.yaml', 'rviz': 'true'})
    segment, rviz = nodes
    assert segment.kwargs['namespace'] == 'robot1'
    assert segment.kwargs['parameters'] == ['/tmp/my.yaml',
                                            {'weights': '/models/w.pth', 'device': 'cpu'}]
    assert segment.kwargs['remappings'] == [
        ('image', '/camera/color/image_raw'),
        ('image/compressed', '/camera/color/image_raw/compressed')]
    assert (rviz.kwargs['package'], rviz.kwargs['namespace']) == ('rviz2', 'robot1')
    assert rviz.kwargs['arguments'] == ['-d', f'{SHARE}/config/yolact.rviz']
    command = launch_standins.command_line(segment, 'segment_node')
    assert command[:2] == ['segment_node', '--ros-args']
    assert ['-r', '__ns:=/robot1'] == command[4:6]
    assert '--params-file' in command and 'weights:=/models/w.pth' in command


def test_unknown_argument_is_an_error(standins):
    with pytest.raises(ValueError, match='unknown launch arguments'):
        launch_standins.run_launch_file(LAUNCH_FILE, {'weigths': 'typo.pth'})


def test_installed_files_are_the_ones_the_launch_file_uses():
    params = yaml.safe_load((PACKAGE / 'config' / 'params.yaml').read_text())
    assert '/**/segment_node' in params  # matches the node in any namespace
    rviz = yaml.safe_load((PACKAGE / 'config' / 'yolact.rviz').read_text())
    displays = rviz['Visualization Manager']['Displays']
    overlay = next(d for d in displays if d['Class'] == 'rviz_default_plugins/Image'
                   and d['Enabled'])
    assert overlay['Topic']['Value'] == 'overlay'  # relative: follows the namespace
    setup = (PACKAGE / 'setup.py').read_text()
    assert "glob('launch/*.launch.py')" in setup and "glob('config/*')" in setup
