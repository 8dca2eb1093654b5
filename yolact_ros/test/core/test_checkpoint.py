"""Loading official and project checkpoints: mapping, strictness, safety."""

import json
import os
import pickle

import pytest
import torch

from yolact_ros.checkpoint import (atomic_write_bytes, CheckpointError,
                                   infer_upstream_config_name, load_model, read_safetensors,
                                   save_checkpoint, upstream_to_project_key)
from yolact_ros.config import get_config
from yolact_ros.modeling import build_model


def random_upstream_state_dict(key_list_path):
    """Make a state dict with exactly the upstream names, shapes and dtypes of a key list."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape, dtype in json.loads(key_list_path.read_text()):
        if dtype == 'int64':
            state[name] = torch.zeros(shape, dtype=torch.int64)
        else:
            state[name] = torch.randn(shape, generator=generator).to(getattr(torch, dtype))
    return state


def test_upstream_keys_map_onto_torchvision_and_project_names():
    assert upstream_to_project_key('backbone.layers.0.2.conv1.weight') == \
        'backbone.layer1.2.conv1.weight'
    assert upstream_to_project_key('prediction_layers.0.conf_layer.bias') == \
        'prediction_head.conf_layer.bias'
    assert upstream_to_project_key('semantic_seg_conv.weight') == 'semantic_head.weight'
    assert upstream_to_project_key('fpn.lat_layers.0.weight') == 'fpn.lat_layers.0.weight'


@pytest.mark.parametrize('key_file, file_name, config_name', [
    ('yolact_resnet50_keys.json', 'yolact_resnet50_54_800000.pth', 'yolact_resnet50'),
    ('yolact_base_keys.json', 'yolact_base_54_800000.pth', 'yolact_base'),
    ('yolact_im700_keys.json', 'yolact_im700_54_800000.pth', 'yolact_im700'),
    ('yolact_darknet53_keys.json', 'yolact_darknet53_54_800000.pth', 'yolact_darknet53'),
    ('yolact_plus_resnet50_keys.json', 'yolact_plus_resnet50_54_800000.pth',
     'yolact_plus_resnet50'),
    ('yolact_plus_base_keys.json', 'yolact_plus_base_54_800000.pth', 'yolact_plus_base'),
])
def test_every_official_key_list_loads_strictly(reference_dir, tmp_path, key_file, file_name,
                                                config_name):
    state = random_upstream_state_dict(reference_dir / key_file)
    path = tmp_path / file_name
    torch.save(state, path)
    model, config = load_model(path)
    assert config.name == config_name
    loaded = model.state_dict()
    for name, value in state.items():
        torch.testing.assert_close(loaded[upstream_to_project_key(name)], value)


@pytest.mark.parametrize('key_file, config_name', [
    ('yolact_base_keys.json', 'yolact_base'),
    ('yolact_resnet50_keys.json', 'yolact_resnet50'),
    ('yolact_darknet53_keys.json', 'yolact_darknet53'),
    ('yolact_plus_resnet50_keys.json', 'yolact_plus_resnet50'),
    ('yolact_plus_base_keys.json', 'yolact_plus_base'),
])
def test_config_is_inferred_from_keys_when_the_file_name_says_nothing(reference_dir, key_file,
                                                                      config_name):
    state = random_upstream_state_dict(reference_dir / key_file)
    assert infer_upstream_config_name('model.pth', state) == config_name


def test_config_inference_fails_clearly_without_backbone_keys():
    with pytest.raises(CheckpointError, match='cannot tell the model config'):
        infer_upstream_config_name('model.pth', {'fpn.lat_layers.0.weight': torch.zeros(1)})


def test_missing_unexpected_and_misshaped_keys_are_named(reference_dir, tmp_path):
    state = random_upstream_state_dict(reference_dir / 'yolact_resnet50_keys.json')
    del state['proto_net.10.bias']
    state['extra.weight'] = torch.zeros(3)
    state['fpn.lat_layers.2.weight'] = torch.zeros(256, 511, 1, 1)
    path = tmp_path / 'yolact_resnet50_broken.pth'
    torch.save(state, path)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert str(path) in message
    assert 'missing keys: proto_net.10.bias' in message
    assert 'unexpected keys: extra.weight' in message
    assert 'fpn.lat_layers.2.weight: file (256, 511, 1, 1) vs model (256, 512, 1, 1)' in message


def test_wrong_config_for_a_checkpoint_is_an_error(reference_dir):
    with pytest.raises(CheckpointError, match='does not fit the model'):
        load_model(reference_dir / 'yolact_resnet50_ref_fp16.pth', 'yolact_base')


def test_missing_and_corrupt_files_give_errors_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match='weights file not found: .*nothing.pth'):
        load_model(tmp_path / 'nothing.pth')
    corrupt = tmp_path / 'corrupt.safetensors'
    corrupt.write_bytes(b'\x10\x00\x00\x00garbage')
    with pytest.raises(CheckpointError, match='cannot read weights file .*corrupt.safetensors'):
        load_model(corrupt)


class _Exploit:

    def __reduce__(self):
        return (print, ('pickled code ran',))


def test_pickled_code_is_never_run(tmp_path, capsys):
    path = tmp_path / 'yolact_resnet50_evil.pth'
    with open(path, 'wb') as stream:
        pickle.dump({'a': _Exploit()}, stream)
    with pytest.raises(CheckpointError, match='cannot read weights file'):
        load_model(path)
    assert 'pickled code ran' not in capsys.readouterr().out


def test_project_checkpoints_carry_their_config_and_round_trip(tmp_path, tiny_config):
    torch.manual_seed(1)
    model = build_model(tiny_config.with_attention())
    path = save_checkpoint(tmp_path / 'model.safetensors', model, tiny_config.with_attention(),
                           metadata={'command': 'yolact train ...'})
    _, metadata = read_safetensors(path)
    assert metadata['command'] == 'yolact train ...'
    loaded, config = load_model(path)
    assert config == tiny_config.with_attention()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    with pytest.raises(CheckpointError, match='holds a yolact_resnet18 model, not yolact_base'):
        load_model(path, 'yolact_base')
    assert not list(tmp_path.glob('.model.safetensors.*'))  # no temporary file left behind


def test_half_checkpoints_load_into_float_models(tmp_path, tiny_config):
    model = build_model(tiny_config)
    path = save_checkpoint(tmp_path / 'half.safetensors', model, tiny_config, half=True)
    loaded, _ = load_model(path)
    weight = loaded.state_dict()['fpn.lat_layers.0.weight']
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, model.state_dict()['fpn.lat_layers.0.weight'].half()
                               .float())


def test_configs_fully_define_the_network_sizes():
    base, im700 = get_config('yolact_base'), get_config('yolact_im700')
    assert im700.anchor_scales == (30, 61, 122, 244, 488)
    assert base.backbone == im700.backbone == 'resnet101'
    model = build_model(im700).eval()
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 700, 700))
    assert outputs['priors'].shape == (30963, 4)
    assert outputs['proto'].shape == (1, 176, 176, 32)


def test_atomic_writes_leave_no_temp_file_and_honour_the_umask(tmp_path):
    target = tmp_path / 'sub' / 'model.safetensors'
    previous = os.umask(0o022)
    try:
        atomic_write_bytes(target, b'first')
        atomic_write_bytes(target, b'second')
    finally:
        os.umask(previous)
    assert target.read_bytes() == b'second'
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    assert [p.name for p in target.parent.iterdir()] == ['model.safetensors']


def test_project_file_lacking_its_attention_keys_is_an_error(tmp_path, tiny_config):
    from safetensors.torch import load_file, save_file

    config = tiny_config.with_attention()
    path = save_checkpoint(tmp_path / 'attention.safetensors', build_model(config), config)
    _, metadata = read_safetensors(path)
    tensors = {k: v for k, v in load_file(str(path)).items()
               if not k.startswith('backbone.stage_attention.')}
    stripped = tmp_path / 'stripped.safetensors'
    save_file(tensors, str(stripped), metadata=metadata)
    with pytest.raises(CheckpointError, match=r'stripped.safetensors does not fit the model: '
                                              r'missing keys: backbone.stage_attention.0'):
        load_model(stripped)
    plain = save_checkpoint(tmp_path / 'plain.safetensors', build_model(tiny_config),
                            tiny_config)
    with pytest.raises(CheckpointError, match='missing keys: backbone.stage_attention'):
        load_model(plain, config)  # asking for attention does not make it up either


def test_upstream_checkpoints_get_identity_attention(tmp_path, tiny_config):
    plain = build_model(tiny_config)
    path = tmp_path / 'yolact_resnet18_upstream.pth'
    torch.save(dict(plain.state_dict()), path)
    model, config = load_model(path, tiny_config.with_attention())
    assert config.attention.enabled and model.backbone.stage_attention is not None
    inputs = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        expected, actual = plain.eval()(inputs), model(inputs)
    torch.testing.assert_close(actual['loc'], expected['loc'])
