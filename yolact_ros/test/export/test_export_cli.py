"""``yolact export`` as a user runs it, ``--backend`` on predict, and TensorRT's absence."""

import json
import sys

import cv2
import numpy as np
import pytest
import torch

from yolact_ros.cli.main import main
from yolact_ros.export.onnx import ExportError, read_metadata
from yolact_ros.export.tensorrt import import_tensorrt, TensorRTBackend


def test_onnx_export_prints_its_parity_with_eager_torch(tiny_weights, tmp_path, capsys):
    output = tmp_path / 'net.onnx'
    code = main(['export', '--weights', str(tiny_weights), '--output', str(output),
                 '--device', 'cpu', '--opset', '16'])
    printed = capsys.readouterr().out
    assert code == 0
    assert f'wrote {output}' in printed and 'opset 16' in printed
    errors = dict(item.split() for item in printed.split('eager torch: ')[1].split(', '))
    assert set(errors) == {'loc', 'conf', 'mask_coef', 'proto'}
    assert max(float(value) for value in errors.values()) < 1e-4
    config, _, metadata = read_metadata(output)
    assert metadata['opset'] == '16' and metadata['dynamic_batch'] == 'false'
    assert config.class_names == ('circle', 'square', 'ring')


@pytest.mark.parametrize('export_format,written', [('onnx', ['tiny.onnx']),
                                                   ('openvino', ['tiny.bin', 'tiny.onnx',
                                                                 'tiny.xml'])])
def test_output_folder_gets_the_default_name(tiny_weights, tmp_path, capsys, export_format,
                                             written):
    """--output DIR (an existing folder) writes DIR/<weights name>.<format>, like cp."""
    folder = tmp_path / 'models'
    folder.mkdir()
    assert main(['export', '--weights', str(tiny_weights), '--format', export_format,
                 '--output', str(folder), '--device', 'cpu']) == 0
    assert sorted(path.name for path in folder.iterdir()) == written
    assert f'wrote {folder / written[-1]}' in capsys.readouterr().out


def test_output_with_a_trailing_slash_is_a_new_folder(tiny_weights, tmp_path):
    folder = tmp_path / 'exports'
    assert main(['export', '--weights', str(tiny_weights), '--format', 'openvino',
                 '--output', f'{folder}/', '--device', 'cpu']) == 0
    assert (folder / 'tiny.xml').is_file() and (folder / 'tiny.bin').is_file()


def test_output_in_a_new_folder_creates_it(tiny_weights, tmp_path):
    output = tmp_path / 'new' / 'deeper' / 'net.onnx'
    assert main(['export', '--weights', str(tiny_weights), '--output', str(output),
                 '--device', 'cpu']) == 0
    assert read_metadata(output)[0].class_names == ('circle', 'square', 'ring')


@pytest.mark.filterwarnings('ignore::FutureWarning')  # torch.jit.load is deprecated
def test_torchscript_export_reloads_with_identical_outputs(tiny_weights, tmp_path, capsys):
    output = tmp_path / 'net.pt'
    assert main(['export', '--weights', str(tiny_weights), '--format', 'torchscript',
                 '--output', str(output), '--device', 'cpu']) == 0
    assert 'loc 0.00e+00, conf 0.00e+00, mask_coef 0.00e+00' in capsys.readouterr().out
    files = {'yolact_ros.json': ''}
    module = torch.jit.load(str(output), _extra_files=files)
    assert json.loads(files['yolact_ros.json'])['config']['input_size'] == 128
    loc, conf, mask_coef, proto = module(torch.zeros(1, 3, 128, 128))
    assert conf.shape == (1, 1023, 4) and proto.shape == (1, 32, 32, 16)


def test_predict_runs_an_onnx_file_with_the_onnxruntime_backend(exported, tmp_path):
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    out = tmp_path / 'out'
    code = main(['predict', str(image), '--weights', str(exported[1]), '--backend',
                 'onnxruntime', '--device', 'cpu', '--score-threshold', '0', '--output',
                 str(out)])
    assert code == 0
    predictions = json.loads((out / 'predictions.json').read_text())
    assert len(predictions) == 100 and predictions[0]['category_id'] in (1, 3, 7)


def test_missing_tensorrt_gives_one_clear_line(monkeypatch, tiny_weights, capsys):
    monkeypatch.setitem(sys.modules, 'tensorrt', None)  # absent, even where installed
    with pytest.raises(ExportError, match=r'TensorRT is not installed: `pip install tensorrt`'):
        import_tensorrt()
    with pytest.raises(ExportError, match='TensorRT is not installed'):
        TensorRTBackend('model.engine')
    code = main(['export', '--weights', str(tiny_weights), '--format', 'engine'])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith('yolact export: error: TensorRT is not installed') and \
        err.count('\n') == 1


def test_export_errors_are_one_line(tmp_path, capsys):
    code = main(['export', '--weights', str(tmp_path / 'none.safetensors'), '--device', 'cpu'])
    assert code == 2
    assert 'weights file not found' in capsys.readouterr().err
