"""YOLACT++, DarkNet-53 and im700: deformable convs, re-scoring, anchors, transform, configs."""

from dataclasses import replace
import json

import numpy as np
import pytest
from test_checkpoint import random_upstream_state_dict
import torch
from torch import nn
import torch.nn.functional as F

from yolact_ros.checkpoint import load_model, upstream_to_project_key
from yolact_ros.config import get_config, ModelConfig, PostprocessConfig
from yolact_ros.modeling import build_model
from yolact_ros.modeling.darknet import DarkNetBackbone
from yolact_ros.modeling.deformable import DeformableConv2d
from yolact_ros.modeling.heads import MaskIoUNet
from yolact_ros.ops import make_priors
from yolact_ros.postprocess import paste_masks, Postprocessor
from yolact_ros.preprocess import Preprocessor


@pytest.fixture(scope='module')
def tiny_plus_config(tiny_config):
    """ResNet-18 YOLACT++ at the smallest input the re-scoring head accepts."""
    plus = get_config('yolact_plus_resnet50')
    return replace(tiny_config, input_size=256, deformable_layers=((), (0, 1), (1,), (0,)),
                   anchor_scale_factors=plus.anchor_scale_factors, square_anchors=False,
                   mask_rescoring=True)


def test_deformable_conv_starts_as_half_a_plain_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
    deformable = DeformableConv2d.from_conv(conv)
    with torch.no_grad():
        deformable.bias.copy_(torch.arange(6.0))
    features = torch.randn(2, 4, 9, 7)
    # Zero offsets, modulation sigmoid(0) = 0.5 on every tap, then the bias.
    expected = 0.5 * conv(features) + torch.arange(6.0).view(1, 6, 1, 1)
    torch.testing.assert_close(deformable(features), expected)
    assert deformable(features).shape == (2, 6, 5, 4)


def test_deformable_offsets_are_dy_dx_per_tap():
    deformable = DeformableConv2d(1, 1, 3)
    with torch.no_grad():
        deformable.weight.zero_()
        deformable.weight[0, 0, 1, 1] = 1.0  # centre tap only: output = sample at the offset
        offset_mask = torch.zeros(27)
        offset_mask[2 * 4 + 1] = 1.0  # tap 4 (centre): dy = 0, dx = +1
        offset_mask[18:] = 50.0  # modulation sigmoid(50) = 1
        deformable.conv_offset_mask.bias.copy_(offset_mask)
    features = torch.arange(12.0).view(1, 1, 3, 4)
    shifted = torch.tensor([[1.0, 2.0, 3.0, 0.0], [5.0, 6.0, 7.0, 0.0], [9.0, 10.0, 11.0, 0.0]])
    torch.testing.assert_close(deformable(features)[0, 0], shifted)


def test_deformable_conv_keys_are_upstreams():
    deformable = DeformableConv2d.from_conv(nn.Conv2d(8, 8, 3, padding=1, bias=False))
    shapes = {key: tuple(value.shape) for key, value in deformable.state_dict().items()}
    assert shapes == {'weight': (8, 8, 3, 3), 'bias': (8,),
                      'conv_offset_mask.weight': (27, 8, 3, 3), 'conv_offset_mask.bias': (27,)}
    assert deformable.conv_offset_mask.weight.abs().sum() == 0


@pytest.mark.parametrize('name, expected', [
    ('yolact_plus_resnet50', ['layer2.0', 'layer2.1', 'layer2.2', 'layer2.3', 'layer3.0',
                              'layer3.1', 'layer3.2', 'layer3.3', 'layer3.4', 'layer3.5',
                              'layer4.0', 'layer4.1', 'layer4.2']),
    ('yolact_plus_base', ['layer2.0', 'layer2.3'] + [f'layer3.{i}' for i in range(0, 23, 3)]
     + ['layer4.0']),
])
def test_plus_configs_put_deformable_convs_in_upstreams_blocks(name, expected):
    model = build_model(get_config(name))
    deformable = [key[:-len('.conv2')] for key, module in model.backbone.named_modules()
                  if isinstance(module, DeformableConv2d)]
    assert deformable == expected
    assert model.prediction_head.conf_layer.out_channels == 9 * 81
    assert model.prediction_head.bbox_layer.out_channels == 36
    assert model.prediction_head.mask_layer.out_channels == 9 * 32
    assert isinstance(model.maskiou_net, MaskIoUNet)


def test_priors_with_several_scales_are_scale_major_rectangles():
    priors = make_priors([(1, 1)], [24], [1.0, 0.5], 48, square=False, scale_factors=(1.0, 2.0))
    half = 0.5 ** 0.5
    expected = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, half / 2, 1 / (2 * half)],
                             [0.5, 0.5, 1.0, 1.0], [0.5, 0.5, half, 1 / half]])
    torch.testing.assert_close(priors, expected)


def test_maskiou_net_scores_every_class_with_upstreams_layout():
    torch.manual_seed(0)
    net = MaskIoUNet(80)
    assert sorted({key.split('.')[1] for key in net.state_dict()}, key=int) == \
        ['0', '2', '4', '6', '8', '10']
    scores = net(torch.rand(3, 1, 138, 138))
    assert scores.shape == (3, 80)
    assert (scores >= 0).all()  # ReLU after the last conv, as upstream
    assert net(torch.rand(0, 1, 138, 138)).shape == (0, 80)


def test_mask_score_is_box_score_times_predicted_iou_of_its_class():
    scorer = nn.Sequential(nn.Conv2d(1, 3, 1), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    with torch.no_grad():
        scorer[0].weight.zero_()
        scorer[0].bias.copy_(torch.tensor([0.5, 0.25, 2.0]))  # predicted IoU per class
    detections = {'box': torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]]),
                  'coef': torch.tensor([[4.0], [4.0]]), 'class': torch.tensor([1, 2]),
                  'score': torch.tensor([0.8, 0.4]), 'proto': torch.ones(8, 8, 1)}
    result = Postprocessor(PostprocessConfig(), mask_scorer=scorer).to_image(detections, (16, 16))
    torch.testing.assert_close(result['mask_iou'], torch.tensor([0.25, 2.0]))
    torch.testing.assert_close(result['mask_scores'], torch.tensor([0.2, 0.8]))  # not clamped
    torch.testing.assert_close(result['scores'], torch.tensor([0.8, 0.4]))  # box scores kept
    plain = Postprocessor(PostprocessConfig()).to_image(detections, (16, 16))
    assert 'mask_scores' not in plain
    assert torch.equal(paste_masks(plain['mask_windows'], 2, (16, 16)),
                       paste_masks(result['mask_windows'], 2, (16, 16)))
    empty = {key: value[:0] for key, value in detections.items() if key != 'proto'}
    empty['proto'] = detections['proto']
    result = Postprocessor(PostprocessConfig(), mask_scorer=scorer).to_image(empty, (16, 16))
    assert result['mask_scores'].shape == (0,)


def test_darknet_transform_is_rgb_over_255():
    config = get_config('yolact_darknet53')
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    preprocessor = Preprocessor(64, config.pixel_mean_bgr, config.pixel_std_bgr,
                                device=torch.device('cpu'))
    ours = preprocessor([image])[0]  # same size: the resize is the identity
    expected = torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    assert ours.max() <= 1.0


def test_darknet_stages_strides_channels_and_attention_after_each():
    config = get_config('yolact_darknet53').with_attention()
    backbone = DarkNetBackbone(config.attention)
    assert backbone.out_channels == [64, 128, 256, 512, 1024]
    assert len(backbone.stage_attention) == 5
    plain = DarkNetBackbone(get_config('yolact_darknet53').attention)
    plain.load_state_dict(backbone.state_dict(), strict=False)
    backbone.eval()
    plain.eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outputs, reference = backbone(images), plain(images)
    assert [tuple(o.shape[1:]) for o in outputs] == [
        (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (1024, 2, 2)]
    for ours, theirs in zip(outputs, reference):  # attention starts as the identity
        torch.testing.assert_close(ours, theirs)


def test_darknet_and_maskiou_keys_map_from_upstream():
    assert upstream_to_project_key('backbone._preconv.1.running_mean') == \
        'backbone.stem.1.running_mean'
    assert upstream_to_project_key('backbone.layers.4.3.conv2.0.weight') == \
        'backbone.layer5.3.conv2.0.weight'
    assert upstream_to_project_key('maskiou_net.maskiou_net.10.bias') == \
        'maskiou_net.layers.10.bias'
    assert upstream_to_project_key('backbone.layers.1.0.conv2.conv_offset_mask.weight') == \
        'backbone.layer2.0.conv2.conv_offset_mask.weight'


@pytest.mark.parametrize('name', ['yolact_plus_resnet50', 'yolact_plus_base',
                                  'yolact_darknet53', 'yolact_im700'])
def test_configs_round_trip_through_json(name):
    config = get_config(name).with_attention()
    restored = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert set(config.to_dict()) == set(ModelConfig.__dataclass_fields__)


def test_configs_written_before_the_new_fields_still_load():
    values = get_config('yolact_resnet50').to_dict()
    for key in ('anchor_scale_factors', 'deformable_layers', 'mask_rescoring'):
        del values[key]
    assert ModelConfig.from_dict(values) == get_config('yolact_resnet50')


def test_bad_new_settings_are_errors_naming_the_value():
    plus = get_config('yolact_plus_resnet50')
    with pytest.raises(ValueError, match='input_size >= 252.*got input_size 128'):
        replace(plus, input_size=128)
    with pytest.raises(ValueError, match="needs a ResNet backbone.*'darknet53'"):
        replace(get_config('yolact_darknet53'), deformable_layers=((), (0,), (), ()))
    with pytest.raises(ValueError, match='deformable block 6 of stage 1 does not exist'):
        build_model(replace(plus, deformable_layers=((), (6,), (), ())))
    with pytest.raises(ValueError, match='anchor_scale_factors must be positive'):
        replace(plus, anchor_scale_factors=())


def test_tiny_plus_model_trains_and_scores_masks(tiny_plus_config):
    torch.manual_seed(0)
    model = build_model(tiny_plus_config.with_attention()).train()
    outputs = model(torch.randn(1, 3, 256, 256))
    num_priors = 9 * (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2)
    assert outputs['conf'].shape == (1, num_priors, 4)
    assert outputs['proto'].shape == (1, 64, 64, 16)
    soft_masks = torch.sigmoid(outputs['proto'][0] @ outputs['mask_coef'][0, :5].t())
    ious = model.maskiou_net(soft_masks.permute(2, 0, 1)[:, None])  # (Hp, Wp, 5) -> (5, 1, ...)
    loss = (outputs['conf'].logsumexp(-1).mean() + outputs['segm'].mean()
            + F.smooth_l1_loss(ious[:, 0], torch.full((5,), 0.5)))
    loss.backward()
    first = model.backbone.layer2[0].conv2
    assert first.conv_offset_mask.weight.grad.abs().sum() > 0  # offsets learn from zero
    assert model.maskiou_net.layers[0].weight.grad.abs().sum() > 0


def test_every_backbone_name_builds():
    from yolact_ros.config import AttentionConfig, BACKBONES
    from yolact_ros.modeling.backbone import build_backbone, RESNETS

    assert set(BACKBONES) == set(RESNETS) | {'darknet53'}
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        build_backbone('vgg16', AttentionConfig())


def test_official_darknet_weights_load_under_attention(reference_dir, tmp_path):
    state = random_upstream_state_dict(reference_dir / 'yolact_darknet53_keys.json')
    path = tmp_path / 'yolact_darknet53_54_800000.pth'
    torch.save(state, path)
    config = get_config('yolact_darknet53').with_attention()
    model, loaded_config = load_model(path, config)
    assert loaded_config == config
    assert len(model.backbone.stage_attention) == 5
    torch.testing.assert_close(model.state_dict()['backbone.layer5.3.conv2.0.weight'],
                               state['backbone.layers.4.3.conv2.0.weight'])
