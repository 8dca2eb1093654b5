"""One image stream's tracker and trails, fed with the stamps of its frames."""

import numpy as np

from yolact_ros.structures import Detections
from yolact_ros.tracking.tracker import Tracker, TrackerConfig
from yolact_ros.tracking.trails import TrackTrails


class StreamTracker:
    """Track one stream's detections at their image stamps and keep the tracks' trails.

    The node, ``yolact bag --track`` and ``yolact predict --track`` each feed one of these. A
    stamp earlier than the last (a bag looping, a camera restarted) starts the tracks and their
    trails afresh instead of failing; :attr:`restarted` says whether the last update did.

    Args:
        config: the tracker's thresholds; :attr:`tracker` ``.config`` may be replaced between
            frames (runtime parameters).
    """

    def __init__(self, config: TrackerConfig) -> None:
        self.tracker = Tracker(config)
        self.trails = TrackTrails()
        self.last_stamp = -float('inf')
        self.restarted = False

    def __call__(self, detections: Detections, stamp_s: float) -> np.ndarray:
        """Return the ``int64[D]`` track ids (0: not tracked) of a frame's detections."""
        self.restarted = stamp_s < self.last_stamp
        if self.restarted:
            self.tracker.reset()
            self.trails.reset()
        self.last_stamp = stamp_s
        track_ids = self.tracker.update(detections, stamp_s)
        self.trails.update(detections.boxes, track_ids)
        return track_ids
