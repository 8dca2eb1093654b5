"""Track trails (``TrackTrails``, ``StreamTracker``) and their drawing by ``draw_overlay``."""

import numpy as np
import pytest

from yolact_ros.structures import Detections, WindowedMasks
from yolact_ros.tracking import StreamTracker, TrackerConfig, TrackTrails
from yolact_ros.visualize import draw_overlay, track_color


def test_trails_keep_the_last_centres_and_forget_lost_tracks():
    trails = TrackTrails(length=3, forget_after=1)
    for step in range(5):
        trails.update(np.array([[step, 0, step + 2, 2], [10, 10, 12, 12]]), np.array([1, 0]))
    assert list(trails.points()) == [1]  # id 0 (not tracked) has no trail
    assert trails.points()[1].tolist() == [[3, 1], [4, 1], [5, 1]]  # oldest first, 3 kept
    trails.update(np.zeros((0, 4)), np.zeros(0))
    assert list(trails.points()) == [1]  # missing once: kept
    trails.update(np.zeros((0, 4)), np.zeros(0))
    assert trails.points() == {}  # missing twice: forgotten
    with pytest.raises(ValueError, match='expected boxes'):
        trails.update(np.zeros((2, 4)), np.zeros(1))


def _detections() -> Detections:
    window = np.ones((10, 10), bool)
    return Detections(
        boxes=np.array([[30, 30, 40, 40]], np.float32), scores=np.array([0.9], np.float32),
        class_ids=np.zeros(1, np.int64), class_names=['circle'],
        category_ids=np.ones(1, np.int64),
        mask_windows=WindowedMasks((64, 96), np.array([[30, 30]]), (window,)),
        image_size=(64, 96))


def test_overlay_draws_the_trail_in_the_track_colour_and_the_id_in_the_label():
    image = np.zeros((64, 96, 3), np.uint8)
    trail = {7: np.array([[5, 55], [25, 55], [35, 35]], np.float32)}
    drawn = draw_overlay(image, _detections(), track_ids=np.array([7]), trails=trail)
    assert tuple(drawn[55, 15]) == track_color(7)  # on the trail, away from the mask
    plain = draw_overlay(image, _detections())
    assert not plain[55, 15].any()
    # The label is longer with '#7 ': it reaches further right.
    label_row = slice(14, 29)
    assert drawn[label_row].any(axis=(0, 2)).nonzero()[0].max() > \
        plain[label_row].any(axis=(0, 2)).nonzero()[0].max()
    with pytest.raises(ValueError, match='track_ids'):
        draw_overlay(image, _detections(), track_ids=np.array([1, 2]))


def _at(x: float) -> Detections:
    """One detection whose box starts at column ``x``."""
    detections = _detections()
    detections.boxes[:, [0, 2]] = [x, x + 10]
    return detections


def test_stream_tracker_keeps_ids_and_trails_and_restarts_when_stamps_go_back():
    stream = StreamTracker(TrackerConfig(mask_weight=0.0))
    assert stream(_at(30), 1.0).tolist() == [1]
    assert stream(_at(32), 1.1).tolist() == [1]
    assert not stream.restarted
    assert stream.trails.points()[1].tolist() == [[35, 35], [37, 35]]
    assert stream(_at(30), 0.5).tolist() == [2]  # earlier stamp: tracks start afresh
    assert stream.restarted
    assert list(stream.trails.points()) == [2]  # and so do the trails
