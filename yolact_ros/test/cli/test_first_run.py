"""What a new user meets first: --version, the bundled default, `weights list`, option defaults."""

import logging
from pathlib import Path

import pytest

from yolact_ros.checkpoint import load_model
from yolact_ros.cli.common import resolve_backend
from yolact_ros.cli.export import default_output
from yolact_ros.cli.main import build_parser, main
from yolact_ros.weights import bundled_entry, demo_weights


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(['--version'])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f'yolact {version("yolact_ros")}'


@pytest.mark.parametrize('command', [['predict', 'x.jpg'], ['eval', '--data', 'd'],
                                     ['demo'], ['bag', 'in', 'out', '--image-topic', '/i'],
                                     ['export']])
def test_weights_default_to_the_bundled_model(command):
    args = build_parser().parse_args(command)
    assert args.weights is None  # resolved to yolact_ros.weights.demo_weights() when run


@pytest.mark.parametrize('command', [['predict', 'x.jpg'], ['eval', '--data', 'd'], ['demo'],
                                     ['bag', 'in', 'out', '--image-topic', '/i']])
def test_every_model_running_command_takes_threads(command):
    assert build_parser().parse_args(command).threads == 0
    assert build_parser().parse_args(command + ['--threads', '3']).threads == 3


@pytest.mark.parametrize('name, given, expected', [
    ('model.safetensors', None, 'torch'), ('yolact_base_54_800000.pth', None, 'torch'),
    ('model.onnx', None, 'onnxruntime'), ('model.ENGINE', None, 'tensorrt'),
    ('model.plan', None, 'tensorrt'), ('model.safetensors', 'onnxruntime', 'onnxruntime'),
])
def test_backend_follows_the_weights_file_type(name, given, expected):
    assert resolve_backend(Path(name), given) == expected


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_predict_without_weights_runs_the_bundled_model_and_says_so(tmp_path):
    import cv2
    import numpy as np

    image = tmp_path / 'photo.png'
    cv2.imwrite(str(image), np.full((48, 64, 3), 200, np.uint8))
    # A handler on the logger itself: launch's pytest plugin, when installed, stops propagation.
    logger = logging.getLogger('yolact_ros.cli.common')
    records, level = _Records(), logger.level
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    try:
        code = main(['predict', str(image), '--output', str(tmp_path / 'out'),
                     '--device', 'cpu'])
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    assert code == 0
    assert (tmp_path / 'out' / 'predictions.json').is_file()
    lines = [message for message in records.messages if 'bundled demo model' in message]
    assert len(lines) == 1 and str(demo_weights()) in lines[0]


def test_export_of_the_bundled_model_goes_to_exports_not_weights(tmp_path):
    assert default_output(demo_weights(), 'onnx') == Path('exports/yolact_resnet18_synth.onnx')
    mine = tmp_path / 'runs' / 'model.safetensors'
    assert default_output(mine, 'engine') == tmp_path / 'runs' / 'model.engine'


def test_weights_list_shows_the_bundled_model_first_with_ap_and_latency(capsys):
    assert main(['weights', 'list']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ['name', 'config', 'input', 'mask', 'AP', 'latency', 'weights']
    bundled = lines[1].split()
    entry = bundled_entry()
    stored = load_model(demo_weights())[1]  # the manifest says what the file holds
    assert (entry['config'], entry['input_size']) == (stored.name, stored.input_size)
    assert bundled[:5] == [entry['name'], stored.name, str(stored.input_size),
                           f'{entry["mask_ap"]:.1f}*', f'{entry["latency"][0]["ms"]:.1f}']
    assert str(demo_weights()) in lines[1]
    rows = {line.split()[0]: line for line in lines[2:8]}
    assert rows['yolact_base'].split()[2:4] == ['550', '29.8']  # upstream's COCO mask mAP
    assert rows['yolact_base'].split()[4:6] == ['12.6', 'ms']
    assert any('NVIDIA H100' in line for line in lines)  # the machine each latency came from
