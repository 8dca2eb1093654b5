"""Duplicates (one object detected twice: under two classes, or a part of it) get no track."""

import numpy as np
import pytest
from test_tracking import disc_window, frame, obj, PERIOD, run

from yolact_ros.tracking import duplicates, MaskSet, Tracker, TrackerConfig


def test_duplicates_by_masks_and_by_boxes():
    # 0: a disc; 1: the same disc, lower score (another class); 2: a ring around the disc,
    # same box as 0 but hardly any shared pixel; 3: far away.
    objects = [obj(100, 100, window=disc_window(20)),
               obj(101, 100, score=0.7, class_id=1, window=disc_window(20)),
               obj(100, 100, score=0.6, window=disc_window(20, inner=19)),
               obj(300, 100, score=0.5)]
    detections = frame(*objects)
    masks = MaskSet.from_windows(detections.mask_windows.windows, detections.mask_windows.origins)
    by_masks = duplicates(detections.boxes, detections.scores, 0.5, masks)
    assert by_masks.tolist() == [False, True, False, False]
    by_boxes = duplicates(detections.boxes, detections.scores, 0.5)
    assert by_boxes.tolist() == [False, True, True, False]
    assert duplicates(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)


def test_a_duplicate_is_not_tracked():
    frames = [frame(obj(200 + 2 * t, 240, window=disc_window(20)),
                    obj(201 + 2 * t, 240, score=0.8, class_id=1, window=disc_window(20)))
              for t in range(3)]
    assert run(Tracker(TrackerConfig()), frames, PERIOD) == [[1, 0]] * 3
    # Kept, the copy is a second track, and the two swap ids from frame to frame.
    ids = run(Tracker(TrackerConfig(duplicate_iou=1.0)), frames, PERIOD)
    assert [sorted(pair) for pair in ids] == [[1, 2]] * 3 and ids[1] == [2, 1]
    with pytest.raises(ValueError, match='duplicate_iou'):
        TrackerConfig(duplicate_iou=1.5)


def test_a_part_found_as_a_second_detection_is_a_duplicate_at_the_default():
    # The left 16 of the disc's 40 columns, as a weaker detection: mask IoU 0.3-0.5 with the
    # disc. Untracked at the default (0.3); at 0.5 it started a second track.
    disc = disc_window(20)
    part = disc[:, :16]
    iou = part.sum() / disc.sum()
    assert 0.3 < iou < 0.5
    frames = [frame(obj(200 + 2 * t, 240, window=disc),
                    obj(188 + 2 * t, 240, score=0.7, class_id=1, window=part)) for t in range(3)]
    assert frames[0].boxes[1, 0] == frames[0].boxes[0, 0]  # the part lies inside the disc
    assert run(Tracker(TrackerConfig()), frames, PERIOD) == [[1, 0]] * 3
    assert run(Tracker(TrackerConfig(duplicate_iou=0.5)), frames, PERIOD) == [[1, 2]] * 3


@pytest.mark.parametrize('mask_weight', [0.0, 0.5])
def test_objects_with_overlapping_boxes_are_not_duplicates(mask_weight):
    # A disc inside a ring: the same box, no shared pixel. Compared by masks whatever the cost
    # (by boxes the ring would be a duplicate of the disc).
    frames = [frame(obj(200 + 2 * t, 240, window=disc_window(10)),
                    obj(200 + 2 * t, 240, score=0.8, window=disc_window(20, inner=12)))
              for t in range(3)]
    ids = run(Tracker(TrackerConfig(mask_weight=mask_weight)), frames, PERIOD)
    assert ids == [[1, 2]] * 3
