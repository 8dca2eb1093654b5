"""Tracker: association cases on hand-built detections, the Kalman filter, costs and config."""

from dataclasses import replace

import numpy as np
import pytest

from yolact_ros.structures import Detections, WindowedMasks
from yolact_ros.tracking import (assign, box_iou, KalmanFilter, MaskSet, match_cost, Tracker,
                                 TrackerConfig, window_iou)

IMAGE = (480, 640)
PERIOD = 1.0 / 30


def disc_window(radius: int, inner: int = 0) -> np.ndarray:
    """Return a ``bool[2r, 2r]`` disc of ``radius`` (a ring when ``inner`` > 0)."""
    centre = np.arange(2 * radius) + 0.5 - radius
    distance = np.hypot(centre[:, None], centre[None, :])
    return (distance <= radius) & (distance >= inner)


def obj(cx: float, cy: float, size=40, score: float = 0.9, class_id: int = 0,
        window=None) -> tuple:
    """Return one object: an x1y1x2y2 box, score, class and mask window filling the box."""
    if window is None:
        width, height = (size, size) if np.isscalar(size) else size
        window = np.ones((height, width), bool)
    height, width = window.shape
    left, top = int(round(cx - width / 2)), int(round(cy - height / 2))
    return (left, top, left + width, top + height), score, class_id, window


def frame(*objects) -> Detections:
    """Build a frame's Detections from :func:`obj` tuples (kept in the given order)."""
    if not objects:
        return Detections.empty(IMAGE)
    boxes = np.array([o[0] for o in objects], np.float32)
    class_ids = np.array([o[2] for o in objects], np.int64)
    masks = WindowedMasks(IMAGE, np.array([[o[0][1], o[0][0]] for o in objects], np.int64),
                          tuple(o[3] for o in objects))
    return Detections(boxes=boxes, scores=np.array([o[1] for o in objects], np.float32),
                      class_ids=class_ids, class_names=[f'class{c}' for c in class_ids],
                      category_ids=class_ids + 1, mask_windows=masks, image_size=IMAGE)


def run(tracker: Tracker, frames, period: float = PERIOD, stamps=None) -> list:
    """Feed ``frames`` at ``stamps`` (default: every ``period``); return each frame's ids."""
    stamps = [k * period for k in range(len(frames))] if stamps is None else stamps
    return [tracker.update(f, s).tolist() for f, s in zip(frames, stamps)]


@pytest.mark.parametrize('mask_weight', [0.0, 0.5])
def test_crossing_objects_keep_their_ids(mask_weight):
    # A goes right, B left, 20 px a frame, 60 px boxes; at the crossing each detection is nearer
    # the other's last box than its own (a tracker without motion would swap them).
    # These masks fill their boxes, so at the crossing they overlap like a duplicate's (IoU up
    # to 0.38): the motion is checked with the duplicate check off, then at the defaults.
    frames = [frame(obj(100 + 20 * t, 200, size=60), obj(520 - 20 * t, 210, size=60))
              for t in range(18)]
    ids = run(Tracker(TrackerConfig(mask_weight=mask_weight, duplicate_iou=1.0)), frames)
    assert all(pair == [1, 2] for pair in ids), ids
    ids = run(Tracker(TrackerConfig(mask_weight=mask_weight)), frames)
    assert ids[10:12] == [[1, 0]] * 2 and ids[:10] + ids[12:] == [[1, 2]] * 16, ids
    a_before, a_after, b_after = frames[10].boxes[0], frames[11].boxes[0], frames[11].boxes[1]
    assert box_iou(a_before[None], b_after[None]) > box_iou(a_before[None], a_after[None])


def test_occlusion_gap_keeps_the_id_within_the_buffer():
    tracker = Tracker()
    seen = [frame(obj(100 + 10 * t, 240)) for t in range(10)]
    hidden = [frame() for _ in range(5)]  # 1/6 s unseen, moving on
    back = [frame(obj(100 + 10 * t, 240)) for t in range(15, 20)]
    ids = run(tracker, seen + hidden + back)
    assert ids[:10] == [[1]] * 10 and ids[10:15] == [[]] * 5 and ids[15:] == [[1]] * 5
    (track,) = tracker.tracks
    assert track.track_id == 1 and not track.lost and track.hits == 15


def test_occlusion_longer_than_the_buffer_gives_a_new_id():
    tracker = Tracker(TrackerConfig(track_buffer_s=0.5))
    assert tracker.update(frame(obj(300, 240)), 0.0).tolist() == [1]
    tracker.update(frame(), 0.4)
    (track,) = tracker.tracks
    assert track.lost and track.time_since_update_s == pytest.approx(0.4)
    tracker.update(frame(), 0.6)  # unseen 0.6 s > 0.5 s: removed
    assert tracker.tracks == []
    assert tracker.update(frame(obj(300, 240)), 0.7).tolist() == [2]


def test_re_entry():
    # A stationary object leaves the view and comes back at the same place: within the buffer it
    # is the same track; after it, a new one (with a new id, the old one never coming back).
    tracker = Tracker()
    stamps = [0.0, PERIOD, 2 * PERIOD, 0.5, 0.5 + PERIOD, 2.0, 2.0 + PERIOD]
    frames = [frame(obj(600, 240)), frame(obj(600, 240)), frame(), frame(obj(600, 240)),
              frame(), frame(obj(600, 240)), frame(obj(600, 240))]
    assert run(tracker, frames, stamps=stamps) == [[1], [1], [], [1], [], [2], [2]]
    # And an object entering elsewhere while a track is lost is a new one.
    tracker.update(frame(), 2.1)
    assert tracker.update(frame(obj(40, 100)), 2.2).tolist() == [3]
    assert [t.track_id for t in tracker.tracks] == [2, 3]


def test_dropped_frame_is_predicted_over_from_the_stamps():
    # A car speeding up from 10 to 30 px a frame (40 px boxes); frame 14 is dropped.
    speeds = np.minimum(10 + 2 * np.arange(16), 30)
    xs = 60 + np.concatenate([[0], np.cumsum(speeds)[:-1]])
    kept = [t for t in range(16) if t != 14]
    frames = [frame(obj(xs[t], 240)) for t in kept]
    config = TrackerConfig(mask_weight=0.0)
    assert run(Tracker(config), frames, stamps=[t * PERIOD for t in kept]) == [[1]] * 15
    # The same frames with the gap hidden in the stamps (one period): the prediction falls short.
    assert run(Tracker(config), frames) == [[1]] * 14 + [[2]]


def test_low_score_detections_continue_tracks_but_never_start_them():
    tracker = Tracker()
    scores = [0.9, 0.9, 0.3, 0.2, 0.3, 0.9]
    ids = run(tracker, [frame(obj(200 + 5 * t, 240, score=s)) for t, s in enumerate(scores)])
    assert ids == [[1]] * 6
    # Lone detections below new_track_threshold (low, or between high and new-track) start none.
    lone = [frame(obj(500, 100, score=0.3), obj(100, 400, score=0.55)) for _ in range(4)]
    stamps = [(6 + k) * PERIOD for k in range(4)]
    assert run(tracker, lone, stamps=stamps) == [[0, 0]] * 4
    assert [t.track_id for t in tracker.tracks] == [1] and tracker.tracks[0].lost
    # Below low_threshold a detection is ignored even on top of a tracked track.
    tracker = Tracker()
    tracker.update(frame(obj(200, 240)), 0.0)
    assert tracker.update(frame(obj(200, 240, score=0.05)), PERIOD).tolist() == [0]
    assert tracker.tracks[0].lost


def test_low_score_detections_do_not_revive_lost_tracks():
    tracker = Tracker()
    tracker.update(frame(obj(200, 240)), 0.0)
    tracker.update(frame(), PERIOD)  # now lost
    assert tracker.update(frame(obj(200, 240, score=0.3)), 2 * PERIOD).tolist() == [0]
    assert tracker.update(frame(obj(200, 240, score=0.7)), 3 * PERIOD).tolist() == [1]


@pytest.mark.parametrize('mask_weight, expected', [(0.5, [1, 2]), (0.0, [2, 1])])
def test_masks_separate_objects_whose_boxes_swap(mask_weight, expected):
    # A ring and a disc at one centre; the ring shrinks to the disc's box, the disc grows to the
    # ring's: by boxes they swapped, by masks they did not. (By boxes they are also duplicates:
    # duplicate_iou=1 keeps both.)
    frames = [frame(obj(320, 240, window=disc_window(30, inner=22)),
                    obj(320, 240, score=0.8, window=disc_window(28))),
              frame(obj(320, 240, window=disc_window(28, inner=20)),
                    obj(320, 240, score=0.8, window=disc_window(30)))]
    ids = run(Tracker(TrackerConfig(mask_weight=mask_weight, duplicate_iou=1.0)), frames)
    assert ids == [[1, 2], expected]


@pytest.mark.parametrize('class_aware, expected', [(True, [2]), (False, [1])])
def test_class_aware_matching(class_aware, expected):
    tracker = Tracker(TrackerConfig(class_aware=class_aware))
    assert tracker.update(frame(obj(200, 240, class_id=0)), 0.0).tolist() == [1]
    assert tracker.update(frame(obj(202, 240, class_id=1)), PERIOD).tolist() == expected
    assert [(t.track_id, t.class_id, t.class_name, t.lost) for t in tracker.tracks][-1] == \
        (expected[0], 1, 'class1', False)


def random_stream(seed: int, length: int = 60):
    """Return frames of objects that appear, move and vanish at random."""
    rng = np.random.default_rng(seed)
    objects, frames = [], []
    for _ in range(length):
        if rng.random() < 0.3:
            objects.append([rng.uniform(60, 580), rng.uniform(60, 420), rng.uniform(-8, 8),
                            rng.uniform(-8, 8), int(rng.integers(2))])
        objects = [o for o in objects if rng.random() > 0.05 and 30 < o[0] < 610
                   and 30 < o[1] < 450]
        for o in objects:
            o[0] += o[2]
            o[1] += o[3]
        shown = [obj(o[0], o[1], score=float(rng.uniform(0.2, 1.0)), class_id=o[4])
                 for o in objects if 30 < o[0] < 610 and 30 < o[1] < 450 and rng.random() > 0.1]
        frames.append(frame(*shown))
    return frames


def test_ids_are_never_reused_and_results_are_deterministic():
    config = TrackerConfig(track_buffer_s=0.1)
    tracker = Tracker(config)
    frames = random_stream(0)
    ids = run(tracker, frames)
    again = run(Tracker(config), frames)
    assert ids == again
    started, latest = [], 0
    for frame_ids in ids:
        fresh = sorted({i for i in frame_ids if i > latest})
        started += fresh
        latest = max([latest] + fresh)
        assert len([i for i in frame_ids if i]) == len({i for i in frame_ids if i})
    assert started == list(range(1, latest + 1)) and latest > 10
    tracker.reset()
    assert tracker.tracks == [] and tracker.update(frames[-1], 0.0).max() > latest


def test_tracks_report_state():
    tracker = Tracker()
    assert tracker.tracks == []
    for t in range(4):
        tracker.update(frame(obj(100 + 6 * t, 200, size=(40, 20))), t * PERIOD)
    tracker.update(frame(), 4 * PERIOD)
    (track,) = tracker.tracks
    assert track.track_id == 1 and track.lost and track.hits == 4
    assert track.age_s == pytest.approx(4 * PERIOD)
    assert track.time_since_update_s == pytest.approx(PERIOD)
    assert track.box.dtype == np.float32 and track.box.shape == (4,)
    np.testing.assert_allclose(track.box, [104, 190, 144, 210], atol=4)  # moved on
    assert track.mask_window.shape == (20, 40) and track.mask_origin == (190, 98)


def test_stamps_and_detections_are_checked():
    tracker = Tracker()
    tracker.update(frame(), 1.0)
    with pytest.raises(ValueError, match='stamp_s must not go back: got 0.5 after 1.0'):
        tracker.update(frame(), 0.5)
    with pytest.raises(ValueError, match='stamp_s must be finite, got nan'):
        tracker.update(frame(), float('nan'))
    broken = frame(obj(100, 100))
    broken.boxes = broken.boxes[:, :3]
    with pytest.raises(ValueError, match=r'expected boxes \[D, 4\].*got \[1, 3\]'):
        tracker.update(broken, 2.0)


@pytest.mark.parametrize('field, value, message', [
    ('high_threshold', 1.5, 'high_threshold must be in [0, 1], got 1.5'),
    ('low_threshold', -0.1, 'low_threshold must be in [0, 1], got -0.1'),
    ('low_threshold', 0.7, 'low_threshold must be <= high_threshold (0.5), got 0.7'),
    ('new_track_threshold', 0.4, 'new_track_threshold must be >= high_threshold (0.5), got 0.4'),
    ('match_threshold', 0.0, 'match_threshold must be in (0, 1], got 0.0'),
    ('low_match_threshold', 2.0, 'low_match_threshold must be in (0, 1], got 2.0'),
    ('mask_weight', 1.2, 'mask_weight must be in [0, 1], got 1.2'),
    ('track_buffer_s', -1.0, 'track_buffer_s must be finite and >= 0, got -1.0'),
    ('frame_rate', 0.0, 'frame_rate must be finite and > 0, got 0.0'),
])
def test_config_validation_names_field_and_value(field, value, message):
    with pytest.raises(ValueError) as error:
        replace(TrackerConfig(), **{field: value})
    assert str(error.value) == message


def test_kalman_predicts_over_the_time_step():
    kalman = KalmanFilter(frame_rate=30.0)
    mean, covariance = kalman.initiate(np.array([[100.0, 50.0, 40.0, 20.0]]))
    assert mean.shape == (1, 8) and covariance.shape == (1, 8, 8)
    mean[0, 4:] = [300.0, -60.0, 0.0, 0.0]  # px/s
    one, one_cov = kalman.predict(mean, covariance, 0.1)
    np.testing.assert_allclose(one[0], [130, 44, 40, 20, 300, -60, 0, 0])
    two, _ = kalman.predict(*kalman.predict(mean, covariance, 0.05), 0.05)
    np.testing.assert_allclose(two, one)
    same, same_cov = kalman.predict(mean, covariance, 0.0)
    np.testing.assert_array_equal(same, mean)
    np.testing.assert_array_equal(same_cov, covariance)
    assert np.all(np.diag(one_cov[0]) > np.diag(covariance[0]))
    # An update pulls the state to the measurement, and shrinks the position variance.
    updated, updated_cov = kalman.update(one, one_cov, np.array([[134.0, 44.0, 40.0, 20.0]]))
    assert 130 < updated[0, 0] < 134 and updated[0, 4] > 300
    assert updated_cov[0, 0, 0] < one_cov[0, 0, 0]
    with pytest.raises(ValueError, match='dt must be >= 0 seconds, got -1'):
        kalman.predict(mean, covariance, -1)


def test_box_iou_and_window_iou_by_hand():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0]])
    # Two windows of a 6x6 image, compared with their full masks.
    a, b = np.zeros((6, 6), bool), np.zeros((6, 6), bool)
    a[1:4, 1:5] = True
    b[2:6, 3:6] = True
    b[5, 3] = False
    window_a, window_b = np.ones((3, 4), bool), b[2:6, 3:6]
    expected = (a & b).sum() / (a | b).sum()
    assert window_iou(window_a, (1, 1), 12, window_b, (2, 3), int(b.sum())) == \
        pytest.approx(expected)
    assert window_iou(window_a, (1, 1), 12, window_b, (20, 3), 11) == 0.0


def test_match_cost_and_assign():
    tracks = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float64)
    detections = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [300, 300, 310, 310]], np.float64)
    cost = match_cost(tracks, detections, allowed=np.array([[True, True, True], [True] * 3]))
    assert cost[0, 0] == 0.0 and np.isinf(cost[1]).all() and np.isinf(cost[:, 2]).all()
    matches, free_rows, free_cols = assign(cost, 0.8)
    assert matches.tolist() == [[0, 0]] and free_rows.tolist() == [1]
    assert free_cols.tolist() == [1, 2]
    # The most pairs under the threshold come before the least cost.
    cost = np.array([[0.1, 0.5], [0.7, np.inf]])
    assert assign(cost, 0.8)[0].tolist() == [[0, 1], [1, 0]]
    assert assign(cost, 0.6)[0].tolist() == [[0, 0]]
    empty = assign(np.zeros((0, 3)), 0.8)
    assert empty[0].shape == (0, 2) and empty[2].tolist() == [0, 1, 2]


def test_mask_cost_matches_dense_masks_and_skips_only_what_cannot_matter():
    rng = np.random.default_rng(1)
    size = (60, 80)

    def random_masks(count):
        windows, origins, dense = [], [], np.zeros((count, *size), bool)
        for index in range(count):
            height, width = rng.integers(8, 30, 2)
            top, left = rng.integers(0, size[0] - height), rng.integers(0, size[1] - width)
            window = rng.random((height, width)) < 0.7
            windows.append(window)
            origins.append((top, left))
            dense[index, top:top + height, left:left + width] = window
        boxes = np.array([[x, y, x + w.shape[1], y + w.shape[0]]
                          for (y, x), w in zip(origins, windows)], np.float64)
        return MaskSet.from_windows(windows, np.array(origins)), dense, boxes

    tracks, track_dense, track_boxes = random_masks(12)
    detections, detection_dense, detection_boxes = random_masks(9)
    inter = np.einsum('thw,dhw->td', track_dense.astype(int), detection_dense.astype(int))
    union = track_dense.sum((1, 2))[:, None] + detection_dense.sum((1, 2))[None] - inter
    expected = 1 - (0.3 * box_iou(track_boxes, detection_boxes) + 0.7 * inter / union)
    expected[box_iou(track_boxes, detection_boxes) == 0] = np.inf
    cost = match_cost(track_boxes, detection_boxes, mask_weight=0.7, track_masks=tracks,
                      detection_masks=detections)
    np.testing.assert_allclose(cost, expected)
    # A threshold turns only pairs that could not pass it to inf; skipping the unambiguous pairs
    # leaves the assignment as it was.
    pruned = match_cost(track_boxes, detection_boxes, mask_weight=0.7, track_masks=tracks,
                        detection_masks=detections, threshold=0.8)
    np.testing.assert_array_equal(pruned <= 0.8, expected <= 0.8)
    np.testing.assert_allclose(pruned[pruned <= 0.8], expected[expected <= 0.8])
    skipped = match_cost(track_boxes, detection_boxes, mask_weight=0.7, track_masks=tracks,
                         detection_masks=detections, threshold=0.8, skip_unambiguous=True)
    np.testing.assert_array_equal(skipped <= 0.8, expected <= 0.8)
    assert assign(skipped, 0.8)[0].tolist() == assign(expected, 0.8)[0].tolist()
