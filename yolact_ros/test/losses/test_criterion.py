"""YolactCriterion: each term against a hand-computed case, then on the real network."""

from dataclasses import replace
import math

import pytest
import torch

from yolact_ros.losses import (build_criterion, LossConfig, LossWeights, weighted_total,
                               YolactCriterion)
from yolact_ros.losses.criterion import downsample_masks
from yolact_ros.losses.matching import match_priors
from yolact_ros.modeling import build_model

# Six non-overlapping priors tiling the image (2 rows x 3 columns); the object is tile 0.
TILES = torch.tensor([[cx, cy, 1 / 3, 0.5] for cy in (0.25, 0.75) for cx in (1 / 6, 0.5, 5 / 6)])
GT_BOX = torch.tensor([[0.0, 0.0, 1 / 3, 0.5]])


def _target(input_size: int = 12) -> dict:
    masks = torch.zeros(1, input_size, input_size, dtype=torch.uint8)
    masks[0, :input_size // 2, :input_size // 3] = 1
    return {'boxes': GT_BOX.clone(), 'labels': torch.tensor([0]), 'masks': masks}


def _outputs() -> dict:
    """Zero outputs for one image: K = 1 class, M = 1 prototype of 4x4, semantic map 2x2."""
    return {'loc': torch.zeros(1, 6, 4), 'conf': torch.zeros(1, 6, 2),
            'mask_coef': torch.zeros(1, 6, 1), 'proto': torch.zeros(1, 4, 4, 1),
            'priors': TILES.clone(), 'segm': torch.zeros(1, 1, 2, 2)}


def test_box_loss_is_zero_at_the_target_and_smooth_l1_beyond():
    criterion = YolactCriterion(context=False)
    outputs = _outputs()
    offsets = match_priors(GT_BOX, torch.tensor([0]), TILES).offsets
    outputs['loc'] = offsets[None].clone()
    assert criterion(outputs, [_target()])['loss_box'].item() == pytest.approx(0.0, abs=1e-6)
    outputs['loc'][0, 0] += 1.0  # SmoothL1(1) = 0.5 on each of 4 coordinates, 1 positive
    assert criterion(outputs, [_target()])['loss_box'].item() == pytest.approx(2.0, abs=1e-6)


def test_ohem_keeps_the_three_hardest_negatives_by_hand():
    # Negatives' logits (background, object) = (0, x): hardness log(1 + e^x) grows with x, so
    # x = 3, 2, 1 are kept and 0, -1 dropped. CE(target 0) = log(1 + e^x); the positive has
    # logits (0, 0): CE = log 2. Sum / 1 positive:
    # 3.0485874 + 2.1269280 + 1.3132617 + 0.6931472 = 7.1819242
    outputs = _outputs()
    outputs['conf'][0, 1:, 1] = torch.tensor([0.0, 3.0, -1.0, 1.0, 2.0])
    loss = YolactCriterion(context=False)(outputs, [_target()])['loss_conf']
    assert loss.item() == pytest.approx(7.1819242, abs=1e-5)
    # Neutral priors are never mined: with ratio 10 only the 5 background priors are used.
    everything = YolactCriterion(context=False, negpos_ratio=10)(outputs, [_target()])
    expected = sum(math.log(1 + math.exp(x)) for x in (0, 3, -1, 1, 2)) + math.log(2)
    assert everything['loss_conf'].item() == pytest.approx(expected, abs=1e-5)


def test_mask_loss_is_cropped_to_the_gt_box_and_area_normalised_by_hand():
    # GT mask: rows < 6, columns < 4 of 12x12. Downsampled to 4x4 (bilinear samples input
    # pixel 3i + 1) it is (r0, c0) and (r1, c0). The GT box (0, 0, 1/3, 1/2) is 4/3 x 2 = 8/3
    # proto pixels; cropped with 1 px padding to columns 0..2, rows 0..2 = 9 pixels.
    target = _target()
    small = downsample_masks(target['masks'], (4, 4))
    assert small[0].nonzero().tolist() == [[0, 0], [1, 0]]
    outputs = _outputs()
    outputs['proto'] = (small[0] * 4.0 - 2.0)[None, :, :, None]  # +2 on the mask, -2 elsewhere
    outputs['mask_coef'][:] = 1.0
    # Right sign: each of the 9 pixels costs log(1 + e^-2): 9 * 0.1269280 / (8/3) = 0.4283820
    right = YolactCriterion(context=False)(outputs, [target])['loss_mask']
    assert right.item() == pytest.approx(0.4283820, abs=1e-5)
    outputs['mask_coef'][:] = -1.0  # wrong sign: 9 * log(1 + e^2) / (8/3) = 7.1783820
    wrong = YolactCriterion(context=False)(outputs, [target])['loss_mask']
    assert wrong.item() == pytest.approx(7.1783820, abs=1e-5)


def test_mask_cap_rescales_to_the_uncapped_value():
    # Ten identical priors on the object: all positive, each with the same mask term.
    priors = TILES[:1].repeat(10, 1)
    outputs = _outputs()
    outputs.update(loc=torch.zeros(1, 10, 4), conf=torch.zeros(1, 10, 2),
                   mask_coef=torch.zeros(1, 10, 1), priors=priors)
    uncapped = YolactCriterion(context=False)(outputs, [_target()])['loss_mask']
    capped = YolactCriterion(context=False, masks_to_train=3)(outputs, [_target()])['loss_mask']
    # Zero prototypes: sigmoid 0.5 on 9 pixels, 9 log 2 / (8/3) = 2.3393717 per positive.
    assert uncapped.item() == pytest.approx(2.3393717, abs=1e-5)
    assert capped.item() == pytest.approx(uncapped.item(), abs=1e-5)


def test_semantic_loss_by_hand():
    outputs = _outputs()  # zero logits: log 2 per pixel and class; / (2 * 2) / 1 image
    loss = YolactCriterion(context=False)(outputs, [_target()])['loss_semantic']
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    # Logits of +-10 agreeing with the 2x2 downsampled mask (only the top-left pixel):
    outputs['segm'] = torch.tensor([[[[10.0, -10.0], [-10.0, -10.0]]]])
    loss = YolactCriterion(context=False)(outputs, [_target()])['loss_semantic']
    assert loss.item() == pytest.approx(math.log1p(math.exp(-10)), abs=1e-6)  # float32


def test_empty_targets_give_finite_zeros_for_anchor_terms():
    empty = {'boxes': torch.zeros(0, 4), 'labels': torch.zeros(0, dtype=torch.int64),
             'masks': torch.zeros(0, 12, 12, dtype=torch.uint8)}
    losses = YolactCriterion()(_outputs(), [empty])
    assert losses['loss_box'].item() == 0.0
    assert losses['loss_conf'].item() == 0.0  # no positives, so no mined negatives
    assert losses['loss_mask'].item() == 0.0
    assert losses['loss_context'].item() == 0.0
    assert losses['loss_semantic'].item() == pytest.approx(math.log(2), abs=1e-6)


def test_weights_and_config():
    weights = LossWeights()
    assert weights.as_dict() == {'loss_box': 1.5, 'loss_conf': 1.0, 'loss_mask': 6.125,
                                 'loss_semantic': 1.0, 'loss_context': 0.1,
                                 'loss_maskiou': 25.0}
    losses = {'loss_box': torch.tensor(2.0), 'loss_mask': torch.tensor(1.0)}
    assert weighted_total(losses, weights).item() == pytest.approx(3.0 + 6.125)
    with pytest.raises(ValueError, match=r"no weight for loss terms \['loss_bogus'\]"):
        weighted_total({'loss_bogus': torch.tensor(1.0)}, weights)
    with pytest.raises(ValueError, match='loss weight mask must be >= 0, got -1'):
        LossWeights(mask=-1)
    off = build_criterion(LossConfig(weights=LossWeights(context=0.0)))
    assert 'loss_context' not in off(_outputs(), [_target()])


@pytest.mark.parametrize('input_size', [128, 160])
def test_network_forward_backward_with_objects_and_empty_targets(tiny_config, input_size):
    config = replace(tiny_config, input_size=input_size)
    torch.manual_seed(0)
    model = build_model(config).train()
    images = torch.randn(2, 3, input_size, input_size)
    masks = torch.zeros(2, input_size, input_size, dtype=torch.uint8)
    masks[0, 10:60, 20:90] = 1
    masks[1, 60:120, 5:50] = 1
    size = float(input_size)
    full = {'boxes': torch.tensor([[20, 10, 90, 60], [5, 60, 50, 120]]) / size,
            'labels': torch.tensor([0, 2]), 'masks': masks}
    empty = {'boxes': torch.zeros(0, 4), 'labels': torch.zeros(0, dtype=torch.int64),
             'masks': torch.zeros(0, input_size, input_size, dtype=torch.uint8)}
    losses = build_criterion()(model(images), [full, empty])
    assert set(losses) == {'loss_box', 'loss_conf', 'loss_mask', 'loss_semantic',
                           'loss_context'}
    assert all(torch.isfinite(value) and value.item() > 0 for value in losses.values())
    weighted_total(losses, LossWeights()).backward()
    for name in ('proto_net.10.weight', 'prediction_head.mask_layer.weight',
                 'prediction_head.conf_layer.weight', 'semantic_head.weight',
                 'backbone.conv1.weight'):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
