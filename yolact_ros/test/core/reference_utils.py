"""Helpers shared by the upstream parity tests."""

import numpy as np


def reference_masks(reference) -> np.ndarray:
    """Unpack the reference's binarised full-size masks to ``bool[D, H, W]``."""
    packed = reference['pp_masks_packed']
    shape = tuple(reference['pp_masks_shape'])
    return np.unpackbits(packed, axis=1)[:, :shape[1] * shape[2]].reshape(shape).astype(bool)


def mask_iou(mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """Return the IoU of two boolean masks (1 when both are empty)."""
    union = np.logical_or(mask_a, mask_b).sum()
    return 1.0 if union == 0 else np.logical_and(mask_a, mask_b).sum() / union
