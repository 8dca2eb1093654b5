"""MOT metrics of mask tracks (motmetrics, trackeval) on tiny sequences with known answers."""

import numpy as np
import pytest

from yolact_ros.evaluation.mot import evaluate_mot, mask_ious, MotFrame
from yolact_ros.results import encode_mask_rle

pytest.importorskip('motmetrics')


def _square(x: int, y: int, side: int = 10, size: int = 64) -> dict:
    mask = np.zeros((size, size), bool)
    mask[y:y + side, x:x + side] = True
    return encode_mask_rle(mask)


def _two_objects(frames: int):
    """Return ground truth of two squares moving apart, ids 1 and 2."""
    return [MotFrame([1, 2], [_square(2 + t, 5), _square(40 - t, 30)]) for t in range(frames)]


def test_perfect_tracks_score_one():
    gt = _two_objects(6)
    tracked = [MotFrame(f.ids + 10, f.masks) for f in gt]  # other ids, same identities
    scores = evaluate_mot(gt, tracked)
    assert (scores.idf1, scores.mota, scores.id_switches) == (1.0, 1.0, 0)
    assert (scores.false_positives, scores.misses, scores.frames, scores.objects) == (0, 0, 6, 12)
    if scores.hota is not None:
        assert scores.hota == pytest.approx(1.0)


def test_swapped_ids_count_two_switches():
    gt = _two_objects(6)
    tracked = [MotFrame([1, 2] if t < 3 else [2, 1], f.masks) for t, f in enumerate(gt)]
    scores = evaluate_mot(gt, tracked)
    assert scores.id_switches == 2
    assert scores.mota == pytest.approx(1 - 2 / 12)
    assert scores.idf1 == pytest.approx(0.5)  # each id right on half of its frames
    if scores.hota is not None:
        assert scores.hota < 0.8


def test_missed_and_spurious_objects():
    gt = _two_objects(4)
    tracked = [MotFrame([1], [f.masks[0]]) for f in gt]  # object 2 never found
    tracked[0] = MotFrame([1, 7], [gt[0].masks[0], _square(50, 50)])  # one false positive
    scores = evaluate_mot(gt, tracked)
    assert (scores.misses, scores.false_positives, scores.id_switches) == (4, 1, 0)
    assert scores.mota == pytest.approx(1 - 5 / 8)


def test_ignored_ground_truth_is_neither_missed_nor_a_false_positive():
    gt = [MotFrame(f.ids, f.masks, ignored=[False, True]) for f in _two_objects(4)]
    found = [MotFrame([1, 2], f.masks) for f in gt]
    not_found = [MotFrame([1], f.masks[:1]) for f in gt]
    for tracked in (found, not_found):
        scores = evaluate_mot(gt, tracked)
        assert (scores.idf1, scores.mota, scores.objects, scores.false_positives) == (
            1.0, 1.0, 4, 0)


def test_mask_ious_and_bad_input():
    frame = MotFrame([1, 2], [_square(0, 0), _square(5, 0)])
    ious = mask_ious(frame, MotFrame([3], [_square(0, 0)]))
    assert ious.shape == (2, 1) and ious[:, 0] == pytest.approx([1.0, 50 / 150])
    assert mask_ious(frame, MotFrame([], [])).shape == (2, 0)
    with pytest.raises(ValueError, match='one mask per id'):
        MotFrame([1, 2], [_square(0, 0)])
    with pytest.raises(ValueError, match='as many tracked frames'):
        evaluate_mot(_two_objects(2), _two_objects(3))
