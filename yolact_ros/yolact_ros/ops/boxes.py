"""Box arithmetic: SSD-style encoding against priors, IoU, coordinate sanitising."""

from typing import Tuple

import torch
from torch import Tensor

# SSD variances upstream uses for the centre and the log-size offsets.
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2


def decode_boxes(loc: Tensor, priors: Tensor) -> Tensor:
    """Decode regression offsets against priors.

    Args:
        loc: ``Tensor[..., P, 4]`` offsets (dcx, dcy, dw, dh).
        priors: ``Tensor[P, 4]`` priors as relative (cx, cy, w, h).

    Returns:
        ``Tensor[..., P, 4]`` relative (x1, y1, x2, y2).
    """
    centers = priors[..., :2] + loc[..., :2] * CENTER_VARIANCE * priors[..., 2:]
    sizes = priors[..., 2:] * torch.exp(loc[..., 2:] * SIZE_VARIANCE)
    return torch.cat((centers - sizes / 2, centers + sizes / 2), dim=-1)


def encode_boxes(boxes: Tensor, priors: Tensor) -> Tensor:
    """Encode corner boxes as offsets against priors (inverse of :func:`decode_boxes`).

    Args:
        boxes: ``Tensor[P, 4]`` relative (x1, y1, x2, y2), one matched box per prior.
        priors: ``Tensor[P, 4]`` relative (cx, cy, w, h).

    Returns:
        ``Tensor[P, 4]`` offsets (dcx, dcy, dw, dh).
    """
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = boxes[:, 2:] - boxes[:, :2]
    offset_centers = (centers - priors[:, :2]) / (CENTER_VARIANCE * priors[:, 2:])
    # Degenerate boxes would give log(0); upstream relies on augmentation dropping them.
    offset_sizes = torch.log(sizes.clamp(min=1e-8) / priors[:, 2:]) / SIZE_VARIANCE
    return torch.cat((offset_centers, offset_sizes), dim=1)


def center_size_to_corners(boxes: Tensor) -> Tensor:
    """Convert ``Tensor[..., 4]`` (cx, cy, w, h) to (x1, y1, x2, y2)."""
    return torch.cat((boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2),
                     dim=-1)


def pairwise_iou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Compute the IoU of every pair of corner boxes, batched over leading dimensions.

    Args:
        boxes_a: ``Tensor[..., A, 4]`` (x1, y1, x2, y2).
        boxes_b: ``Tensor[..., B, 4]`` with the same leading dimensions.

    Returns:
        ``Tensor[..., A, B]``.
    """
    # One coordinate at a time: (..., A, 1) against (..., 1, B) -> (..., A, B). Each op reads
    # and writes one A x B tensor, not the (..., A, B, 2) pairs of corners (half the traffic).
    width = (torch.min(boxes_a[..., :, None, 2], boxes_b[..., None, :, 2])
             - torch.max(boxes_a[..., :, None, 0], boxes_b[..., None, :, 0])).clamp_(min=0)
    height = (torch.min(boxes_a[..., :, None, 3], boxes_b[..., None, :, 3])
              - torch.max(boxes_a[..., :, None, 1], boxes_b[..., None, :, 1])).clamp_(min=0)
    intersection = width * height
    area_a = (boxes_a[..., 2] - boxes_a[..., 0]) * (boxes_a[..., 3] - boxes_a[..., 1])
    area_b = (boxes_b[..., 2] - boxes_b[..., 0]) * (boxes_b[..., 3] - boxes_b[..., 1])
    union = area_a[..., :, None] + area_b[..., None, :] - intersection
    return intersection / union


def sanitize_coordinates(coord_1: Tensor, coord_2: Tensor, size: int,
                         padding: int = 0) -> Tuple[Tensor, Tensor]:
    """Scale relative coordinates to pixels, order them and clamp them to ``[0, size]``.

    Args:
        coord_1: ``Tensor[D]`` relative coordinates (x1 or y1).
        coord_2: ``Tensor[D]`` relative coordinates (x2 or y2).
        size: image width or height in pixels.
        padding: pixels added on both sides before clamping.

    Returns:
        ``(low, high)``, each ``Tensor[D]`` in pixels (not rounded).
    """
    coord_1 = coord_1 * size
    coord_2 = coord_2 * size
    low = torch.clamp(torch.min(coord_1, coord_2) - padding, min=0)
    high = torch.clamp(torch.max(coord_1, coord_2) + padding, max=size)
    return low, high
