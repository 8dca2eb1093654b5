"""Fixtures of the ROS tests (helpers are in ``ros_harness``)."""

from pathlib import Path

import pytest


@pytest.fixture
def fake_weights(tmp_path) -> Path:
    """Return an existing (empty) file to pass as ``weights`` to nodes with a fake Segmenter."""
    path = tmp_path / 'fake.safetensors'
    path.write_bytes(b'')
    return path
