"""Channel attention: structure, identity at initialisation, and official-weight fine-tuning."""

import numpy as np
import pytest
import torch

from yolact_ros.checkpoint import load_model
from yolact_ros.modeling import ChannelAttention


def test_attention_starts_as_identity_and_learns_a_gate():
    torch.manual_seed(0)
    attention = ChannelAttention(32, reduction=4)
    features = torch.randn(2, 32, 5, 7)
    torch.testing.assert_close(attention(features), features)
    loss = attention(features).square().mean()
    loss.backward()
    assert attention.avg_mlp[2].weight.grad.abs().sum() > 0
    assert attention.max_mlp[2].weight.grad.abs().sum() > 0


def test_separate_and_shared_mlps_have_the_described_structure():
    separate = ChannelAttention(64, reduction=16)
    shared = ChannelAttention(64, reduction=16, shared_mlp=True)
    assert separate.avg_mlp[0].out_channels == 4  # C / r
    assert shared.max_mlp is None
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(separate) == 2 * count(shared)


def test_gate_uses_both_average_and_max_pooling():
    attention = ChannelAttention(2, reduction=1)
    with torch.no_grad():
        for mlp in (attention.avg_mlp, attention.max_mlp):
            mlp[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            mlp[0].bias.zero_()
            mlp[2].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            mlp[2].bias.zero_()
    features = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])  # avg (2, 2), max (3, 2)
    expected_gate = 2 * torch.sigmoid(torch.tensor([2.0 + 3.0, 2.0 + 2.0]))
    torch.testing.assert_close(attention(features), features * expected_gate.view(1, 2, 1, 1))


def test_attention_keys_never_collide_with_upstream_keys(reference_dir):
    import json

    from yolact_ros.checkpoint import upstream_to_project_key
    from yolact_ros.config import get_config
    from yolact_ros.modeling import build_model

    upstream = {upstream_to_project_key(name) for name, _, _ in
                json.loads((reference_dir / 'yolact_resnet50_keys.json').read_text())}
    model = build_model(get_config('yolact_resnet50').with_attention())
    attention_keys = {k for k in model.state_dict() if 'attention' in k}
    assert len(attention_keys) == 4 * 8  # four stages, two MLPs of two convs (weight, bias)
    assert not attention_keys & upstream
    assert set(model.state_dict()) - attention_keys == upstream


@pytest.mark.parametrize('shared_mlp', [False, True])
def test_official_weights_with_attention_give_the_official_outputs(reference_dir, shared_mlp):
    reference = np.load(reference_dir / 'yolact_resnet50_ref.npz')
    path = reference_dir / 'yolact_resnet50_ref_fp16.pth'
    plain, config = load_model(path)
    with_attention, attention_config = load_model(
        path, config.with_attention(shared_mlp=shared_mlp))
    assert attention_config.attention.enabled
    assert with_attention.backbone.stage_attention is not None
    inputs = torch.from_numpy(reference['input'])
    with torch.no_grad():
        expected, actual = plain(inputs), with_attention(inputs)
    for key in ('loc', 'conf', 'mask_coef', 'proto'):
        torch.testing.assert_close(actual[key], expected[key], atol=0, rtol=0)
