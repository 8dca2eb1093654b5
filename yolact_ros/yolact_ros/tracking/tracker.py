"""ByteTrack-style multi-object tracker of instance masks, on stamps in seconds.

Each frame: every live track's constant-velocity Kalman filter is moved to the frame's stamp
(the real gap, so a dropped frame is predicted over); detections scoring ``>= high_threshold``
are matched to all live tracks (tracked and lost), then those in ``[low_threshold,
high_threshold)`` to the tracked ones left; matched tracks are corrected; unmatched tracked
tracks become lost; unmatched confident detections (``>= new_track_threshold``) start tracks.
Tracks unseen for more than ``track_buffer_s`` seconds at a frame's stamp are removed before
its association. The cost of a pair is
``1 - ((1 - mask_weight) * IoU_box + mask_weight * IoU_mask)`` between the track's predicted box
and its last mask window (moved by the predicted shift of its centre) and the detection's.
"""

from dataclasses import dataclass
import math
from typing import List, Optional, Tuple

import numpy as np

from yolact_ros.structures import Detections
from yolact_ros.tracking.association import assign, duplicates, MaskSet, match_cost
from yolact_ros.tracking.kalman import (center_size_to_corners, corners_to_center_size,
                                        KalmanFilter)


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds and memory of the tracker (defaults: ByteTrack's, at 30 fps).

    Attributes:
        high_threshold: detections scoring at least this are matched first, to all tracks.
        low_threshold: detections scoring in ``[low, high)`` are matched second, to the tracked
            (not lost) tracks left; lower ones are ignored.
        new_track_threshold: an unmatched detection scoring at least this starts a track
            (``>= high_threshold``: low-score detections never start one).
        match_threshold: the most a first-stage pair may cost (cost = 1 - IoU).
        low_match_threshold: the most a second-stage pair may cost.
        mask_weight: weight of the mask IoU in the cost, the box IoU getting the rest; ``0``
            gives ByteTrack's box-only cost.
        duplicate_iou: a detection whose mask overlaps a higher-scoring one's of any class by
            more than this IoU (boxes for detections without masks) is a duplicate (Fast NMS
            works per class and by boxes: one shape comes out under two classes, or a part of it
            as a second detection): it gets track id 0 and is not associated. ``1`` keeps them
            all.
        class_aware: only a detection of the track's class may continue it (off by default:
            a small model's class of one object flips between frames; on synthetic sequences
            with the bundled model, class-aware tracking doubled the id switches).
        track_buffer_s: seconds a track is kept unseen (lost) before it is removed; ByteTrack's
            30 frames at 30 fps.
        frame_rate: frames per second at which the Kalman filter's per-frame noise applies (the
            stream's nominal rate; the time steps themselves come from the stamps).
    """

    high_threshold: float = 0.5
    low_threshold: float = 0.1
    new_track_threshold: float = 0.6
    match_threshold: float = 0.8
    low_match_threshold: float = 0.5
    mask_weight: float = 0.5
    duplicate_iou: float = 0.3
    class_aware: bool = False
    track_buffer_s: float = 1.0
    frame_rate: float = 30.0

    def __post_init__(self) -> None:
        for name in ('high_threshold', 'low_threshold', 'new_track_threshold', 'mask_weight',
                     'duplicate_iou'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        for name in ('match_threshold', 'low_match_threshold'):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f'{name} must be in (0, 1], got {value}')
        if self.low_threshold > self.high_threshold:
            raise ValueError(f'low_threshold must be <= high_threshold ({self.high_threshold}), '
                             f'got {self.low_threshold}')
        if self.new_track_threshold < self.high_threshold:
            raise ValueError('new_track_threshold must be >= high_threshold '
                             f'({self.high_threshold}), got {self.new_track_threshold}')
        if not (self.track_buffer_s >= 0 and math.isfinite(self.track_buffer_s)):
            raise ValueError(f'track_buffer_s must be finite and >= 0, got {self.track_buffer_s}')
        if not (self.frame_rate > 0 and math.isfinite(self.frame_rate)):
            raise ValueError(f'frame_rate must be finite and > 0, got {self.frame_rate}')


@dataclass(frozen=True)
class Track:
    """A live track, as of the tracker's last update.

    Attributes:
        track_id: its id, from 1, never reused.
        box: ``float32[4]`` x1, y1, x2, y2 of the Kalman estimate at the last stamp (for a lost
            track, the prediction).
        class_id: class of its last detection.
        class_name: name of that class.
        score: score of its last detection.
        age_s: seconds since it started.
        time_since_update_s: seconds since its last detection (0 when tracked this frame).
        lost: not detected at the last update.
        hits: number of detections it has had.
        mask_window: ``bool[h, w]`` window of its last detection's mask.
        mask_origin: ``(y, x)`` of that window in the image of its last detection.
    """

    track_id: int
    box: np.ndarray
    class_id: int
    class_name: str
    score: float
    age_s: float
    time_since_update_s: float
    lost: bool
    hits: int
    mask_window: np.ndarray
    mask_origin: Tuple[int, int]


class Tracker:
    """Give each detection of a stream a track id; one instance per camera stream.

    Args:
        config: thresholds and memory (:class:`TrackerConfig`).
    """

    def __init__(self, config: Optional[TrackerConfig] = None) -> None:
        self.config = TrackerConfig() if config is None else config
        self._kalman = KalmanFilter(self.config.frame_rate)
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every track and the last stamp; ids keep counting (never reused)."""
        self._stamp: Optional[float] = None
        # One row per live track (struct of arrays: the filter runs on all rows at once).
        self._mean = np.zeros((0, 8))  # (T, 8) cx, cy, w, h and their velocities per second
        self._covariance = np.zeros((0, 8, 8))  # (T, 8, 8)
        self._ids = np.zeros(0, np.int64)
        self._class_ids = np.zeros(0, np.int64)
        self._class_names: List[str] = []
        self._scores = np.zeros(0, np.float64)
        self._started_s = np.zeros(0, np.float64)
        self._updated_s = np.zeros(0, np.float64)
        self._hits = np.zeros(0, np.int64)
        self._lost = np.zeros(0, bool)
        self._windows: List[np.ndarray] = []
        self._origins = np.zeros((0, 2), np.int64)  # (T, 2) (y, x) at the last detection
        self._sizes = np.zeros((0, 2), np.int64)  # (T, 2) (h, w) of the windows
        self._areas = np.zeros(0, np.int64)  # (T,) mask pixel counts
        self._centers = np.zeros((0, 2))  # (T, 2) detected (cx, cy) at the last detection

    @property
    def tracks(self) -> List[Track]:
        """Return the live (tracked and lost) tracks, by ascending id."""
        if self._stamp is None:
            return []
        boxes = center_size_to_corners(self._mean[:, :4]).astype(np.float32)
        return [Track(track_id=int(self._ids[t]), box=boxes[t], class_id=int(self._class_ids[t]),
                      class_name=self._class_names[t], score=float(self._scores[t]),
                      age_s=self._stamp - float(self._started_s[t]),
                      time_since_update_s=self._stamp - float(self._updated_s[t]),
                      lost=bool(self._lost[t]), hits=int(self._hits[t]),
                      mask_window=self._windows[t],
                      mask_origin=(int(self._origins[t, 0]), int(self._origins[t, 1])))
                for t in range(len(self._ids))]

    def update(self, detections: Detections, stamp_s: float) -> np.ndarray:
        """Associate one frame's detections with the tracks and return their track ids.

        Args:
            detections: the frame's ``D`` detections (boxes, scores, class ids and names, mask
                windows).
            stamp_s: the frame's time in seconds; not earlier than the previous frame's.

        Returns:
            ``int64[D]`` track id of each detection, ``0`` for one not tracked (a low-score
            detection that continued no track, or one below ``low_threshold``).
        """
        stamp_s = float(stamp_s)
        if not math.isfinite(stamp_s):
            raise ValueError(f'stamp_s must be finite, got {stamp_s}')
        if self._stamp is not None and stamp_s < self._stamp:
            raise ValueError(f'stamp_s must not go back: got {stamp_s} after {self._stamp}')
        boxes, scores, class_ids = self._check(detections)
        config = self.config
        expired = stamp_s - self._updated_s > config.track_buffer_s
        if expired.any():
            self._keep(~expired)
        if self._stamp is not None and len(self._ids):
            lost = self._lost
            self._mean[lost, 6:] = 0.0  # a lost track keeps its size (ByteTrack)
            self._mean, self._covariance = self._kalman.predict(
                self._mean, self._covariance, stamp_s - self._stamp)
        self._stamp = stamp_s

        det_masks = track_masks = None
        if config.mask_weight > 0:
            masks = detections.mask_windows
            det_masks = MaskSet.from_windows(masks.windows, masks.origins)
            # Each window moves by the track's predicted shift since its last detection.
            shift = np.rint(self._mean[:, 1::-1] - self._centers[:, ::-1]).astype(np.int64)
            track_masks = MaskSet(self._windows, self._origins + shift, self._sizes, self._areas)
        track_boxes = center_size_to_corners(self._mean[:, :4])
        allowed = None
        if config.class_aware:
            allowed = self._class_ids[:, None] == class_ids[None, :]  # (T, D)

        def associate(track_rows: np.ndarray, detection_cols: np.ndarray, threshold: float):
            """Return the (track row, detection column) matches and the unmatched ones."""
            if not len(track_rows) or not len(detection_cols):
                return np.zeros((0, 2), np.int64), track_rows, detection_cols
            cost = match_cost(
                track_boxes[track_rows], boxes[detection_cols],
                allowed=None if allowed is None else allowed[np.ix_(track_rows, detection_cols)],
                mask_weight=config.mask_weight, threshold=threshold, skip_unambiguous=True,
                track_masks=None if track_masks is None else track_masks.take(track_rows),
                detection_masks=None if det_masks is None else det_masks.take(detection_cols))
            pairs, free_tracks, free_detections = assign(cost, threshold)
            return (np.stack([track_rows[pairs[:, 0]], detection_cols[pairs[:, 1]]], axis=1),
                    track_rows[free_tracks], detection_cols[free_detections])

        usable = np.ones(len(scores), bool)
        if config.duplicate_iou < 1.0:
            # By masks with the box-only cost too (boxes where there are none): distinct objects'
            # boxes often overlap (box IoU 0.3 cost benchmarks/tracking.py's noisy ground truth
            # 115 more misses).
            overlap_masks, masks = det_masks, detections.mask_windows
            if overlap_masks is None and len(masks) == len(scores):
                overlap_masks = MaskSet.from_windows(masks.windows, masks.origins)
            usable = ~duplicates(boxes, scores, config.duplicate_iou, overlap_masks)
        high = np.flatnonzero((scores >= config.high_threshold) & usable)
        low = np.flatnonzero((scores >= config.low_threshold) & (scores < config.high_threshold)
                             & usable)
        first, free_tracks, free_high = associate(
            np.arange(len(self._ids)), high, config.match_threshold)
        second, _, _ = associate(free_tracks[~self._lost[free_tracks]], low,
                                 config.low_match_threshold)
        matches = np.concatenate([first, second])  # (K, 2) track row, detection index

        track_ids = np.zeros(len(scores), np.int64)
        rows, cols = matches[:, 0], matches[:, 1]
        track_ids[cols] = self._ids[rows]
        self._lost[:] = True
        if len(matches):
            measured = corners_to_center_size(boxes[cols])
            self._mean[rows], self._covariance[rows] = self._kalman.update(
                self._mean[rows], self._covariance[rows], measured)
            self._remember(rows, cols, detections, measured, det_masks)
            self._lost[rows] = False
            self._updated_s[rows] = stamp_s
            self._hits[rows] += 1

        new = free_high[scores[free_high] >= config.new_track_threshold]
        if len(new):
            track_ids[new] = self._start(new, detections, boxes, det_masks)
        return track_ids

    def _check(self, detections: Detections) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``float64[D, 4]`` boxes, ``float64[D]`` scores, ``int64[D]`` class ids."""
        boxes = np.asarray(detections.boxes, np.float64)
        scores = np.asarray(detections.scores, np.float64)
        class_ids = np.asarray(detections.class_ids, np.int64)
        count = len(scores)
        if scores.shape != (count,) or boxes.shape != (count, 4) \
                or class_ids.shape != (count,) or len(detections.class_names) != count:
            raise ValueError('expected boxes [D, 4], scores [D], class_ids [D] and D class '
                             f'names, got {list(boxes.shape)}, {list(scores.shape)}, '
                             f'{list(class_ids.shape)} and {len(detections.class_names)}')
        if self.config.mask_weight > 0 and len(detections.mask_windows) != count:
            raise ValueError(f'expected {count} mask windows, got '
                             f'{len(detections.mask_windows)}')
        return boxes, scores, class_ids

    def _remember(self, rows: np.ndarray, cols: np.ndarray, detections: Detections,
                  measured: np.ndarray, det_masks) -> None:
        """Store detections ``cols``' class, score and mask in track rows ``rows``."""
        self._class_ids[rows] = detections.class_ids[cols]
        self._scores[rows] = detections.scores[cols]
        self._centers[rows] = measured[:, :2]
        masks = detections.mask_windows
        has_masks = len(masks) == len(detections)  # unchecked when the cost ignores masks
        for row, col in zip(rows.tolist(), cols.tolist()):
            self._class_names[row] = detections.class_names[col]
            self._windows[row] = masks.windows[col] if has_masks else _NO_MASK
        if has_masks:
            self._origins[rows] = masks.origins[cols]
            self._sizes[rows] = [masks.windows[c].shape for c in cols.tolist()]
        else:
            self._origins[rows] = 0
            self._sizes[rows] = 0
        self._areas[rows] = 0 if det_masks is None else det_masks.areas[cols]

    def _start(self, cols: np.ndarray, detections: Detections, boxes: np.ndarray,
               det_masks) -> np.ndarray:
        """Start tracks at detections ``cols``; return their new ``int64`` ids."""
        count = len(cols)
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        self._next_id += count
        measured = corners_to_center_size(boxes[cols])
        mean, covariance = self._kalman.initiate(measured)
        start = len(self._ids)
        self._mean = np.concatenate([self._mean, mean])
        self._covariance = np.concatenate([self._covariance, covariance])
        self._ids = np.concatenate([self._ids, ids])
        self._class_ids = np.concatenate([self._class_ids, np.zeros(count, np.int64)])
        self._class_names += [''] * count
        self._scores = np.concatenate([self._scores, np.zeros(count)])
        self._started_s = np.concatenate([self._started_s, np.full(count, self._stamp)])
        self._updated_s = np.concatenate([self._updated_s, np.full(count, self._stamp)])
        self._hits = np.concatenate([self._hits, np.ones(count, np.int64)])
        self._lost = np.concatenate([self._lost, np.zeros(count, bool)])
        self._windows += [_NO_MASK] * count
        self._origins = np.concatenate([self._origins, np.zeros((count, 2), np.int64)])
        self._sizes = np.concatenate([self._sizes, np.zeros((count, 2), np.int64)])
        self._areas = np.concatenate([self._areas, np.zeros(count, np.int64)])
        self._centers = np.concatenate([self._centers, np.zeros((count, 2))])
        self._remember(np.arange(start, start + count), cols, detections, measured, det_masks)
        return ids

    def _keep(self, keep: np.ndarray) -> None:
        """Keep only the track rows where ``bool[T]`` ``keep`` is true."""
        for name in ('_mean', '_covariance', '_ids', '_class_ids', '_scores', '_started_s',
                     '_updated_s', '_hits', '_lost', '_origins', '_sizes', '_areas',
                     '_centers'):
            setattr(self, name, getattr(self, name)[keep])
        rows = np.flatnonzero(keep).tolist()
        self._class_names = [self._class_names[t] for t in rows]
        self._windows = [self._windows[t] for t in rows]


_NO_MASK = np.zeros((0, 0), bool)
