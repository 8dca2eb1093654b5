"""YOLACT++'s mask-IoU loss: teach the re-scoring head (``maskiou_net``) each mask's IoU.

As upstream v1.2 (``use_maskiou``): the criterion's GT-box-cropped soft masks of the positive
priors are the head's input; the target is the IoU of the mask binarised at 0.5 with its GT mask
(both at prototype resolution); instances whose GT mask covers at most ``discard_area``
prototype pixels (5 x 5) are left out; SmoothL1 on the IoU predicted for the GT class, summed.
The criterion divides by the batch's positive priors and the weight (25) lives in
``LossWeights``. Gradients reach the masks too (upstream does not detach them).
"""

import torch
from torch import nn, Tensor
import torch.nn.functional as F

# Upstream's ``discard_mask_area``: GT masks of at most 5 x 5 prototype pixels are not scored.
DISCARD_AREA = 5 * 5


def binary_mask_iou(pred_masks: Tensor, gt_masks: Tensor) -> Tensor:
    """Return the IoU of each predicted mask, binarised at 0.5, with its binary GT mask.

    Args:
        pred_masks: ``Tensor[D, H, W]`` soft masks in [0, 1].
        gt_masks: ``Tensor[D, H, W]`` of 0 and 1.

    Returns:
        ``Tensor[D]``; 0 where both masks are empty.
    """
    pred = (pred_masks > 0.5).float()
    intersection = (pred * gt_masks).sum(dim=(1, 2))
    union = pred.sum(dim=(1, 2)) + gt_masks.sum(dim=(1, 2)) - intersection
    return intersection / union.clamp(min=1.0)


def maskiou_loss(mask_scorer: nn.Module, pred_masks: Tensor, gt_masks: Tensor, labels: Tensor,
                 *, discard_area: float = DISCARD_AREA) -> Tensor:
    """Sum of SmoothL1(predicted IoU at the GT class, actual IoU) over the kept instances.

    Args:
        mask_scorer: the model's ``maskiou_net``: ``Tensor[D, 1, H, W]`` -> ``Tensor[D, K]``.
        pred_masks: ``Tensor[D, H, W]`` soft masks cropped to their GT boxes, prototype size.
        gt_masks: ``Tensor[D, H, W]`` binarised GT masks at prototype size.
        labels: ``int64[D]`` 0-based GT classes.
        discard_area: instances whose GT mask has at most this many pixels are left out.

    Returns:
        A scalar, unnormalised. Every scorer parameter stays in the graph even when nothing is
        kept, so distributed training always sees their gradients.
    """
    if pred_masks.shape != gt_masks.shape or pred_masks.shape[:1] != labels.shape:
        raise ValueError(f'expected pred_masks [D, H, W], gt_masks [D, H, W] and labels [D]; got '
                         f'{tuple(pred_masks.shape)}, {tuple(gt_masks.shape)}, '
                         f'{tuple(labels.shape)}')
    keep = gt_masks.sum(dim=(1, 2)) > discard_area  # (D,)
    pred_masks, gt_masks, labels = pred_masks[keep], gt_masks[keep], labels[keep]
    with torch.no_grad():
        target = binary_mask_iou(pred_masks, gt_masks)  # (D',)
    # (D', H, W) -> (D', 1, H, W) -> (D', K) -> (D', 1) -> (D',)
    predicted = mask_scorer(pred_masks[:, None]).gather(1, labels[:, None]).squeeze(1)
    untouched = sum(parameter.sum() for parameter in mask_scorer.parameters()) * 0.0
    return F.smooth_l1_loss(predicted, target, reduction='sum') + untouched
