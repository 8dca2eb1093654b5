"""ONNX export and the ONNX Runtime backend agree with eager torch (CPU, tiny model)."""

import json

import numpy as np
import onnx
import pytest
import torch

from yolact_ros.checkpoint import load_model, save_checkpoint
from yolact_ros.config import get_config, PostprocessConfig
from yolact_ros.export.backends import cached_onnx, load_segmenter, OnnxRuntimeBackend
from yolact_ros.export.onnx import (
    check_exportable, example_input, export_onnx, ExportError, ExportReport, OUTPUT_NAMES,
    read_metadata)
from yolact_ros.inference import Segmenter
from yolact_ros.modeling import build_model


@pytest.fixture(scope='module')
def eager(tiny_weights):
    model, config = load_model(tiny_weights)
    return model, config


def images(seed=0, height=60, width=80):
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def test_the_file_has_named_io_a_free_batch_and_its_config_and_opset(exported, eager):
    _, onnx_file, _ = exported
    graph = onnx.load(str(onnx_file))
    assert [i.name for i in graph.graph.input] == ['images']
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES)
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == 'batch'
    metadata = {p.key: p.value for p in graph.metadata_props}
    assert metadata['opset'] == '17' and graph.opset_import[0].version == 17
    config, sizes, _ = read_metadata(onnx_file)
    assert config == eager[1]
    assert sizes == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]  # 128 px input, strides 8..128
    assert json.loads(metadata['config'])['input_size'] == 128


def test_raw_outputs_match_eager_torch_at_batch_2(exported, eager):
    model, config = eager
    backend = OnnxRuntimeBackend(exported[1])
    inputs = example_input(config, batch_size=2)
    ours = backend(inputs)
    with torch.no_grad():
        reference = model(inputs)
    assert set(ours) == set(reference)
    for name in OUTPUT_NAMES:
        assert ours[name].shape == reference[name].shape
        assert (ours[name] - reference[name]).abs().max() < 1e-4, name
    assert torch.equal(ours['priors'], reference['priors'])  # rebuilt by the model's code


def test_detections_match_eager_torch(exported, tiny_weights):
    _, _, onnx_segmenter = exported
    eager_segmenter = Segmenter.from_weights(
        tiny_weights, device='cpu', fold_bn=False,
        postprocess=PostprocessConfig(score_threshold=0.0))
    batch = [images(1), images(2, 33, 47)]
    for ours, theirs in zip(onnx_segmenter(batch), eager_segmenter(batch)):
        assert len(ours) == len(theirs) == 100
        assert ours.class_ids.tolist() == theirs.class_ids.tolist()
        assert np.abs(ours.boxes - theirs.boxes).max() <= 1
        np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-4)
        assert min(mask_iou(a, b) for a, b in zip(ours.masks, theirs.masks)) >= 0.99
    assert onnx_segmenter.device == torch.device('cpu')
    # Its idle threads must not spin on the cores the postprocessing runs on next.
    options = onnx_segmenter.model.session.get_session_options()
    assert options.get_session_config_entry('session.intra_op.allow_spinning') == '0'


def test_a_fixed_batch_file_runs_a_batch_in_chunks(tmp_path, eager):
    model, config = eager
    report = export_onnx(model, config, tmp_path / 'fixed.onnx')
    assert max(report.max_abs_error.values()) < 1e-4
    assert 'max abs error vs eager torch: loc' in report.summary()
    backend = OnnxRuntimeBackend(report.path, threads=1)
    assert backend.fixed_batch == 1
    inputs = example_input(config, batch_size=3)
    with torch.no_grad():
        reference = model(inputs)
    assert (backend(inputs)['conf'] - reference['conf']).abs().max() < 1e-4


def test_wrong_input_shape_is_refused_with_the_shape(exported):
    backend = exported[2].model
    with pytest.raises(ValueError, match=r'expected images \[N, 3, 128, 128\], got \(1, 3, 64'):
        backend(torch.zeros(1, 3, 64, 64))


def test_a_foreign_onnx_file_is_refused_naming_it(tmp_path):
    node = onnx.helper.make_node('Identity', ['x'], ['y'])
    value = onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([node], 'g', [value], [
        onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [1])])
    path = tmp_path / 'other.onnx'
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(ExportError, match='other.onnx was not exported by yolact_ros'):
        read_metadata(path)
    with pytest.raises(ExportError, match='ONNX file not found: .*missing.onnx'):
        read_metadata(tmp_path / 'missing.onnx')


def test_deformable_convolutions_are_refused():
    with pytest.raises(ExportError, match='yolact_plus_resnet50: deformable convolutions'):
        check_exportable(get_config('yolact_plus_resnet50'))


def test_the_cache_exports_once_per_checkpoint_content(tmp_path, monkeypatch, tiny_weights,
                                                       tiny_config):
    calls = []

    def fake_export(model, config, path, **kwargs):
        calls.append(path)
        path.write_bytes(b'onnx')
        return ExportReport(path=path, opset=17, max_abs_error={}, seconds=0.0)

    monkeypatch.setattr('yolact_ros.export.onnx.export_onnx', fake_export)
    weights = tmp_path / 'w.safetensors'
    weights.write_bytes(tiny_weights.read_bytes())
    first = cached_onnx(weights)
    assert cached_onnx(weights) == first and len(calls) == 1
    assert first.parent == tmp_path / '.yolact_cache' and first.name.startswith('w-')
    torch.manual_seed(1)
    save_checkpoint(weights, build_model(tiny_config), tiny_config)  # new weights, same name
    second = cached_onnx(weights, cache_dir=tmp_path / 'elsewhere')
    assert second != first and second.parent == tmp_path / 'elsewhere' and len(calls) == 2


@pytest.mark.parametrize('kwargs, message', [
    ({'backend': 'tflite'}, "unknown backend 'tflite'"),
    ({'backend': 'tensorrt', 'device': 'cpu'}, 'TensorRT backend needs a CUDA device'),
    ({'backend': 'onnxruntime', 'device': 'cpu', 'half': True}, 'needs a CUDA device'),
])
def test_bad_backend_choices_are_refused(tiny_weights, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_segmenter(tiny_weights, **kwargs)


def test_an_onnx_file_does_not_run_on_the_torch_backend(exported):
    with pytest.raises(ValueError, match='runs with an exported-network backend'):
        load_segmenter(exported[1], backend='torch')


def test_an_unrunnable_file_is_written_and_says_why_parity_was_not_checked(
        tmp_path, eager, monkeypatch):
    model, config = eager

    def no_session(*args, **kwargs):
        raise RuntimeError('NOT_IMPLEMENTED: Could not find an implementation for Conv')

    monkeypatch.setattr('onnxruntime.InferenceSession', no_session)
    report = export_onnx(model, config, tmp_path / 'net.onnx')
    assert report.path.is_file() and report.max_abs_error == {}
    assert report.summary().endswith(
        'not checked: ONNX Runtime (CPUExecutionProvider) cannot run net.onnx: NOT_IMPLEMENTED: '
        'Could not find an implementation for Conv')
