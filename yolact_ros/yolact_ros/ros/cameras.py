"""Several cameras served by one model: per-camera state and the batch of newest frames.

rclpy-free. ``segment_node`` keeps one :class:`CameraStream` per entry of its ``cameras``
parameter (one unnamed stream when it is empty: the topics ``image``, ``instances``, ...
exactly as with a single camera). Each camera's subscription puts its frames into its own
:class:`~yolact_ros.ros.frame_slot.FrameSlot` through a :class:`FrameBatcher`; the worker
takes the newest pending frame of every camera that has one, runs the model once on that
batch (:func:`~yolact_ros.ros.frame_pipeline.segment_frames`) and publishes each camera's
outputs under its name (``front/instances``, ...) with that frame's header.
"""

from dataclasses import dataclass, field
import re
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from yolact_ros.ros.frame_slot import FrameSlot
from yolact_ros.ros.stats import FrameCounters, LatencyWindow, RateMeter
from yolact_ros.tracking import StreamTracker

# A relative ROS name: tokens of letters, digits and underscores (not starting with a digit),
# separated by single slashes.
_RELATIVE_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$')


def camera_topic(camera: str, topic: str) -> str:
    """Return the relative topic ``topic`` of ``camera`` (``front/image``; ``image`` if '')."""
    return f'{camera}/{topic}' if camera else topic


def check_cameras(cameras: Sequence[str]) -> Optional[str]:
    """Return why a ``cameras`` list is invalid, or None (empty: one unnamed camera)."""
    bad = [name for name in cameras if not _RELATIVE_NAME.match(name)]
    if bad:
        return (f'{", ".join(map(repr, bad))}: a camera is a relative ROS name '
                "(letters, digits, '_' and '/', e.g. front or robot/left)")
    repeated = sorted({name for name in cameras if list(cameras).count(name) > 1})
    if repeated:
        return f'{", ".join(map(repr, repeated))} given more than once'
    return None


@dataclass
class CameraStream:
    """What the node keeps per camera from activate to deactivate.

    Attributes:
        name: the camera's name ('' for the single unnamed camera); prefixes its topics.
        outputs: its per-frame publishers keyed by topic (``instances``, ``detections``, ...).
        tracker: its tracker, when ``tracking.enabled``.
        slot: its newest unprocessed frame; received and dropped frame counts.
        counters: processed, bad and failed frames since activation.
        latency: stamp-to-publish latencies (``instances.latency_ms``).
        input_rate, output_rate: frames received and published per second.
        input_topic: the resolved input topic, once subscribed.
        subscription: its input subscription (the node's), while active.
        depth: its depth inputs (``NAME/depth/...``, paired with its frames), with
            ``depth.enabled``.
        live_tracks: tracks alive after its last frame.
        last_overlay: ``time.monotonic()`` of its last overlay.
    """

    name: str
    outputs: Dict[str, Any] = field(default_factory=dict)
    tracker: Optional[StreamTracker] = None
    slot: FrameSlot = field(default_factory=FrameSlot)
    counters: FrameCounters = field(default_factory=FrameCounters)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    input_rate: RateMeter = field(default_factory=RateMeter)
    output_rate: RateMeter = field(default_factory=RateMeter)
    input_topic: str = ''
    subscription: Any = None
    depth: Any = None
    live_tracks: int = 0
    last_overlay: float = -float('inf')

    def topic(self, topic: str) -> str:
        """Return this camera's relative name of ``topic``."""
        return camera_topic(self.name, topic)


class FrameBatcher:
    """The newest pending frame of every camera, taken together by one worker.

    Each camera keeps its own :class:`FrameSlot` (newest frame wins, drops counted per
    camera); :meth:`put` also wakes the worker, whose :meth:`take` returns every pending frame
    at once. A camera that stops sending only leaves the batches, it never holds them up.
    """

    def __init__(self, slots: Sequence[FrameSlot]) -> None:
        self.slots: List[FrameSlot] = list(slots)
        self._ready = threading.Event()
        self._closed = False

    def put(self, index: int, item: Any) -> None:
        """Store ``item`` as the newest frame of camera ``index`` and wake the worker."""
        self.slots[index].put(item)
        self._ready.set()

    def take(self, timeout: Optional[float] = None) -> List[Tuple[int, Any, int]]:
        """Wait for frames; return ``(camera index, frame, dropped)`` of each pending one.

        ``dropped`` is the camera's frames overwritten since its previous take. Empty after
        ``timeout`` seconds without a frame, or once closed.
        """
        self._ready.wait(timeout)
        if self._closed:  # stays set: every later take returns at once
            return []
        self._ready.clear()  # before taking: a frame put from here on wakes the next take
        taken = []
        for index, slot in enumerate(self.slots):
            found = slot.take(timeout=0)
            if found is not None:
                taken.append((index, *found))
        return taken

    def close(self) -> None:
        """Close every slot (pending frames count as dropped) and wake a waiting take."""
        self._closed = True
        for slot in self.slots:
            slot.close()
        self._ready.set()
