"""YOLACT's training criterion: named, unweighted loss terms, with the weight table beside it.

Normalisation follows upstream v1.2 exactly (``layers/modules/multibox_loss.py``); with
``num_pos`` the number of positive priors in the whole batch (at least 1 here, so a batch with no
objects gives finite zeros instead of upstream's division by zero):

- ``loss_box``: SmoothL1 (beta 1) of the encoded offsets of positive priors, summed, / num_pos.
- ``loss_conf``: cross-entropy over positives and hard negatives, summed, / num_pos. Negatives
  are ranked by ``logsumexp(logits) - logit_background`` (how much the prior does *not* look
  like background); the top ``3 * positives`` per image are kept (OHEM 3:1). Neutral priors
  never count.
- ``loss_mask``: GT masks bilinearly downsampled to prototype size and binarised (> 0.5); the
  mask of each positive prior, ``sigmoid(proto @ coef)``, is cropped to its *ground-truth* box
  (1 px padding) and compared with BCE summed over pixels and divided by that box's area in
  prototype pixels; at most 100 positives per image are used (a random subset, the sum scaled
  up by ``positives / 100``); summed over the batch, / num_pos. Upstream multiplies each
  instance term by ``Hp * Wp`` and divides the total by ``Hp * Wp`` (its ``mask_alpha / 138 /
  138`` with ``emulate_roi_pooling``): the two cancel, so upstream's *effective* weight on this
  term is ``mask_alpha`` = 6.125, which is :attr:`LossWeights.mask`.
- ``loss_semantic``: BCE-with-logits of the semantic head against per-class union masks (GT
  downsampled to its size, binarised), summed, / (H3 * W3) / N.
- ``loss_context``: :func:`~yolact_ros.losses.contextual.contextual_loss` on the prototypes; only
  computed when its weight is > 0.
- ``loss_maskiou`` (YOLACT++, when the criterion is given the model's ``maskiou_net``):
  :func:`~yolact_ros.losses.maskiou.maskiou_loss` on the masks of ``loss_mask`` (same positives,
  same GT-box crop), / num_pos; weight 25 as upstream.
"""

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from yolact_ros.losses.contextual import contextual_loss, NEIGHBOURHOODS
from yolact_ros.losses.maskiou import DISCARD_AREA, maskiou_loss
from yolact_ros.losses.matching import match_priors
from yolact_ros.ops import crop_to_boxes

LOSS_NAMES = ('loss_box', 'loss_conf', 'loss_mask', 'loss_semantic', 'loss_context')


@dataclass(frozen=True)
class LossWeights:
    """Weight of each loss term in the total (upstream's values; ``context`` is the project's).

    ``context`` defaults to 0.1: the contextual term is ~log(1 + negatives / positives) at start
    (about 2.4), so 0.1 keeps it below the mask term while still shaping the prototypes. 0 turns
    it off (and it is then not computed).
    """

    box: float = 1.5
    conf: float = 1.0
    mask: float = 6.125
    semantic: float = 1.0
    context: float = 0.1
    maskiou: float = 25.0  # YOLACT++ only (upstream maskiou_alpha)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value >= 0.0:
                raise ValueError(f'loss weight {name} must be >= 0, got {value}')

    def as_dict(self) -> Dict[str, float]:
        """Return ``{'loss_box': 1.5, ...}``, keyed like the criterion's output."""
        return {f'loss_{name}': value for name, value in asdict(self).items()}


@dataclass(frozen=True)
class LossConfig:
    """Everything that defines the criterion (defaults: upstream v1.2 + the contextual loss)."""

    weights: LossWeights = field(default_factory=LossWeights)
    pos_threshold: float = 0.5
    neg_threshold: float = 0.4
    crowd_threshold: float = 0.7
    negpos_ratio: int = 3
    masks_to_train: int = 100
    context_samples: int = 1024
    context_bandwidth: float = 0.1
    context_neighbourhood: int = 8
    maskiou_discard_area: float = DISCARD_AREA

    def __post_init__(self) -> None:
        if not 0.0 <= self.neg_threshold <= self.pos_threshold <= 1.0:
            raise ValueError(f'need 0 <= neg_threshold <= pos_threshold <= 1, got '
                             f'{self.neg_threshold} and {self.pos_threshold}')
        if self.negpos_ratio < 0:
            raise ValueError(f'negpos_ratio must be >= 0, got {self.negpos_ratio}')
        if self.masks_to_train < 1:
            raise ValueError(f'masks_to_train must be >= 1, got {self.masks_to_train}')
        if self.context_samples < 2:
            raise ValueError(f'context_samples must be >= 2, got {self.context_samples}')
        if self.context_bandwidth <= 0:
            raise ValueError(f'context_bandwidth must be > 0, got {self.context_bandwidth}')
        if self.context_neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f'context_neighbourhood must be 4 or 8, got '
                             f'{self.context_neighbourhood}')
        if self.maskiou_discard_area < 0:
            raise ValueError(f'maskiou_discard_area must be >= 0, got {self.maskiou_discard_area}')


def weighted_total(losses: Dict[str, Tensor], weights: LossWeights) -> Tensor:
    """Return ``sum(weight * loss)`` over the terms present in ``losses``."""
    table = weights.as_dict()
    unknown = sorted(set(losses) - set(table))
    if unknown:
        raise ValueError(f'no weight for loss terms {unknown}; known: {sorted(table)}')
    return sum(table[name] * value for name, value in losses.items())


def downsample_masks(masks: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinearly resize binary masks and binarise them at 0.5, as upstream.

    Args:
        masks: ``Tensor[G, S, S]`` (uint8 or float) at input resolution.
        size: target ``(H, W)``.

    Returns:
        ``float32[G, H, W]`` of 0 and 1.
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size), dtype=torch.float32)
    resized = F.interpolate(masks[None].float(), size=tuple(size), mode='bilinear',
                            align_corners=False)[0]  # (1, G, S, S) -> (G, H, W)
    return (resized > 0.5).float()


class YolactCriterion(nn.Module):
    """Compute upstream YOLACT's losses (and the contextual loss) from raw network outputs.

    ``forward(outputs, targets)`` returns a dict of *unweighted* scalar terms
    (:data:`LOSS_NAMES`; ``loss_context`` only if enabled). Combine them with
    :func:`weighted_total`. Computation is in float32 whatever the outputs' dtype, so call it
    outside ``torch.autocast``.
    """

    def __init__(self, *, pos_threshold: float = 0.5, neg_threshold: float = 0.4,
                 crowd_threshold: float = 0.7, negpos_ratio: int = 3,
                 masks_to_train: int = 100, context: bool = True, context_samples: int = 1024,
                 context_bandwidth: float = 0.1, context_neighbourhood: int = 8,
                 mask_scorer: Optional[nn.Module] = None,
                 maskiou_discard_area: float = DISCARD_AREA) -> None:
        super().__init__()
        self.pos_threshold = pos_threshold
        self.neg_threshold = neg_threshold
        self.crowd_threshold = crowd_threshold
        self.negpos_ratio = negpos_ratio
        self.masks_to_train = masks_to_train
        self.context = context
        self.context_samples = context_samples
        self.context_bandwidth = context_bandwidth
        self.context_neighbourhood = context_neighbourhood
        # YOLACT++: the model's re-scoring head, shared (its parameters are the model's).
        self.mask_scorer = mask_scorer
        self.maskiou_discard_area = maskiou_discard_area

    @property
    def loss_names(self) -> Tuple[str, ...]:
        """Names of the terms :meth:`forward` returns, in order."""
        names = LOSS_NAMES if self.context else LOSS_NAMES[:-1]
        return names + (('loss_maskiou',) if self.mask_scorer is not None else ())

    def forward(self, outputs: Dict[str, Tensor], targets: Sequence[dict]) -> Dict[str, Tensor]:
        """Compute the loss terms.

        Args:
            outputs: the model's training-mode outputs: ``loc [N, P, 4]``, ``conf [N, P, K+1]``,
                ``mask_coef [N, P, M]``, ``proto [N, Hp, Wp, M]``, ``priors [P, 4]``,
                ``segm [N, K, H3, W3]``.
            targets: ``N`` dicts with ``boxes [G, 4]`` relative x1y1x2y2, ``labels int64[G]``
                0-based, ``masks [G, S, S]`` binary at input resolution and optionally
                ``crowd_boxes [C, 4]``.

        Returns:
            ``{name: scalar tensor}`` for the terms of :data:`LOSS_NAMES` that are enabled.
        """
        loc = outputs['loc'].float()
        conf = outputs['conf'].float()
        coefficients = outputs['mask_coef'].float()
        proto = outputs['proto'].float()
        priors = outputs['priors'].float()
        batch, num_priors = conf.shape[:2]
        if len(targets) != batch:
            raise ValueError(f'{batch} images in the outputs but {len(targets)} targets')
        device = conf.device
        targets = [self._check_target(target, index, device)
                   for index, target in enumerate(targets)]

        matches = [match_priors(t['boxes'], t['labels'], priors, crowd_boxes=t['crowd_boxes'],
                                pos_threshold=self.pos_threshold,
                                neg_threshold=self.neg_threshold,
                                crowd_threshold=self.crowd_threshold) for t in targets]
        conf_t = torch.stack([m.labels for m in matches])  # (N, P)
        loc_t = torch.stack([m.offsets for m in matches])  # (N, P, 4)
        gt_index = torch.stack([m.gt_index for m in matches])  # (N, P)
        positive = conf_t > 0  # (N, P)
        num_pos = positive.sum().clamp(min=1).float()

        proto_size = proto.shape[1:3]
        proto_masks = [downsample_masks(t['masks'], proto_size) for t in targets]

        maskiou_samples = [] if self.mask_scorer is not None else None
        losses = {
            'loss_box': F.smooth_l1_loss(loc[positive], loc_t[positive], reduction='sum')
            / num_pos,
            'loss_conf': self._ohem_conf_loss(conf, conf_t, positive) / num_pos,
            'loss_mask': self._mask_loss(proto, coefficients, positive, gt_index, targets,
                                         proto_masks, maskiou_samples) / num_pos,
            'loss_semantic': self._semantic_loss(outputs['segm'].float(), targets),
        }
        if self.context:
            losses['loss_context'] = contextual_loss(
                proto, proto_masks, num_anchors=self.context_samples,
                bandwidth=self.context_bandwidth, neighbourhood=self.context_neighbourhood)
        if maskiou_samples is not None:
            losses['loss_maskiou'] = self._maskiou_loss(maskiou_samples, proto) / num_pos
        return losses

    @staticmethod
    def _check_target(target: dict, index: int, device: torch.device) -> dict:
        """Validate one image's target and move it to ``device``."""
        boxes, labels, masks = target['boxes'], target['labels'], target['masks']
        count = boxes.shape[0]
        if boxes.shape != (count, 4) or labels.shape != (count,) or masks.shape[0] != count:
            raise ValueError(f'target {index}: expected boxes [G, 4], labels [G], masks [G, S, S]'
                             f'; got {tuple(boxes.shape)}, {tuple(labels.shape)}, '
                             f'{tuple(masks.shape)}')
        crowd = target.get('crowd_boxes')
        if crowd is None:
            crowd = boxes.new_zeros((0, 4))
        return {'boxes': boxes.to(device, torch.float32), 'labels': labels.to(device),
                'masks': masks.to(device), 'crowd_boxes': crowd.to(device, torch.float32)}

    def _ohem_conf_loss(self, conf: Tensor, conf_t: Tensor, positive: Tensor) -> Tensor:
        """Cross-entropy over positives and the hardest ``negpos_ratio``x negatives per image."""
        batch, num_priors, num_logits = conf.shape
        with torch.no_grad():
            # (N, P, K+1) -> (N, P): how strongly each prior is *not* background
            hardness = torch.logsumexp(conf, dim=2) - conf[:, :, 0]
            hardness[positive | (conf_t < 0)] = 0.0
            order = hardness.sort(dim=1, descending=True, stable=True).indices  # (N, P)
            rank = order.argsort(dim=1)  # (N, P): rank of each prior by hardness
            num_neg = (self.negpos_ratio * positive.sum(dim=1, keepdim=True)).clamp(
                max=num_priors - 1)  # (N, 1)
            negative = (rank < num_neg) & ~positive & (conf_t >= 0)  # (N, P)
        selected = positive | negative
        return F.cross_entropy(conf[selected], conf_t[selected], reduction='sum')

    def _mask_loss(self, proto: Tensor, coefficients: Tensor, positive: Tensor,
                   gt_index: Tensor, targets: List[dict], proto_masks: List[Tensor],
                   maskiou_samples: Optional[list] = None) -> Tensor:
        """Sum over images of the area-normalised, GT-box-cropped mask BCE of positive priors.

        With a ``maskiou_samples`` list, each image's (cropped soft masks ``[D, Hp, Wp]``, GT
        masks ``[D, Hp, Wp]``, labels ``[D]``) is appended to it for the mask-IoU term.
        """
        _, height, width, _ = proto.shape
        total = proto.sum() * 0.0  # keeps the prototypes in the graph when nothing is positive
        for image in range(proto.shape[0]):
            priors = positive[image].nonzero().squeeze(1)  # (D,)
            if priors.numel() == 0:
                continue
            matched = gt_index[image, priors]  # (D,)
            scale = 1.0
            if priors.numel() > self.masks_to_train:
                scale = priors.numel() / self.masks_to_train
                keep = torch.randperm(priors.numel())[:self.masks_to_train].to(priors.device)
                priors, matched = priors[keep], matched[keep]
            boxes = targets[image]['boxes'][matched]  # (D, 4)
            mask_t = proto_masks[image][matched].permute(1, 2, 0)  # (D, Hp, Wp) -> (Hp, Wp, D)
            # (Hp, Wp, M) @ (M, D) -> (Hp, Wp, D)
            pred = torch.sigmoid(proto[image] @ coefficients[image, priors].t())
            pred = crop_to_boxes(pred, boxes)
            if maskiou_samples is not None:  # (Hp, Wp, D) -> (D, Hp, Wp)
                maskiou_samples.append((pred.permute(2, 0, 1), mask_t.permute(2, 0, 1),
                                        targets[image]['labels'][matched]))
            if not bool(torch.isfinite(pred).all()):
                # binary_cross_entropy asserts on NaN (a device-side abort on CUDA); return NaN
                # instead, so that the training loop's finiteness guard reports the loss terms.
                return total + float('nan')
            bce = F.binary_cross_entropy(pred.clamp(0.0, 1.0), mask_t, reduction='none')
            # Box area in prototype pixels; degenerate boxes (which upstream's augmentation
            # removes) are clamped to one pixel instead of dividing by zero.
            area = ((boxes[:, 2] - boxes[:, 0]) * width * (boxes[:, 3] - boxes[:, 1])
                    * height).clamp(min=1.0)
            total = total + (bce.sum(dim=(0, 1)) / area).sum() * scale
        return total

    def _maskiou_loss(self, samples: List[Tuple[Tensor, Tensor, Tensor]],
                      proto: Tensor) -> Tensor:
        """Mask-IoU term over the masks :meth:`_mask_loss` collected, unnormalised."""
        if not samples:  # still run the scorer, so its parameters get (zero) gradients
            empty = proto.new_zeros((0, *proto.shape[1:3]))
            samples = [(empty, empty, torch.zeros(0, dtype=torch.int64, device=proto.device))]
        pred, gt, labels = (torch.cat(parts) for parts in zip(*samples))  # (sum D, ...)
        return maskiou_loss(self.mask_scorer, pred, gt, labels,
                            discard_area=self.maskiou_discard_area)

    @staticmethod
    def _semantic_loss(segm: Tensor, targets: List[dict]) -> Tensor:
        """BCE-with-logits against per-class union masks, / (H3 * W3) / N."""
        batch, num_classes, height, width = segm.shape
        total = segm.sum() * 0.0
        for image in range(batch):
            masks = downsample_masks(targets[image]['masks'], (height, width))  # (G, H3, W3)
            labels = targets[image]['labels']
            if labels.numel() and int(labels.max()) >= num_classes:
                raise ValueError(f'target {image}: label {int(labels.max())} but the model has '
                                 f'{num_classes} classes')
            # (K, G) @ (G, H3*W3): per-class union of the 0/1 masks (sum clamped to 1 = max)
            one_hot = F.one_hot(labels, num_classes).t().float()
            semantic_t = (one_hot @ masks.reshape(masks.shape[0], height * width)).clamp(max=1.0)
            semantic_t = semantic_t.reshape(num_classes, height, width)
            total = total + F.binary_cross_entropy_with_logits(segm[image], semantic_t,
                                                               reduction='sum')
        return total / (height * width) / batch


def build_criterion(config: Optional[LossConfig] = None, *,
                    mask_scorer: Optional[nn.Module] = None) -> YolactCriterion:
    """Build the criterion a :class:`LossConfig` describes (context only if its weight > 0).

    ``mask_scorer``: a YOLACT++ model's ``maskiou_net`` (``model.maskiou_net``; ``None`` for
    YOLACT), trained by ``loss_maskiou`` unless its weight is 0.
    """
    config = config or LossConfig()
    if config.weights.maskiou <= 0:
        mask_scorer = None
    return YolactCriterion(
        pos_threshold=config.pos_threshold, neg_threshold=config.neg_threshold,
        crowd_threshold=config.crowd_threshold, negpos_ratio=config.negpos_ratio,
        masks_to_train=config.masks_to_train, context=config.weights.context > 0,
        context_samples=config.context_samples, context_bandwidth=config.context_bandwidth,
        context_neighbourhood=config.context_neighbourhood, mask_scorer=mask_scorer,
        maskiou_discard_area=config.maskiou_discard_area)
