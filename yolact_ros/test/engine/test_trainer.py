"""The training function: schedule, exact resume, signals, guards and weight initialisation."""

import csv
from dataclasses import replace
import json
import os
from pathlib import Path
import signal

import pytest
import torch

from yolact_ros.checkpoint import (CheckpointError, load_imagenet_backbone,
                                   load_official_weights, read_safetensors, save_checkpoint)
from yolact_ros.config import get_config
from yolact_ros.engine import load_training_state, train, TrainConfig
from yolact_ros.engine.metrics import MetricsLogger
from yolact_ros.engine.train_config import learning_rate_factor
from yolact_ros.modeling import build_model


def _rows(run_dir: Path, name: str = 'metrics.csv') -> dict:
    """Return ``{iteration: {column: value}}`` from a run's CSV."""
    with open(run_dir / name, newline='') as stream:
        return {int(row['iteration']): {k: float(v) for k, v in row.items()}
                for row in csv.DictReader(stream)}


def _assert_same_rows(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for iteration, row in expected.items():
        for column, value in row.items():
            assert actual[iteration][column] == pytest.approx(value, rel=1e-6, abs=1e-7), (
                iteration, column)


@pytest.fixture(scope='module')
def reference_run(synth_train, synth_val, tmp_path_factory):
    """Run 4 iterations uninterrupted (once per module; other tests compare with it)."""
    from yolact_ros.config import get_config

    torch.set_num_threads(1)
    model = replace(get_config('yolact_resnet18'), input_size=128)
    config = TrainConfig(model=model, data=str(synth_train), val_data=str(synth_val),
                         out_dir=str(tmp_path_factory.mktemp('reference') / 'run'),
                         iterations=4, batch_size=2, lr=4e-3, init='none', checkpoint_every=2,
                         val_every=2, val_max_images=2, workers=0, device='cpu')
    result = train(config, command='yolact train (test)')
    return config, result


def test_learning_rate_schedule_by_hand():
    factor = lambda it: learning_rate_factor(  # noqa: E731
        it, warmup=10, warmup_factor=0.1, steps=(20, 30), gamma=0.1)
    assert [factor(i) for i in (0, 5, 10, 19)] == pytest.approx([0.1, 0.55, 1.0, 1.0])
    assert [factor(i) for i in (20, 29, 30, 99)] == pytest.approx([0.1, 0.1, 0.01, 0.01])


def test_config_defaults_follow_upstream(tiny_config):
    config = TrainConfig(model=tiny_config, data='coco2017')
    assert config.total_iterations == 800_000 and config.warmup == 500
    assert config.step_iterations == (280_000, 600_000, 700_000, 750_000)
    assert config.scaled_lr == pytest.approx(1e-3)
    doubled = replace(config, batch_size=16)
    assert doubled.total_iterations == 400_000 and doubled.scaled_lr == pytest.approx(2e-3)
    short = replace(config, iterations=100)
    assert short.warmup == 10 and short.step_iterations == (35, 75, 88, 94)


def test_config_round_trips_through_json_and_rejects_bad_values(tiny_config):
    config = TrainConfig(model=tiny_config.with_attention(True), data='x', iterations=3,
                         init='official', init_weights='w.pth', clip_grad_norm=10.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown training config fields: \\['bogus'\\]"):
        TrainConfig.from_dict(dict(config.to_dict(), bogus=1))
    with pytest.raises(ValueError, match='init official needs init_weights'):
        TrainConfig(model=tiny_config, data='x', init='official')
    with pytest.raises(ValueError, match='batch_size must be >= 1, got 0'):
        TrainConfig(model=tiny_config, data='x', batch_size=0)
    with pytest.raises(ValueError, match="augment must be one of .* got 'strong'"):
        TrainConfig(model=tiny_config, data='x', augment='strong')


def test_run_writes_weights_metrics_checkpoints_and_curve(reference_run):
    config, result = reference_run
    run_dir = Path(config.out_dir)
    assert result.iteration == 4 and not result.interrupted
    assert sorted(p.name for p in (run_dir / 'checkpoints').iterdir()) == [
        'iter_0000002.pt', 'iter_0000004.pt']
    rows = _rows(run_dir)
    assert sorted(rows) == [1, 2, 3, 4]
    assert set(rows[1]) == {'iteration', 'loss', 'loss_box', 'loss_conf', 'loss_mask',
                            'loss_semantic', 'loss_context', 'lr'}
    # Short run: warm-up 0, steps at 35/75/87.5/93.75 % of 4 = 1, 3, 4, 4; peak 4e-3 * 2 / 8.
    assert [rows[i]['lr'] for i in (1, 2, 3, 4)] == pytest.approx([1e-3, 1e-4, 1e-4, 1e-5])
    assert sorted(_rows(run_dir, 'val.csv')) == [2, 4]
    assert (run_dir / 'loss_curve.png').stat().st_size > 10_000
    tensors, metadata = read_safetensors(run_dir / 'model.safetensors')
    stored = json.loads(metadata['config'])
    assert stored['class_names'][:2] == ['circle', 'square'] and stored['category_ids'][0] == 1
    assert metadata['training_command'] == 'yolact train (test)'
    assert float(metadata['val_mask_AP']) == pytest.approx(result.validation['mask_AP'])
    state = load_training_state(run_dir / 'checkpoints' / 'iter_0000004.pt')
    assert state['iteration'] == 4 and state['world_size'] == 1
    assert state['data'] == {'epoch': 1, 'batch_in_epoch': 0, 'batches_per_epoch': 4,
                             'seed': 0}
    assert set(state['rng'][0]) == {'torch', 'numpy', 'python', 'cuda'}
    torch.testing.assert_close(tensors['proto_net.10.weight'],
                               state['model']['proto_net.10.weight'])


def test_resumed_run_equals_the_uninterrupted_run(reference_run, tmp_path):
    config, _ = reference_run
    checkpoint = Path(config.out_dir) / 'checkpoints' / 'iter_0000002.pt'
    resumed = replace(config, out_dir=str(tmp_path / 'resumed'))
    result = train(resumed, resume=str(checkpoint))
    assert result.iteration == 4
    reference = _rows(Path(config.out_dir))
    _assert_same_rows(_rows(tmp_path / 'resumed'), {i: reference[i] for i in (3, 4)})
    expected, _ = read_safetensors(Path(config.out_dir) / 'model.safetensors')
    actual, _ = read_safetensors(tmp_path / 'resumed' / 'model.safetensors')
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=1e-6, atol=1e-6)


def test_signal_writes_an_interrupt_checkpoint_and_resume_finishes_the_run(reference_run,
                                                                           tmp_path,
                                                                           monkeypatch):
    config, _ = reference_run
    run = replace(config, out_dir=str(tmp_path / 'run'))
    original = MetricsLogger.log_train

    def log_and_interrupt(self, iteration, values):
        original(self, iteration, values)
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)

    # What the process had (Python's handler; SIG_IGN when started in the background by a shell).
    before = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as patch:
        patch.setattr(MetricsLogger, 'log_train', log_and_interrupt)
        result = train(run)
    # The flag is read with the next iteration's loss reduction: stop after iteration 3.
    assert result.interrupted and result.signal_number == signal.SIGINT
    assert result.iteration == 3 and result.weights is None
    assert result.checkpoint == tmp_path / 'run' / 'checkpoints' / 'interrupt_0000003.pt'
    assert signal.getsignal(signal.SIGINT) is before  # restored
    finished = train(run, resume=str(result.checkpoint))  # same run directory
    assert finished.iteration == 4 and finished.weights is not None
    _assert_same_rows(_rows(tmp_path / 'run'), _rows(Path(config.out_dir)))


def test_resume_refuses_changed_settings_and_fresh_runs_refuse_a_used_directory(
        reference_run):
    config, _ = reference_run
    checkpoint = str(Path(config.out_dir) / 'checkpoints' / 'iter_0000002.pt')
    with pytest.raises(ValueError, match=r'cannot resume with different settings: '
                                         r'batch_size \(2 -> 4\)'):
        train(replace(config, batch_size=4), resume=checkpoint)
    with pytest.raises(ValueError, match='already holds a training run; resume it'):
        train(config)


def test_non_finite_loss_stops_and_names_every_term(reference_run, tmp_path, monkeypatch):
    config, _ = reference_run
    monkeypatch.setattr('yolact_ros.engine.session.weighted_total',
                        lambda losses, weights: sum(losses.values()) * float('nan'))
    with pytest.raises(FloatingPointError,
                       match=r'non-finite loss at iteration 1: loss nan, loss_box [0-9.]+, '
                             r'loss_conf [0-9.]+, loss_mask'):
        train(replace(config, out_dir=str(tmp_path / 'nan')))


def test_official_init_keeps_weights_adds_attention_and_refreshes_class_layers(
        tiny_config, tiny_weights):
    target = tiny_config.with_classes(('a', 'b', 'c', 'd'), (1, 2, 3, 4)).with_attention(True)
    torch.manual_seed(1)
    model = build_model(target)
    load_official_weights(model, target, str(tiny_weights))
    source, _ = read_safetensors(tiny_weights)
    state = model.state_dict()
    torch.testing.assert_close(state['backbone.layer3.0.conv1.weight'],
                               source['backbone.layer3.0.conv1.weight'])
    torch.testing.assert_close(state['proto_net.10.weight'], source['proto_net.10.weight'])
    assert state['prediction_head.conf_layer.weight'].shape[0] == 3 * 5  # A * (K + 1)
    assert source['prediction_head.conf_layer.weight'].shape[0] == 3 * 4
    assert state['semantic_head.weight'].shape[0] == 4
    assert 'backbone.stage_attention.0.avg_mlp.0.weight' in state


def test_official_init_rejects_another_architecture(tiny_config, tiny_weights):
    other = replace(tiny_config, name='r34', backbone='resnet34')
    with pytest.raises(CheckpointError, match=r'differs from r34 in backbone '
                                              r'\(resnet18 vs resnet34\)'):
        load_official_weights(build_model(other), other, str(tiny_weights))


def test_imagenet_init_without_network_fails_with_one_clear_line(tiny_config, monkeypatch):
    from urllib.error import URLError

    def offline(url, *args, **kwargs):
        raise URLError('no route to host')

    monkeypatch.setattr('torchvision.models._api.load_state_dict_from_url', offline)
    with pytest.raises(CheckpointError) as error:
        load_imagenet_backbone(build_model(tiny_config), 'resnet18')
    message = str(error.value)
    assert message.startswith('cannot download ImageNet weights for resnet18 from https://')
    assert 'no route to host' in message and 'Use --init none' in message
    assert '\n' not in message


def test_official_init_refreshes_the_mask_rescoring_classifier(tmp_path, tiny_config):
    source_config = replace(tiny_config, mask_rescoring=True, input_size=256)
    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / 'plus.safetensors', build_model(source_config),
                              source_config)
    target = source_config.with_classes(('a', 'b', 'c', 'd', 'e'), (1, 2, 3, 4, 5))
    model = build_model(target)
    load_official_weights(model, target, str(weights))
    source, _ = read_safetensors(weights)
    state = model.state_dict()
    assert state['maskiou_net.layers.10.weight'].shape[0] == 5
    assert source['maskiou_net.layers.10.weight'].shape[0] == 3
    torch.testing.assert_close(state['maskiou_net.layers.8.weight'],
                               source['maskiou_net.layers.8.weight'])


def test_imagenet_init_fills_a_deformable_backbone(monkeypatch):
    import torchvision

    torch.manual_seed(0)
    imagenet = torchvision.models.resnet50().state_dict()
    monkeypatch.setattr('torchvision.models._api.load_state_dict_from_url',
                        lambda *args, **kwargs: imagenet)
    model = build_model(get_config('yolact_plus_resnet50'))
    load_imagenet_backbone(model, 'resnet50')
    deformable = [name for name, layer in model.backbone.named_modules()
                  if type(layer).__name__ == 'DeformableConv2d']
    assert deformable, 'yolact_plus_resnet50 should have deformable convs'
    state = model.backbone.state_dict()
    for name in deformable:
        torch.testing.assert_close(state[f'{name}.weight'], imagenet[f'{name}.weight'])
    torch.testing.assert_close(state['layer1.0.conv1.weight'], imagenet['layer1.0.conv1.weight'])


def test_imagenet_init_of_a_backbone_torchvision_lacks_is_a_clear_error(tiny_config):
    with pytest.raises(CheckpointError, match='torchvision has no ImageNet weights for the '
                                              'darknet53 backbone; use --init none'):
        load_imagenet_backbone(build_model(tiny_config), 'darknet53')


def test_a_letterbox_run_trains_on_camera_frames_and_its_model_remembers_it(tmp_path):
    """4:3 and 16:9 images letterboxed: targets stay on the image, the weights keep the mode."""
    from yolact_ros.data import CocoDataset, generate_dataset, resolve_dataset
    from yolact_ros.inference import Segmenter

    data = tmp_path / 'data'
    generate_dataset(data, num_images=4, size=[(128, 96), (128, 72)], seed=0, occlusion='high')
    model = replace(get_config('yolact_resnet18'), input_size=128, letterbox=True)
    dataset = CocoDataset.from_spec(resolve_dataset(data, 'train'), input_size=128,
                                    letterbox=True)
    for index, rows in ((0, 96), (1, 72)):
        image, target = dataset[index]
        assert torch.all(image[:, rows:] == 0)  # the padding is the mean colour
        assert target['masks'][:, rows:].sum() == 0
        assert (target['boxes'][:, 3] <= rows / 128 + 1e-6).all()
    config = TrainConfig(model=model, data=str(data), val_data=str(data),
                         out_dir=str(tmp_path / 'run'), iterations=2, batch_size=2, lr=4e-3,
                         init='none', checkpoint_every=2, val_every=2, workers=0, device='cpu')
    train(config, command='yolact train --letterbox (test)')
    segmenter = Segmenter.from_weights(tmp_path / 'run' / 'model.safetensors', device='cpu')
    assert segmenter.config.letterbox and segmenter.preprocessor.letterbox
