"""Import me first in a test module that starts rclpy: it skips (or, in CI, fails) the module.

The module runs only where (1) rclpy and the workspace's messages import and (2) the process is
in a loopback-only network namespace (``scripts/ros/loopback_only.sh``), so DDS traffic cannot
leave the machine. Elsewhere it is skipped, unless ``YOLACT_ROS_REQUIRE_RCLPY`` is set (CI):
then a missing rclpy, missing messages or a real network are failures.
"""

import os
import socket

import pytest

REQUIRE_RCLPY = bool(os.environ.get('YOLACT_ROS_REQUIRE_RCLPY'))


def loopback_only() -> bool:
    """Return whether this process sees no network interface but ``lo``."""
    return [name for _, name in socket.if_nameindex()] == ['lo']


def _gate() -> None:
    try:
        import rclpy  # noqa: F401
        import vision_msgs.msg  # noqa: F401
        import yolact_ros_msgs.msg  # noqa: F401
    except ImportError as error:
        if REQUIRE_RCLPY:
            raise
        pytest.skip(f'ROS 2 workspace not available ({error}); run scripts/ros/test_ros.sh',
                    allow_module_level=True)
    if not loopback_only():
        message = ('rclpy tests must run in a loopback-only network namespace: '
                   'scripts/ros/loopback_only.sh')
        if REQUIRE_RCLPY:
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'


_gate()
