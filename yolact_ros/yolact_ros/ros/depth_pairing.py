"""Depth frames for colour frames: pairing by closest stamp, depth and camera_info decoding.

Plain Python and NumPy, no rclpy (``message_filters`` is the usual tool on a ROS install; the
pairing here is small, tested, and works the same under ``yolact bag``). The node's depth
callback adds every depth frame to a :class:`DepthBuffer`; the worker, having taken the newest
colour frame, asks for the depth frame closest to its stamp within ``depth.max_skew``, waiting a
little for one still on its way. Colour frames never wait for depth that does not come: without a
pair they go on as 2D only, and are counted.
"""

import bisect
import threading
import time
from typing import Any, Generic, List, Mapping, Optional, Tuple, TypeVar

import numpy as np

from yolact_ros.geometry import CameraIntrinsics

T = TypeVar('T')

# Depth image encodings (sensor_msgs/image_encodings): millimetres or metres.
DEPTH_ENCODINGS = {'16UC1': np.uint16, 'mono16': np.uint16, '32FC1': np.float32}


class DepthBuffer(Generic[T]):
    """Thread-safe store of the most recent depth frames, keyed by stamp (nanoseconds).

    Stamps are expected to increase; an older stamp than the newest (a replayed bag) empties the
    buffer first. ``capacity`` frames are kept (at 30 fps, 10 is a third of a second).
    """

    def __init__(self, capacity: int = 10) -> None:
        if capacity < 1:
            raise ValueError(f'expected capacity >= 1, got {capacity}')
        self._capacity = capacity
        self._cond = threading.Condition()
        self._stamps: List[int] = []
        self._items: List[T] = []
        self.received = 0

    def add(self, stamp_ns: int, item: T) -> None:
        """Store the depth frame ``item`` stamped ``stamp_ns``; wake a waiting :meth:`pair`."""
        with self._cond:
            if self._stamps and stamp_ns < self._stamps[-1]:
                self._stamps, self._items = [], []
            self._stamps.append(int(stamp_ns))
            self._items.append(item)
            if len(self._stamps) > self._capacity:
                del self._stamps[0], self._items[0]
            self.received += 1
            self._cond.notify_all()

    def pair(self, stamp_ns: int, max_skew_ns: int, wait_s: float = 0.0) -> Optional[T]:
        """Return the depth frame closest in stamp to ``stamp_ns`` within ``max_skew_ns``.

        While no frame stamped at or after ``stamp_ns`` is held (a closer one may still come),
        wait for one at most ``wait_s`` seconds; never when no depth frame arrived at all.
        Returns None when no frame is within ``max_skew_ns``.
        """
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._stamps and self._stamps[-1] < stamp_ns:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            return closest(self._stamps, self._items, stamp_ns, max_skew_ns)

    def clear(self) -> None:
        """Drop the frames held (the count of received frames stays)."""
        with self._cond:
            self._stamps, self._items = [], []


class StreamPairing(Generic[T]):
    """Pairs colour and depth frames read from one stream in log order (``yolact bag``).

    A colour frame is released, with the depth frame closest in stamp within ``max_skew_ns``
    (or None), as soon as a depth frame stamped at or after it has been read (no later one can
    be closer), or when ``window`` colour frames wait (the depth stream stalled), or at
    :meth:`finish`. Released frames keep their reading order. The ``window`` newest depth frames
    are kept.
    """

    def __init__(self, max_skew_ns: int, window: int = 30) -> None:
        if window < 1:
            raise ValueError(f'expected window >= 1, got {window}')
        self._skew, self._window = int(max_skew_ns), window
        self._stamps: List[int] = []
        self._depths: List[Any] = []
        self._pending: List[Tuple[int, T]] = []

    def add_depth(self, stamp_ns: int, depth: Any) -> List[Tuple[T, Optional[Any]]]:
        """Read a depth frame; return the colour frames now paired, as ``(colour, depth)``."""
        index = bisect.bisect_right(self._stamps, stamp_ns)
        self._stamps.insert(index, int(stamp_ns))
        self._depths.insert(index, depth)
        if len(self._stamps) > self._window:
            del self._stamps[0], self._depths[0]
        return self._release(final=False)

    def add_colour(self, stamp_ns: int, colour: T) -> List[Tuple[T, Optional[Any]]]:
        """Read a colour frame; return the colour frames now paired (perhaps this one)."""
        self._pending.append((int(stamp_ns), colour))
        return self._release(final=False)

    def finish(self) -> List[Tuple[T, Optional[Any]]]:
        """Return every colour frame still waiting, paired with what was read."""
        return self._release(final=True)

    def _release(self, final: bool) -> List[Tuple[T, Optional[Any]]]:
        released = []
        while self._pending:
            stamp, colour = self._pending[0]
            newest = self._stamps[-1] if self._stamps else None
            if not (final or len(self._pending) > self._window
                    or (newest is not None and newest >= stamp)):
                break
            self._pending.pop(0)
            released.append((colour, closest(self._stamps, self._depths, stamp, self._skew)))
        return released


def closest(stamps: List[int], items: List[T], stamp_ns: int, max_skew_ns: int) -> Optional[T]:
    """Return the item of sorted ``stamps`` nearest ``stamp_ns`` if within ``max_skew_ns``.

    On a tie the earlier frame wins.
    """
    index = bisect.bisect_left(stamps, stamp_ns)
    best: Optional[Tuple[int, int]] = None
    for candidate in (index - 1, index):
        if 0 <= candidate < len(stamps):
            skew = abs(stamps[candidate] - stamp_ns)
            if skew <= max_skew_ns and (best is None or skew < best[0]):
                best = (skew, candidate)
    return None if best is None else items[best[1]]


def depth_to_array(msg) -> np.ndarray:
    """Return the pixels of a depth ``sensor_msgs/Image`` (any binding) as a 2D array.

    ``16UC1`` / ``mono16``: ``uint16[H, W]`` millimetres; ``32FC1``: ``float32[H, W]`` metres.

    Raises:
        ValueError: for another encoding, or a step or data size that does not fit.
    """
    dtype = DEPTH_ENCODINGS.get(msg.encoding)
    if dtype is None:
        raise ValueError(f'depth encoding {msg.encoding!r} is not one of '
                         f'{", ".join(DEPTH_ENCODINGS)}')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    itemsize = np.dtype(dtype).itemsize
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, np.ndarray)
                         else msg.data.tobytes(), np.uint8)
    if step < width * itemsize or data.size < step * height:
        raise ValueError(f'depth image {width}x{height} {msg.encoding}: step {step} and '
                         f'{data.size} bytes do not fit')
    rows = data[:step * height].reshape(height, step)[:, :width * itemsize]
    order = '>' if msg.is_bigendian else '<'
    return np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order)).reshape(
        height, width).astype(dtype, copy=False)


def camera_info_to_intrinsics(msg) -> CameraIntrinsics:
    """Return the intrinsics of a ``sensor_msgs/CameraInfo`` (any binding) from its ``k``.

    Raises:
        ValueError: for a zero-sized image or a matrix without positive focal lengths (an
            uncalibrated camera publishes zeros).
    """
    fields: Mapping[str, Any] = {'width': int(msg.width), 'height': int(msg.height),
                                 'k': [float(v) for v in msg.k]}
    return CameraIntrinsics.from_camera_info_dict(fields)
