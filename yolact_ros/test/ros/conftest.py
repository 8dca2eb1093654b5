"""Fixtures of the ROS tests: the rclpy gate, a fake Segmenter and a ROS graph harness.

Tests that start rclpy run only where (1) rclpy and the workspace's messages import and (2) the
process is in a loopback-only network namespace (``scripts/ros/loopback_only.sh``), so DDS
traffic cannot leave the machine. Elsewhere they skip, unless ``YOLACT_ROS_REQUIRE_RCLPY`` is set
(CI): then a missing rclpy or a real network is a failure.
"""

import os
from pathlib import Path
import socket
import threading
import time
from typing import Callable, List, Optional

import numpy as np
import pytest

from yolact_ros.config import PostprocessConfig
from yolact_ros.structures import Detections, StageTimes

REPO_ROOT = Path(__file__).resolve().parents[3]
REQUIRE_RCLPY = bool(os.environ.get('YOLACT_ROS_REQUIRE_RCLPY'))


def loopback_only() -> bool:
    """Return whether this process sees no network interface but ``lo``."""
    return [name for _, name in socket.if_nameindex()] == ['lo']


def require_ros() -> None:
    """Skip the calling test module unless rclpy can run here (fail instead in CI)."""
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
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


CLASS_NAMES = ['person', 'car', 'dog']


class FakeSegmenter:
    """Stands in for the Segmenter: two fixed instances per image, an optional delay.

    Instance 0 ('person', 0.9) covers the left half, instance 1 ('car', 0.6) a right-hand box; the
    ``score_threshold`` of :attr:`postprocess` filters them, like the real postprocessor.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.postprocess = PostprocessConfig()
        self.class_names = list(CLASS_NAMES)
        self.device = 'cpu'
        self.calls = 0
        self.last_image: Optional[np.ndarray] = None
        self.warmups = 0
        self.releases = 0

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        self.last_image = image.copy()
        if self.delay:
            time.sleep(self.delay)
        height, width = image.shape[:2]
        masks = np.zeros((2, height, width), bool)
        masks[0, :, :max(width // 2, 1)] = True
        masks[1, height // 4:max(height // 2, height // 4 + 1), 3 * width // 4:] = True
        detections = Detections(
            boxes=np.array([[0, 0, width // 2, height], [3 * width // 4, height // 4, width,
                                                         height // 2]], np.float32),
            scores=np.array([0.9, 0.6], np.float32), class_ids=np.array([0, 1]),
            class_names=['person', 'car'], category_ids=np.array([1, 2]), masks=masks,
            image_size=(height, width), times=StageTimes(1.0, 2.0, 3.0))
        keep = np.flatnonzero(detections.scores >= self.postprocess.score_threshold)
        return Detections(
            boxes=detections.boxes[keep], scores=detections.scores[keep],
            class_ids=detections.class_ids[keep],
            class_names=[detections.class_names[i] for i in keep],
            category_ids=detections.category_ids[keep], masks=detections.masks[keep],
            image_size=(height, width), times=detections.times)

    def warmup(self) -> None:
        self.warmups += 1

    def release(self) -> None:
        self.releases += 1


@pytest.fixture
def fake_weights(tmp_path) -> Path:
    """An existing (empty) file to pass as ``weights`` to nodes with a fake Segmenter."""
    path = tmp_path / 'fake.safetensors'
    path.write_bytes(b'')
    return path


class Graph:
    """A helper node and an executor spinning in a thread, for talking to nodes under test."""

    def __init__(self, name: str = 'test_helper') -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        self.rclpy = rclpy
        self.node = rclpy.create_node(name)
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._running = True
        self._thread.start()
        self.logs: List = []
        from rcl_interfaces.msg import Log

        self.node.create_subscription(Log, '/rosout', self.logs.append, 100)

    def _spin(self) -> None:
        while self._running and self.rclpy.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def add(self, node) -> None:
        """Spin ``node`` too."""
        self.executor.add_node(node)

    def collect(self, msg_type, topic: str, qos=10) -> List:
        """Subscribe to ``topic`` and return the list its messages are appended to."""
        received: List = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Wait until ``predicate()`` holds; fail naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f'timed out waiting for {what}')
            time.sleep(0.01)

    def log_lines(self, name_part: str = '') -> List[str]:
        """Return the /rosout messages so far, of loggers whose name contains ``name_part``."""
        return [log.msg for log in list(self.logs) if name_part in log.name]

    def close(self) -> None:
        self._running = False
        self._thread.join()
        self.executor.shutdown()
        self.node.destroy_node()
