"""Helpers of the ROS tests: a fake Segmenter and a ROS graph harness (import after _ros_gate)."""

from pathlib import Path
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

    Instance 0 ('person', 0.9) covers the left half, instance 1 ('car', 0.6) a right-hand box;
    :attr:`fail_next` makes the next call raise; with ``step`` pixels, both move that far right
    (clipped to the image) at every call, so call ``n`` shifts them ``n * step``.
    :attr:`postprocess` is only stored (the node sets it); nothing is filtered here: thresholds
    and the class allow-list are the real Segmenter's job, tested with the real model.
    """

    def __init__(self, delay: float = 0.0, step: int = 0) -> None:
        self.delay = delay
        self.step = step
        self.postprocess = PostprocessConfig()
        self.class_names = list(CLASS_NAMES)
        self.device = 'cpu'
        self.calls = 0
        self.last_image: Optional[np.ndarray] = None
        self.warmups = 0
        self.releases = 0
        self.fail_next: Optional[Exception] = None  # raised by the next call, once

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.last_image = image.copy()
        if self.delay:
            time.sleep(self.delay)
        height, width = image.shape[:2]
        boxes = np.array([[0, 0, width // 2, height],
                          [3 * width // 4, height // 4, width, height // 2]])
        masks = np.zeros((2, height, width), bool)
        masks[0, :, :max(width // 2, 1)] = True
        masks[1, height // 4:max(height // 2, height // 4 + 1), 3 * width // 4:] = True
        if self.step:  # both move right by step pixels per call, within the image
            shift = (self.calls - 1) * self.step
            boxes[:, [0, 2]] = np.minimum(boxes[:, [0, 2]] + shift, width)
            masks[:, :, shift:] = masks[:, :, :width - shift].copy()
            masks[:, :, :min(shift, width)] = False
        return Detections(
            boxes=boxes.astype(np.float32),
            scores=np.array([0.9, 0.6], np.float32), class_ids=np.array([0, 1]),
            class_names=['person', 'car'], category_ids=np.array([1, 2]),
            mask_windows=WindowedMasks.from_dense(masks),
            image_size=(height, width), times=StageTimes(1.0, 2.0, 3.0))

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

    def call(self, client, request, what: str, timeout: float = 30.0, resend_after: float = 5.0):
        """Return ``client``'s response to ``request``, sending it again if it seems lost.

        A request sent just after ``service_is_ready()`` can be lost while DDS still matches
        the response reader with the client (ros2/rmw_cyclonedds#74; Fast DDS too, rarely, on a
        loaded machine); a node that does not answer still fails after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            future = client.call_async(request)
            resend = time.monotonic() + resend_after
            while not future.done():
                if time.monotonic() > deadline:
                    pytest.fail(f'timed out waiting for {what}')
                if time.monotonic() > resend:
                    client.remove_pending_request(future)
                    break
                time.sleep(0.01)
            else:
                return future.result()

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


PARAMS_YAML = Path(__file__).resolve().parents[2] / 'config' / 'params.yaml'


def shipped_params(**overrides) -> dict:
    """Return the node parameters of the shipped ``config/params.yaml``, with ``overrides``."""
    import yaml

    document = yaml.safe_load(PARAMS_YAML.read_text())
    return {**document['/**/segment_node']['ros__parameters'], **overrides}


def start_shipped_node(graph: 'Graph', namespace: str, *, segmenter_factory=None,
                       **overrides):
    """Start a SegmentNode with the shipped parameters and ``overrides``; ``graph`` spins it.

    ``qos_reliability`` is ``reliable`` (depth 10) so that no test frame is lost;
    ``segmenter_factory`` replaces the node's (the real loader) when given.
    """
    from rclpy.parameter import Parameter

    from yolact_ros.ros.node import SegmentNode

    values = shipped_params(qos_reliability='reliable', qos_depth=10, **overrides)
    factory = {'segmenter_factory': segmenter_factory} if segmenter_factory else {}
    node = SegmentNode(namespace=namespace, parameter_overrides=[
        Parameter(name, value=value) for name, value in values.items()], **factory)
    graph.add(node)
    assert node.start()
    return node


def synthetic_scene(seed: int, count: int = 3, size: int = 256):
    """Render a scene like the demo model's training data: ``count`` shapes, none touching.

    Shapes of distinct classes sit at the centres of the four quadrants (radius 10-16 % of the
    side, as the training scenes), on a cluttered background with pixel noise. Deterministic in
    ``seed``; returns a :class:`~yolact_ros.data.synthetic.Scene` whose instances are the truth.
    """
    from yolact_ros.data.synthetic import (
        CLASS_NAMES as SHAPES, compose_scene, random_background, random_shape)

    rng = np.random.default_rng(seed)
    background = random_background(rng, size, size)
    centres = [(size / 4, size / 4), (3 * size / 4, size / 4), (size / 4, 3 * size / 4),
               (3 * size / 4, 3 * size / 4)][:count]
    kinds = rng.choice(len(SHAPES), count, replace=False)
    shapes = [random_shape(rng, centre, rng.uniform(0.10, 0.16) * size, SHAPES[kind])
              for centre, kind in zip(centres, kinds)]
    return compose_scene(background, shapes, noise_sigma=3.0, rng=rng)


def stamped(stamp_ns: int, frame_id: str = 'camera'):
    """Return a ``std_msgs/Header`` with the stamp ``stamp_ns`` (nanoseconds)."""
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def stamp_ns(header) -> int:
    """Return a header's stamp in nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def bgr_image(pixels: np.ndarray, stamp: int, frame_id: str = 'camera'):
    """Return a ``bgr8`` ``sensor_msgs/Image`` of ``uint8[H, W, 3]`` pixels."""
    from sensor_msgs.msg import Image

    height, width = pixels.shape[:2]
    return Image(header=stamped(stamp, frame_id), height=height, width=width, encoding='bgr8',
                 step=width * 3, data=np.ascontiguousarray(pixels).tobytes())


def wait_stamp(graph: 'Graph', received: List, stamp: int, what: str = 'output',
               timeout: float = 30.0):
    """Wait for the message with header stamp ``stamp`` in ``received`` and return it."""
    graph.wait_for(lambda: any(stamp_ns(m.header) == stamp for m in received),
                   f'{what} with stamp {stamp}', timeout)
    return next(m for m in received if stamp_ns(m.header) == stamp)
