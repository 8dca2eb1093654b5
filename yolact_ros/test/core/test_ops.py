"""Each op against a hand-computed case."""

import math

import pytest
import torch

from yolact_ros.ops import (assemble_masks, crop_to_boxes, decode_boxes, encode_boxes, fast_nms,
                            make_priors, pairwise_iou)


def test_priors_for_a_one_by_two_map_follow_upstream_order_and_square_quirk():
    priors = make_priors([(1, 2)], [24], [1.0, 0.5, 2.0], 48, square=True)
    side = 24 / 48
    expected = torch.tensor([
        [0.25, 0.5, side, side],
        [0.25, 0.5, side * math.sqrt(0.5), side * math.sqrt(0.5)],
        [0.25, 0.5, side * math.sqrt(2), side * math.sqrt(2)],
        [0.75, 0.5, side, side],
        [0.75, 0.5, side * math.sqrt(0.5), side * math.sqrt(0.5)],
        [0.75, 0.5, side * math.sqrt(2), side * math.sqrt(2)],
    ])
    torch.testing.assert_close(priors, expected)


def test_rectangular_priors_have_the_requested_aspect_ratio():
    priors = make_priors([(2, 2)], [24], [0.5, 2.0], 48, square=False)
    ratios = priors[:, 2] / priors[:, 3]
    torch.testing.assert_close(ratios, torch.tensor([0.5, 2.0] * 4))
    assert priors.shape == (8, 4)


def test_priors_reject_a_scale_count_that_does_not_match_the_levels():
    with pytest.raises(ValueError, match='2 feature maps but 1 anchor scales'):
        make_priors([(1, 1), (1, 1)], [24], [1.0], 48, square=True)


def test_decode_of_zero_offsets_gives_the_prior_and_encode_inverts_decode():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.1, 0.3, 0.1, 0.1]])
    corners = decode_boxes(torch.zeros(2, 4), priors)
    torch.testing.assert_close(corners, torch.tensor([[0.4, 0.3, 0.6, 0.7],
                                                      [0.05, 0.25, 0.15, 0.35]]))
    offsets = torch.tensor([[0.3, -0.2, 0.5, -1.0], [1.0, 0.0, 0.0, 2.0]])
    torch.testing.assert_close(encode_boxes(decode_boxes(offsets, priors), priors), offsets,
                               atol=1e-5, rtol=1e-5)


def test_pairwise_iou_by_hand():
    boxes_a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    boxes_b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    torch.testing.assert_close(pairwise_iou(boxes_a, boxes_b),
                               torch.tensor([[1 / 7, 1.0, 0.0]]))


def test_fast_nms_on_three_boxes_lets_a_suppressed_box_still_suppress():
    # Full-height strips: IoU(a, b) = IoU(b, c) = 0.7 / 1.3 = 0.54, IoU(a, c) = 0.4 / 1.6 = 0.25.
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.3, 0.0, 1.3, 1.0], [0.6, 0.0, 1.6, 1.0]])
    coefficients = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    scores = torch.tensor([[0.7, 0.9, 0.8]])  # b scores highest, then c, then a

    def kept(threshold):
        _, kept_coef, classes, kept_scores = fast_nms(
            boxes, coefficients, scores, iou_threshold=threshold, top_k=10, max_detections=10)
        assert classes.tolist() == [0] * len(kept_scores)
        return kept_scores.tolist(), kept_coef

    # b suppresses a and c; greedy NMS would give the same here.
    assert kept(0.5)[0] == pytest.approx([0.9])
    assert kept(0.6)[0] == pytest.approx([0.9, 0.8, 0.7])
    # With a (0.9) first: a suppresses b; c overlaps only the suppressed b, yet is removed,
    # where greedy NMS would have kept it.
    scores[0] = torch.tensor([0.9, 0.8, 0.7])
    scores_kept, coef_kept = kept(0.5)
    assert scores_kept == pytest.approx([0.9])
    torch.testing.assert_close(coef_kept, coefficients[:1])


def test_fast_nms_is_class_specific_and_caps_detections():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])  # (K=2, P=2)
    _, _, classes, kept_scores = fast_nms(boxes, torch.zeros(2, 1), scores, iou_threshold=0.5,
                                          top_k=10, max_detections=10)
    assert classes.tolist() == [0, 1]
    torch.testing.assert_close(kept_scores, torch.tensor([0.9, 0.8]))
    _, _, _, kept_scores = fast_nms(boxes, torch.zeros(2, 1), scores, iou_threshold=0.5,
                                    top_k=10, max_detections=1)
    assert kept_scores.tolist() == pytest.approx([0.9])


def test_crop_keeps_the_box_plus_one_pixel_of_padding():
    masks = torch.ones(6, 8, 1)
    cropped = crop_to_boxes(masks, torch.tensor([[0.25, 0.5, 0.5, 0.75]]))
    # x: 2..4 px padded to [1, 5); y: 3..4.5 px padded to [2, 5.5)
    expected = torch.zeros(6, 8)
    expected[2:6, 1:5] = 1
    torch.testing.assert_close(cropped[:, :, 0], expected)


def test_assemble_masks_is_a_sigmoid_of_the_linear_combination_inside_the_box():
    prototypes = torch.zeros(4, 4, 2)
    prototypes[..., 0] = 2.0
    masks = assemble_masks(prototypes, torch.tensor([[1.0, 0.0]]), torch.tensor([[0, 0, 1, 1.0]]))
    assert masks.shape == (1, 4, 4)
    torch.testing.assert_close(masks, torch.full((1, 4, 4), torch.sigmoid(torch.tensor(2.0))))


def test_fast_nms_with_no_candidates_returns_empty_tensors():
    boxes, coefficients, classes, scores = fast_nms(
        torch.zeros(0, 4), torch.zeros(0, 5), torch.zeros(3, 0), iou_threshold=0.5, top_k=10,
        max_detections=10)
    assert boxes.shape == (0, 4) and coefficients.shape == (0, 5)
    assert classes.shape == (0,) and scores.shape == (0,)


def test_top_candidates_are_the_sorts_first_columns_with_and_without_ties():
    from yolact_ros.ops.nms import top_candidates

    generator = torch.Generator().manual_seed(0)
    distinct = torch.rand(80, 3000, generator=generator)
    tied = (distinct * 20).round() / 20  # 21 levels: ties everywhere in the top 200
    some_tied = torch.cat((distinct[:70], tied[70:]))  # only the last 10 classes sorted
    for scores in (distinct, tied, some_tied, distinct[:, :150], distinct[:, :201]):
        values, indices = top_candidates(scores, 200)
        expected_values, expected_indices = scores.sort(dim=1, descending=True)
        assert torch.equal(values, expected_values[:, :200])
        assert torch.equal(indices, expected_indices[:, :200])


def test_fast_nms_in_class_blocks_equals_all_classes_at_once(monkeypatch):
    from yolact_ros.ops import nms

    generator = torch.Generator().manual_seed(1)
    corners = torch.rand(500, 2, generator=generator) * 0.8
    boxes = torch.cat((corners, corners + 0.05 + torch.rand(500, 2, generator=generator) * 0.2),
                      dim=1)
    coefficients = torch.randn(500, 4, generator=generator)
    scores = torch.rand(21, 500, generator=generator)  # 21 classes: blocks of 8, 8 and 5

    def run():
        return fast_nms(boxes, coefficients, scores, iou_threshold=0.5, top_k=50,
                        max_detections=100)

    blocked = run()
    monkeypatch.setattr(nms, 'CPU_CLASSES_PER_BLOCK', 1000)
    whole = run()
    assert len(blocked[3]) == 100 and len(set(blocked[2].tolist())) > 5
    for ours, reference in zip(blocked, whole):
        assert torch.equal(ours, reference)
