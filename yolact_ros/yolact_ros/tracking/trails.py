"""The last box centres of each track, for drawing trails over a stream's overlay."""

from collections import deque
from typing import Deque, Dict

import numpy as np


class TrackTrails:
    """Keep the last ``length`` box centres of every track; one instance per stream.

    A track not seen for more than ``forget_after`` updates is dropped.

    Args:
        length: centres kept per track (the newest last).
        forget_after: updates a track may be missing before its trail is dropped.
    """

    def __init__(self, length: int = 20, forget_after: int = 30) -> None:
        if length < 1:
            raise ValueError(f'length must be >= 1, got {length}')
        if forget_after < 0:
            raise ValueError(f'forget_after must be >= 0, got {forget_after}')
        self.length = length
        self.forget_after = forget_after
        self._centres: Dict[int, Deque[np.ndarray]] = {}
        self._missing: Dict[int, int] = {}

    def update(self, boxes: np.ndarray, track_ids: np.ndarray) -> None:
        """Add one frame: ``float[D, 4]`` x1, y1, x2, y2 boxes and their ``int[D]`` track ids.

        Detections with track id ``0`` (not tracked) are ignored.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        track_ids = np.asarray(track_ids, np.int64).reshape(-1)
        if len(boxes) != len(track_ids):
            raise ValueError(f'expected boxes [D, 4] and track_ids [D], got {len(boxes)} boxes '
                             f'and {len(track_ids)} ids')
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (D, 2) x, y
        seen = set()
        for track_id, centre in zip(track_ids.tolist(), centres):
            if track_id <= 0:
                continue
            seen.add(track_id)
            trail = self._centres.setdefault(track_id, deque(maxlen=self.length))
            trail.append(centre)
            self._missing[track_id] = 0
        for track_id in list(self._centres):
            if track_id in seen:
                continue
            self._missing[track_id] += 1
            if self._missing[track_id] > self.forget_after:
                del self._centres[track_id], self._missing[track_id]

    def points(self) -> Dict[int, np.ndarray]:
        """Return ``{track id: float32[n, 2]}`` x, y centres, oldest first."""
        return {track_id: np.asarray(list(trail), np.float32)
                for track_id, trail in self._centres.items()}

    def reset(self) -> None:
        """Forget every trail."""
        self._centres.clear()
        self._missing.clear()
