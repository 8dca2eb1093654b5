"""Mask assembly: prototypes times coefficients, cropped to the box."""

import torch
from torch import Tensor

from yolact_ros.ops.boxes import sanitize_coordinates


def crop_to_boxes(masks: Tensor, boxes: Tensor, padding: int = 1) -> Tensor:
    """Zero every mask outside its box.

    Args:
        masks: ``Tensor[H, W, D]`` masks at prototype resolution.
        boxes: ``Tensor[D, 4]`` relative (x1, y1, x2, y2).
        padding: pixels of slack on each side, as upstream.

    Returns:
        ``Tensor[H, W, D]``.
    """
    height, width, _ = masks.shape
    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], width, padding)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], height, padding)
    columns = torch.arange(width, device=masks.device, dtype=x1.dtype)[None, :, None]  # (1, W, 1)
    rows = torch.arange(height, device=masks.device, dtype=y1.dtype)[:, None, None]  # (H, 1, 1)
    inside = ((columns >= x1) & (columns < x2) & (rows >= y1) & (rows < y2))  # (H, W, D)
    return masks * inside.to(masks.dtype)


def assemble_masks(prototypes: Tensor, coefficients: Tensor, boxes: Tensor) -> Tensor:
    """Combine prototypes linearly, squash with a sigmoid and crop to each box.

    Args:
        prototypes: ``Tensor[H, W, M]`` prototype masks of one image.
        coefficients: ``Tensor[D, M]`` per-detection coefficients.
        boxes: ``Tensor[D, 4]`` relative (x1, y1, x2, y2).

    Returns:
        ``Tensor[D, H, W]`` soft masks in [0, 1] at prototype resolution.
    """
    masks = torch.sigmoid(prototypes @ coefficients.t())  # (H, W, M) @ (M, D) -> (H, W, D)
    return crop_to_boxes(masks, boxes).permute(2, 0, 1)  # (H, W, D) -> (D, H, W)
