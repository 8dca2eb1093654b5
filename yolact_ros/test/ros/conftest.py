"""Fixtures of the ROS tests (helpers are in ``ros_harness``)."""

from pathlib import Path

import pytest


@pytest.fixture
def fake_weights(tmp_path) -> Path:
    """Return an existing (empty) file to pass as ``weights`` to nodes with a fake Segmenter."""
    path = tmp_path / 'fake.safetensors'
    path.write_bytes(b'')
    return path


@pytest.fixture(scope='module')
def ros_context():
    """Initialise rclpy for one test module (request it in modules that import ``_ros_gate``)."""
    import rclpy

    rclpy.init()
    yield
    rclpy.shutdown()


def _module_helper(request):
    from ros_harness import Graph

    helper = Graph(request.module.__name__.rsplit('.', 1)[-1] + '_helper')
    yield helper
    helper.close()


@pytest.fixture
def graph(request, ros_context):
    """Return a :class:`ros_harness.Graph` helper named after the test module, closed after."""
    yield from _module_helper(request)


@pytest.fixture(scope='module')
def module_graph(request, ros_context):
    """Return one :class:`ros_harness.Graph` helper for all tests of a module (one node)."""
    yield from _module_helper(request)
