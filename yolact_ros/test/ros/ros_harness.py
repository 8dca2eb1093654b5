"""Helpers of the ROS tests: a fake Segmenter and a ROS graph harness (import after _ros_gate)."""

import threading
import time
from typing import Callable, List, Optional

import numpy as np
import pytest

from yolact_ros.config import PostprocessConfig
from yolact_ros.structures import Detections, StageTimes, WindowedMasks

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
            class_names=['person', 'car'], category_ids=np.array([1, 2]),
            mask_windows=WindowedMasks.from_dense(masks),
            image_size=(height, width), times=StageTimes(1.0, 2.0, 3.0))
        keep = np.flatnonzero(detections.scores >= self.postprocess.score_threshold)
        return Detections(
            boxes=detections.boxes[keep], scores=detections.scores[keep],
            class_ids=detections.class_ids[keep],
            class_names=[detections.class_names[i] for i in keep],
            category_ids=detections.category_ids[keep],
            mask_windows=detections.mask_windows.select(keep),
            image_size=(height, width), times=detections.times)

    def warmup(self) -> None:
        self.warmups += 1

    def release(self) -> None:
        self.releases += 1


class Graph:
    """A helper node and an executor spinning in a thread, for talking to nodes under test."""

    def __init__(self, name: str = 'test_helper') -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        self.rclpy = rclpy
        self.node = rclpy.create_node(name)
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self._added: List = []
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
        """Spin ``node`` too; :meth:`close` destroys it."""
        self.executor.add_node(node)
        self._added.append(node)

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
        for node in self._added:
            node.destroy_node()
        self.node.destroy_node()
