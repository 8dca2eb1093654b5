"""Prior (anchor) boxes for YOLACT's five prediction levels."""

import math
from typing import Sequence, Tuple

import torch
from torch import Tensor


def make_priors(feature_sizes: Sequence[Tuple[int, int]], scales: Sequence[float],
                aspect_ratios: Sequence[float], input_size: int, *,
                square: bool, scale_factors: Sequence[float] = (1.0,)) -> Tensor:
    """Build priors in upstream's order: level, row, column, scale factor, aspect ratio.

    Args:
        feature_sizes: ``(H, W)`` of each prediction level (P3..P7).
        scales: anchor side in pixels at ``input_size``, one per level.
        aspect_ratios: width / height ratios (upstream: 1, 1/2, 2).
        input_size: network input side in pixels.
        square: reproduce upstream v1.x, whose anchors end up square (h = w).
        scale_factors: each level's side is multiplied by each of these (YOLACT++:
            ``2 ** (j / 3)``, j = 0, 1, 2); A = len(scale_factors) * len(aspect_ratios).

    Returns:
        ``Tensor[P, 4]`` relative (cx, cy, w, h), P = sum(H * W) * A.
    """
    if len(feature_sizes) != len(scales):
        raise ValueError(f'{len(feature_sizes)} feature maps but {len(scales)} anchor scales')
    priors = []
    for (height, width), level_scale in zip(feature_sizes, scales):
        sides = []
        for factor in scale_factors:
            scale = level_scale * factor  # upstream: i * 2 ** (j / 3.0), in double precision
            for ratio in aspect_ratios:
                box_w = scale * math.sqrt(ratio) / input_size
                box_h = box_w if square else scale / math.sqrt(ratio) / input_size
                sides.append((box_w, box_h))
        sides_t = torch.tensor(sides, dtype=torch.float32)  # (A, 2)
        ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')  # (H, W) each
        centers = torch.stack((grid_x, grid_y), dim=-1)  # (H, W, 2)
        num_anchors = len(sides)
        # (H, W, 1, 2) and (1, 1, A, 2) -> (H, W, A, 4) -> (HWA, 4)
        level = torch.cat((centers[:, :, None, :].expand(height, width, num_anchors, 2),
                           sides_t[None, None].expand(height, width, num_anchors, 2)), dim=-1)
        priors.append(level.reshape(-1, 4))
    return torch.cat(priors, dim=0)
