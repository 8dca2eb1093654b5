"""Import me first in a launch test: it skips (or, in CI, fails) the module where it cannot run.

A launch test needs the real ``launch``/``launch_ros``/``ros2`` CLI
(``scripts/ros/install_launch.sh``; a ROS install has them), the built workspace on the ament
paths (``scripts/ros/env.sh``) and a loopback-only network namespace
(``scripts/ros/loopback_only.sh``). ``YOLACT_ROS_REQUIRE_LAUNCH`` (set by
``scripts/ros/test_ros.sh`` where the launch packages are installed) makes a missing piece a
failure.
"""

import importlib.util
import os
import shutil
import socket

import pytest

REQUIRE_LAUNCH = bool(os.environ.get('YOLACT_ROS_REQUIRE_LAUNCH'))


def _missing() -> str:
    """Return why launch tests cannot run here, or ``''``."""
    if shutil.which('ros2') is None or importlib.util.find_spec('launch_ros') is None:
        return ('launch tests: the ros2 CLI / launch_ros are not installed '
                '(scripts/ros/install_launch.sh, or a ROS 2 install)')
    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory('yolact_ros')
    except (ImportError, LookupError) as error:
        return (f'launch tests: yolact_ros is not on the ament paths ({error}); '
                'run scripts/ros/test_ros.sh')
    if [name for _, name in socket.if_nameindex()] != ['lo']:
        return ('launch tests must run in a loopback-only network namespace: '
                'scripts/ros/loopback_only.sh')
    return ''


def _gate() -> None:
    reason = _missing()
    if reason:
        if REQUIRE_LAUNCH:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'


_gate()
