"""Message definitions and manifests.

The vision_msgs copy equals upstream (pinned RIHS01 hashes), the embedded definitions equal the
.msg files, and the package manifests validate against the format-3 XSD.
"""

import json
import os
from pathlib import Path
import shutil
import subprocess

import pytest

from yolact_ros.ros.msg_definitions import MSG_DEFINITIONS

REPO_ROOT = Path(__file__).resolve().parents[3]
MSG_DIRS = {'vision_msgs': REPO_ROOT / '.ci' / 'vision_msgs' / 'msg',
            'yolact_ros_msgs': REPO_ROOT / 'yolact_ros_msgs' / 'msg'}
XSD = Path('/usr/share/ament_xmllint/xml-catalog/download.ros.org/schema/package_format3.xsd')

# RIHS01 type hashes of upstream vision_msgs 4.1.1 (the version Humble and Jazzy ship),
# computed from the upstream .msg files. If CI's copy drifts, these stop matching.
UPSTREAM_VISION_MSGS_HASHES = {
    'vision_msgs/msg/BoundingBox2D':
        'RIHS01_008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f',
    'vision_msgs/msg/BoundingBox3D':
        'RIHS01_bbb73a65c163d7f9bb29009c7bde9f7faa576bd2d23299c4511d19230dab4698',
    'vision_msgs/msg/Detection2D':
        'RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea',
    'vision_msgs/msg/Detection2DArray':
        'RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968',
    'vision_msgs/msg/Detection3D':
        'RIHS01_ddd703be132ab0b69d33121f1bb034132bfbb3b0ac5f9fb1516005ba1c8a265b',
    'vision_msgs/msg/Detection3DArray':
        'RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018',
    'vision_msgs/msg/LabelInfo':
        'RIHS01_3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783',
    'vision_msgs/msg/ObjectHypothesis':
        'RIHS01_51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90',
    'vision_msgs/msg/ObjectHypothesisWithPose':
        'RIHS01_41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc',
    'vision_msgs/msg/Point2D':
        'RIHS01_eab0e83f44ab4de92ceaf76dd7d0e7638f2bdd1d16ffbe16c7a136c48e407247',
    'vision_msgs/msg/Pose2D':
        'RIHS01_b0b5d1d7b4c20dd4fcde3ed1d4b289a919290572007d67a97043814db25d3648',
    'vision_msgs/msg/VisionClass':
        'RIHS01_1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a',
}

# RIHS01 type hashes of yolact_ros_msgs, as rosidl computes them in the colcon build. Pinned so a
# wire-format change is deliberate: Instance (and InstanceArray, which holds it) changed when
# `uint32 track_id` was added (issue 16, tracking), and again when the 3D fields `num_points`,
# `valid_3d`, `position` and `bbox_3d` were added (issue 15, 3D from depth); bags recorded before
# carry the old hashes.
YOLACT_ROS_MSGS_HASHES = {
    'yolact_ros_msgs/msg/Instance':
        'RIHS01_bf4e724cc288270935f931ad1f0bcf4085569907826555b7cc332deeb8c5a4d6',
    'yolact_ros_msgs/msg/InstanceArray':
        'RIHS01_e066c128fe6d8a823672462002d5a7d2a6a3455d3e6d3b759951203e90595ed1',
    'yolact_ros_msgs/msg/InstanceMask':
        'RIHS01_9c6edb930fe3ef25865d8950b73a9f665bafe0041328f27b84bcd945dd6aa25b',
}


def _fields(text: str) -> list:
    lines = [line.split('#')[0].strip() for line in text.splitlines()]
    return [' '.join(line.split()) for line in lines if line]


def test_embedded_definitions_equal_the_msg_files():
    files = {f'{package}/msg/{path.stem}': path
             for package, directory in MSG_DIRS.items() for path in directory.glob('*.msg')}
    assert set(MSG_DEFINITIONS) == set(files)
    for name, path in files.items():
        assert _fields(MSG_DEFINITIONS[name]) == _fields(path.read_text()), name


@pytest.mark.parametrize('package, hashes', [
    ('vision_msgs', UPSTREAM_VISION_MSGS_HASHES),  # the CI copy hashes as upstream's
    ('yolact_ros_msgs', YOLACT_ROS_MSGS_HASHES),  # ours: changed only deliberately
])
def test_message_types_have_the_pinned_hashes(package, hashes):
    pytest.importorskip('rosbags')
    from yolact_ros.ros.msg_definitions import rosbags_typestore

    typestore = rosbags_typestore()
    assert set(hashes) == {name for name in MSG_DEFINITIONS if name.startswith(package + '/')}
    for name, expected in hashes.items():
        assert typestore.hash_rihs01(name) == expected, name


def test_built_interfaces_have_the_pinned_hashes():
    """The hashes rosidl computed in the colcon build (needs the built workspace)."""
    prefixes = [Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    found = {}
    for name in MSG_DEFINITIONS:
        package, _, msg = name.split('/')
        for prefix in prefixes:
            path = prefix / 'share' / package / 'msg' / f'{msg}.json'
            if path.is_file():
                found[name] = json.loads(path.read_text())['type_hashes'][0]['hash_string']
                break
    if len(found) < len(MSG_DEFINITIONS):
        if os.environ.get('YOLACT_ROS_REQUIRE_RCLPY'):
            pytest.fail(f'built interfaces missing: {sorted(set(MSG_DEFINITIONS) - set(found))}')
        pytest.skip('colcon workspace not built / sourced')
    for name, expected in {**UPSTREAM_VISION_MSGS_HASHES, **YOLACT_ROS_MSGS_HASHES}.items():
        assert found[name] == expected, name
    pytest.importorskip('rosbags')
    from yolact_ros.ros.msg_definitions import rosbags_typestore

    typestore = rosbags_typestore()
    for name, hash_string in found.items():  # rosbags (used by yolact bag) agrees with rosidl
        assert typestore.hash_rihs01(name) == hash_string, name


@pytest.mark.parametrize('package', ['yolact_ros', 'yolact_ros_msgs', '.ci/vision_msgs'])
def test_package_xml_validates_against_format3_xsd(package):
    xmllint = shutil.which('xmllint')
    if xmllint is None or not XSD.is_file():  # system packages: no script installs them
        pytest.skip('package.xml validation needs xmllint and the format-3 XSD: '
                    'sudo apt-get install libxml2-utils python3-ament-xmllint')
    result = subprocess.run(
        [xmllint, '--noout', '--schema', str(XSD), str(REPO_ROOT / package / 'package.xml')],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
