"""Prior matching against hand-worked cases (thresholds, forced matches, crowds)."""

import pytest
import torch

from yolact_ros.losses import match_priors
from yolact_ros.losses.matching import intersection_over_first_area

# (cx, cy, w, h) priors and, in the comments, their corner boxes.
PRIORS = torch.tensor([
    [0.25, 0.25, 0.5, 0.5],  # p0 (0, 0, .5, .5)
    [0.75, 0.75, 0.5, 0.5],  # p1 (.5, .5, 1, 1)
    [0.30, 0.30, 0.5, 0.5],  # p2 (.05, .05, .55, .55)
    [0.50, 0.50, 0.2, 0.2],  # p3 (.4, .4, .6, .6)
    [0.35, 0.35, 0.5, 0.5],  # p4 (.1, .1, .6, .6)
])


def test_thresholds_and_forced_match_by_hand():
    # g0 = p0 exactly. IoU(g0, p2) = .45^2 / (.5 - .45^2) = 0.681 -> positive;
    # IoU(g0, p4) = .4^2 / (.5 - .4^2) = 0.471 -> neutral; IoU(g0, p3) = 0.036 -> background.
    # g1 is small: its best prior p3 has IoU .01 / .04 = 0.25 < 0.4 but is forced positive.
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.45, 0.45, 0.55, 0.55]])
    labels = torch.tensor([2, 0])
    match = match_priors(boxes, labels, PRIORS)
    assert match.labels.tolist() == [3, 0, 3, 1, -1]
    assert match.gt_index[[0, 2, 3]].tolist() == [0, 0, 1]
    torch.testing.assert_close(match.offsets[0], torch.zeros(4))  # g0 == p0


def test_forced_match_overrides_a_better_overlap_as_upstream():
    # ga = p0 (IoU 1) takes p0 first. gb's best prior is then p2 (IoU 0.547), which is forced
    # to gb although IoU(ga, p2) = 0.681 is higher.
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.45, 0.45]])
    match = match_priors(boxes, torch.tensor([0, 1]), PRIORS)
    assert match.gt_index[0].item() == 0 and match.labels[0].item() == 1
    assert match.gt_index[2].item() == 1 and match.labels[2].item() == 2


def test_crowd_boxes_make_background_priors_neutral_but_keep_positives():
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.45, 0.45, 0.55, 0.55]])
    crowd = torch.tensor([[0.5, 0.5, 1.0, 1.0]])  # covers p1 entirely, p3 by 0.25
    match = match_priors(boxes, torch.tensor([2, 0]), PRIORS, crowd_boxes=crowd)
    assert match.labels.tolist() == [3, -1, 3, 1, -1]
    everything = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    match = match_priors(boxes, torch.tensor([2, 0]), PRIORS, crowd_boxes=everything)
    assert match.labels.tolist() == [3, -1, 3, 1, -1]  # positives untouched


def test_no_ground_truth_gives_all_background_and_crowds_still_apply():
    empty = torch.zeros(0, 4)
    match = match_priors(empty, torch.zeros(0, dtype=torch.int64), PRIORS)
    assert match.labels.tolist() == [0] * 5
    crowd = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    match = match_priors(empty, torch.zeros(0, dtype=torch.int64), PRIORS, crowd_boxes=crowd)
    assert match.labels.tolist() == [0, -1, 0, 0, 0]


def test_intersection_over_prior_area_by_hand():
    priors = torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.4, 0.4, 0.6, 0.6]])
    crowd = torch.tensor([[0.1, 0.0, 1.0, 1.0]])
    torch.testing.assert_close(intersection_over_first_area(priors, crowd),
                               torch.tensor([[0.5], [1.0]]))


def test_bad_shapes_are_reported_with_the_shape():
    with pytest.raises(ValueError, match=r'expected gt_boxes \[G, 4\], got \(2, 3\)'):
        match_priors(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64), PRIORS)
    with pytest.raises(ValueError, match=r'expected gt_labels \[2\], got \(3,\)'):
        match_priors(torch.zeros(2, 4), torch.zeros(3, dtype=torch.int64), PRIORS)
