"""Multi-object tracking of instance masks (ByteTrack family), NumPy and SciPy only."""

from yolact_ros.tracking.association import (assign, box_iou, MaskSet, match_cost,
                                             window_iou)
from yolact_ros.tracking.kalman import KalmanFilter
from yolact_ros.tracking.tracker import Track, Tracker, TrackerConfig

__all__ = ['assign', 'box_iou', 'KalmanFilter', 'MaskSet', 'match_cost', 'Track', 'Tracker',
           'TrackerConfig', 'window_iou']
