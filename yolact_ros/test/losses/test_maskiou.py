"""YOLACT++'s mask-IoU loss: targets, discard rule and SmoothL1 by hand, then on the network."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from yolact_ros.config import get_config
from yolact_ros.losses import build_criterion, LossConfig, LossWeights, weighted_total
from yolact_ros.losses.maskiou import binary_mask_iou, maskiou_loss
from yolact_ros.modeling import build_model


def constant_scorer(per_class):
    """Build a scorer predicting the same IoU for every mask: ``per_class[k]`` for class k."""
    scorer = nn.Sequential(nn.Conv2d(1, len(per_class), 1), nn.AdaptiveMaxPool2d(1),
                           nn.Flatten())
    with torch.no_grad():
        scorer[0].weight.zero_()
        scorer[0].bias.copy_(torch.tensor(per_class))
    return scorer


def test_iou_target_binarises_the_prediction_at_half():
    pred = torch.full((1, 4, 4), 0.3)
    pred[0, :2, :2] = 0.7  # 4 pixels above 0.5
    gt = torch.zeros(1, 4, 4)
    gt[0, :2, :] = 1.0  # 8 pixels, containing the prediction
    torch.testing.assert_close(binary_mask_iou(pred, gt), torch.tensor([0.5]))


def test_loss_is_smooth_l1_at_the_gt_class_and_small_masks_are_discarded():
    pred = torch.zeros(3, 8, 8)
    pred[:, :4, :4] = 0.9  # 16 pixels
    gt = torch.zeros(3, 8, 8)
    gt[0, :4, :8] = 1.0  # 32 pixels: IoU 0.5, kept
    gt[1, :5, :5] = 1.0  # 25 pixels: discarded (upstream keeps areas > 5 * 5 only)
    gt[2, :4, :4] = 1.0  # 16 pixels: discarded
    labels = torch.tensor([1, 0, 1])
    scorer = constant_scorer([0.0, 2.0])
    # Predicted 2.0 at class 1 vs target 0.5: SmoothL1(1.5) = 1.5 - 0.5 = 1.0.
    loss = maskiou_loss(scorer, pred, gt, labels)
    assert loss.item() == pytest.approx(1.0)
    # Keeping all: + class 0 predicts 0 for IoU 16/25 (0.5 * 0.64 ** 2) + class 1 predicts 2.0
    # for IoU 1 (SmoothL1(1) = 0.5).
    everything = maskiou_loss(scorer, pred, gt, labels, discard_area=0)
    assert everything.item() == pytest.approx(1.0 + 0.5 * 0.64 ** 2 + 0.5)


def test_gradients_reach_the_masks_and_every_scorer_parameter():
    torch.manual_seed(0)
    scorer = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    pred = torch.rand(2, 8, 8, requires_grad=True)
    gt = torch.zeros(2, 8, 8)
    gt[:, 1:7, 1:7] = 1.0
    maskiou_loss(scorer, pred, gt, torch.tensor([0, 1])).backward()
    assert pred.grad.abs().sum() > 0  # not detached, as upstream
    scorer.zero_grad()
    nothing = maskiou_loss(scorer, pred.detach(), torch.zeros(2, 8, 8), torch.tensor([0, 1]))
    nothing.backward()
    assert nothing.item() == 0.0
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in scorer.parameters())
    with pytest.raises(ValueError, match=r'got \(2, 8, 8\), \(2, 8, 8\), \(3,\)'):
        maskiou_loss(scorer, pred, gt, torch.tensor([0, 1, 1]))


def test_criterion_adds_loss_maskiou_only_with_a_scorer():
    outputs = {'loc': torch.zeros(1, 1, 4), 'conf': torch.zeros(1, 1, 3),
               'mask_coef': torch.full((1, 1, 1), 10.0), 'proto': torch.ones(1, 8, 8, 1),
               'priors': torch.tensor([[0.25, 0.25, 0.5, 0.5]]),
               'segm': torch.zeros(1, 2, 2, 2)}
    masks = torch.zeros(1, 16, 16, dtype=torch.uint8)
    masks[0, :8, :8] = 1  # the top-left quarter: 16 pixels at prototype size
    target = {'boxes': torch.tensor([[0.0, 0.0, 0.5, 0.5]]), 'labels': torch.tensor([1]),
              'masks': masks}
    scorer = constant_scorer([0.0, 0.25])
    config = LossConfig(weights=LossWeights(context=0.0), maskiou_discard_area=0)
    criterion = build_criterion(config, mask_scorer=scorer)
    assert criterion.loss_names == ('loss_box', 'loss_conf', 'loss_mask', 'loss_semantic',
                                    'loss_maskiou')
    losses = criterion(outputs, [target])
    assert list(losses) == list(criterion.loss_names)
    # The cropped mask (sigmoid(10) inside the box + 1 px) vs the 4x4 GT: IoU 16/25; the
    # scorer says 0.25 for class 1; one positive prior.
    expected = 0.5 * (16 / 25 - 0.25) ** 2
    assert losses['loss_maskiou'].item() == pytest.approx(expected, rel=1e-5)
    assert 'loss_maskiou' not in build_criterion(config)(outputs, [target])
    off = replace(config, weights=LossWeights(context=0.0, maskiou=0.0))
    assert 'loss_maskiou' not in build_criterion(off, mask_scorer=scorer)(outputs, [target])


def test_plus_network_trains_its_rescoring_head(tiny_config):
    plus = get_config('yolact_plus_resnet50')
    config = replace(tiny_config, input_size=256, deformable_layers=((), (0,), (), ()),
                     anchor_scale_factors=plus.anchor_scale_factors, square_anchors=False,
                     mask_rescoring=True)
    torch.manual_seed(0)
    model = build_model(config).train()
    masks = torch.zeros(1, 256, 256, dtype=torch.uint8)
    masks[0, 40:200, 60:180] = 1
    target = {'boxes': torch.tensor([[60.0, 40.0, 180.0, 200.0]]) / 256,
              'labels': torch.tensor([2]), 'masks': masks}
    criterion = build_criterion(mask_scorer=model.maskiou_net)
    losses = criterion(model(torch.randn(1, 3, 256, 256)), [target])
    assert torch.isfinite(losses['loss_maskiou']) and losses['loss_maskiou'].item() > 0
    weighted_total(losses, LossWeights()).backward()
    for name in ('maskiou_net.layers.0.weight', 'maskiou_net.layers.10.bias',
                 'backbone.layer2.0.conv2.conv_offset_mask.weight'):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
