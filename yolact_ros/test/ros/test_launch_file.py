"""Files segment.launch.py relies on (no ROS needed).

The launch file itself is evaluated with the real ``launch``/``launch_ros`` in
``test/launch/test_launch_description.py`` and run with ``ros2 launch`` in
``test/launch/test_launch_segment.py``.
"""

from pathlib import Path

import yaml

PACKAGE = Path(__file__).resolve().parents[2]


def test_installed_files_are_the_ones_the_launch_file_uses():
    params = yaml.safe_load((PACKAGE / 'config' / 'params.yaml').read_text())
    assert '/**/segment_node' in params  # matches the node in any namespace
    rviz = yaml.safe_load((PACKAGE / 'config' / 'yolact.rviz').read_text())
    displays = rviz['Visualization Manager']['Displays']
    overlay = next(d for d in displays if d['Class'] == 'rviz_default_plugins/Image'
                   and d['Enabled'])
    assert overlay['Topic']['Value'] == 'overlay'  # relative: follows the namespace
    shown = {d['Class']: d['Topic']['Value'] for d in displays if d['Enabled']}
    assert shown['rviz_default_plugins/MarkerArray'] == 'markers'  # 3D from depth
    assert shown['rviz_default_plugins/PointCloud2'] == 'points'
    assert (PACKAGE / 'config' / 'fastdds_camera.xml').is_file()
    setup = (PACKAGE / 'setup.py').read_text()
    assert "glob('launch/*.launch.py')" in setup and "glob('config/*')" in setup
