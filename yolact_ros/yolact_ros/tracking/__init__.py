"""Multi-object tracking of instance masks (ByteTrack family), NumPy and SciPy only."""

from yolact_ros.tracking.association import (assign, box_iou, duplicates, MaskSet,
                                             match_cost, window_iou)
from yolact_ros.tracking.kalman import KalmanFilter
from yolact_ros.tracking.stream import StreamTracker
from yolact_ros.tracking.tracker import Track, Tracker, TrackerConfig
from yolact_ros.tracking.trails import TrackTrails

__all__ = ['assign', 'box_iou', 'duplicates', 'KalmanFilter', 'MaskSet', 'match_cost',
           'StreamTracker', 'Track', 'Tracker', 'TrackerConfig', 'TrackTrails', 'window_iou']
