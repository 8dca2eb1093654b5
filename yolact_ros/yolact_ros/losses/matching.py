"""Prior-to-ground-truth matching as upstream YOLACT v1.2 does it (SSD-style, with crowds).

A prior is positive when its IoU with some ground-truth box is at least ``pos_threshold`` (0.5),
background below ``neg_threshold`` (0.4) and neutral in between (ignored by every loss). Each
ground truth is also forced onto its best prior, so none goes unused. Background priors whose
area lies mostly inside a crowd region (intersection / prior area > ``crowd_threshold``, 0.7)
become neutral.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from yolact_ros.ops import center_size_to_corners, encode_boxes, pairwise_iou

NEUTRAL = -1
BACKGROUND = 0


@dataclass
class Match:
    """Training targets of one image's priors.

    Attributes:
        labels: ``int64[P]``: ``-1`` neutral, ``0`` background, ``k + 1`` for class ``k``.
        gt_index: ``int64[P]`` the ground truth each prior is matched to (0 when there is none;
            only meaningful where ``labels > 0``).
        offsets: ``float32[P, 4]`` encoded regression targets against the priors.
    """

    labels: Tensor
    gt_index: Tensor
    offsets: Tensor


def intersection_over_first_area(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Intersection of every pair divided by the area of the box from ``boxes_a``.

    Args:
        boxes_a: ``Tensor[A, 4]`` (x1, y1, x2, y2).
        boxes_b: ``Tensor[B, 4]`` (x1, y1, x2, y2).

    Returns:
        ``Tensor[A, B]`` (upstream's ``jaccard(..., iscrowd=True)``).
    """
    top_left = torch.max(boxes_a[:, None, :2], boxes_b[None, :, :2])  # (A, B, 2)
    bottom_right = torch.min(boxes_a[:, None, 2:], boxes_b[None, :, 2:])  # (A, B, 2)
    intersection = (bottom_right - top_left).clamp(min=0).prod(dim=-1)  # (A, B)
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])  # (A,)
    return intersection / area_a[:, None]


def match_priors(gt_boxes: Tensor, gt_labels: Tensor, priors: Tensor, *,
                 crowd_boxes: Optional[Tensor] = None, pos_threshold: float = 0.5,
                 neg_threshold: float = 0.4, crowd_threshold: float = 0.7) -> Match:
    """Assign every prior a ground truth, a class target and box offsets.

    Args:
        gt_boxes: ``Tensor[G, 4]`` relative (x1, y1, x2, y2); ``G`` may be 0.
        gt_labels: ``int64[G]`` 0-based foreground classes.
        priors: ``Tensor[P, 4]`` relative (cx, cy, w, h).
        crowd_boxes: ``Tensor[C, 4]`` relative crowd regions, or ``None``.
        pos_threshold: IoU at or above which a prior is positive.
        neg_threshold: IoU below which a prior is background.
        crowd_threshold: intersection / prior area above which a background prior is neutral.

    Returns:
        The :class:`Match` of the ``P`` priors.
    """
    if gt_boxes.ndim != 2 or gt_boxes.shape[1] != 4:
        raise ValueError(f'expected gt_boxes [G, 4], got {tuple(gt_boxes.shape)}')
    if gt_labels.shape != gt_boxes.shape[:1]:
        raise ValueError(f'expected gt_labels [{gt_boxes.shape[0]}], got '
                         f'{tuple(gt_labels.shape)}')
    if not neg_threshold <= pos_threshold:
        raise ValueError(f'neg_threshold {neg_threshold} must not exceed pos_threshold '
                         f'{pos_threshold}')
    num_priors = priors.shape[0]
    corner_priors = center_size_to_corners(priors)  # (P, 4)
    device = priors.device
    if gt_boxes.shape[0] == 0:
        labels = torch.full((num_priors,), BACKGROUND, dtype=torch.int64, device=device)
        gt_index = torch.zeros(num_priors, dtype=torch.int64, device=device)
        offsets = torch.zeros(num_priors, 4, dtype=priors.dtype, device=device)
    else:
        overlaps = pairwise_iou(gt_boxes, corner_priors)  # (G, P)
        best_truth_overlap, gt_index = overlaps.max(dim=0)  # (P,) each
        # Force each ground truth onto its best prior, highest overlap first; a prior taken
        # this way is not available to another ground truth.
        for _ in range(gt_boxes.shape[0]):
            best_prior_overlap, best_prior_index = overlaps.max(dim=1)  # (G,) each
            truth = best_prior_overlap.argmax()
            prior = best_prior_index[truth]
            overlaps[:, prior] = -1.0
            overlaps[truth, :] = -1.0
            best_truth_overlap[prior] = 2.0
            gt_index[prior] = truth
        labels = gt_labels.to(torch.int64)[gt_index] + 1  # (P,)
        labels[best_truth_overlap < pos_threshold] = NEUTRAL
        labels[best_truth_overlap < neg_threshold] = BACKGROUND
        offsets = encode_boxes(gt_boxes[gt_index], priors)  # (P, 4)
    if crowd_boxes is not None and crowd_boxes.shape[0] > 0 and crowd_threshold < 1.0:
        crowd_overlap = intersection_over_first_area(corner_priors, crowd_boxes)  # (P, C)
        in_crowd = crowd_overlap.max(dim=1).values > crowd_threshold  # (P,)
        labels[(labels <= BACKGROUND) & in_crowd] = NEUTRAL
    return Match(labels=labels, gt_index=gt_index, offsets=offsets)
