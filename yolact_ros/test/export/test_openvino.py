"""OpenVINO export, backend and int8 path against torch on the bundled demo model (CPU)."""

from pathlib import Path
import sys

import cv2
import numpy as np
import pytest

from yolact_ros.checkpoint import load_model
from yolact_ros.cli.common import resolve_backend
from yolact_ros.cli.main import build_parser, main
from yolact_ros.config import PostprocessConfig
from yolact_ros.data.synthetic import random_scene
from yolact_ros.export.backends import load_segmenter
from yolact_ros.weights import demo_weights

pytest.importorskip('openvino', reason='OpenVINO is not installed (pip install openvino)')

# int8 against fp32, on scenes the calibration did not see: at least this share of the fp32
# detections found again (class, box within INT8_BOX_PX) with at least this mean mask IoU.
# Measured: 44/44 matched, mean IoU 0.993; the bound leaves room for a detection near the score
# threshold falling on the other side of it, as int8 moves scores by up to ~0.06.
INT8_MATCHED = 0.8
INT8_BOX_PX = 4
INT8_MEAN_IOU = 0.9


def scenes(seeds, size=256):
    """Return a synthetic BGR scene (the demo model's domain) for each of ``seeds``."""
    return [random_scene(np.random.default_rng(seed), size, size).image for seed in seeds]


def matches(ours, reference, box_px):
    """Pair each reference detection with one of ours (same class, box within ``box_px``).

    Returns:
        The mask IoU of every pair; unmatched reference detections have none.
    """
    free, ious = set(range(len(ours))), []
    for index in range(len(reference)):
        candidates = [i for i in free if ours.class_ids[i] == reference.class_ids[index]
                      and np.abs(ours.boxes[i] - reference.boxes[index]).max() <= box_px]
        if candidates:
            best = min(candidates, key=lambda i: abs(ours.scores[i] - reference.scores[index]))
            free.remove(best)
            a, b = ours.masks[best], reference.masks[index]
            union = np.logical_or(a, b).sum()
            ious.append(1.0 if union == 0 else np.logical_and(a, b).sum() / union)
    return ious


@pytest.fixture(scope='module')
def cli_threshold():
    """Return the score threshold `yolact predict` uses by default."""
    return build_parser().parse_args(['predict', 'x.png']).score_threshold


@pytest.fixture(scope='module')
def demo_ir(tmp_path_factory):
    """Export the demo model with `yolact export --format openvino`; return the .xml path."""
    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    output = tmp_path_factory.mktemp('openvino') / 'demo.xml'
    assert main(['export', '--weights', str(demo_weights()), '--format', 'openvino',
                 '--output', str(output), '--device', 'cpu']) == 0
    return output


@pytest.fixture(scope='module')
def demo_int8(tmp_path_factory, demo_ir):
    """Export an int8 IR calibrated on 32 synthetic scenes; return the .xml path."""
    pytest.importorskip('nncf', reason='NNCF is not installed (pip install nncf)')
    folder = tmp_path_factory.mktemp('calibration')
    for seed, image in enumerate(scenes(range(1000, 1032))):
        cv2.imwrite(str(folder / f'{seed:03d}.png'), image)
    output = demo_ir.with_name('demo_int8.xml')
    assert main(['export', '--weights', str(demo_weights()), '--format', 'openvino', '--int8',
                 '--calibration', str(folder), '--output', str(output), '--device', 'cpu']) == 0
    return output


def test_export_prints_parity_and_writes_the_ir_with_its_config(demo_ir, capsys):
    from yolact_ros.export.openvino import read_ir_metadata

    _, config, sizes, metadata = read_ir_metadata(demo_ir)
    assert demo_ir.with_suffix('.bin').is_file()
    size = load_model(demo_weights())[1].input_size  # the IR runs at the model's stored size
    assert config.name == 'yolact_resnet18' and config.input_size == size
    assert sizes[0] == (size // 8, size // 8) and metadata['precision'] == 'fp32'


def test_openvino_detections_match_torch_at_cli_defaults(demo_ir, cli_threshold):
    postprocess = PostprocessConfig(score_threshold=cli_threshold)
    ours = load_segmenter(demo_ir, backend='openvino', device='cpu', postprocess=postprocess)
    torch_segmenter = load_segmenter(demo_weights(), device='cpu', postprocess=postprocess)
    total = 0
    for image in scenes((11, 12, 13, 14)):
        mine, theirs = ours(image), torch_segmenter(image)
        assert len(mine) == len(theirs)
        ious = matches(mine, theirs, box_px=1)
        assert len(ious) == len(theirs) and min(ious, default=1.0) >= 0.99
        np.testing.assert_allclose(mine.scores, theirs.scores, atol=1e-4)
        total += len(theirs)
    assert total >= 8  # the scenes hold shapes the model finds


def test_int8_runs_and_its_detections_match_fp32_within_the_bound(
        demo_ir, demo_int8, cli_threshold):
    postprocess = PostprocessConfig(score_threshold=cli_threshold)
    fp32 = load_segmenter(demo_ir, backend='openvino', device='cpu', postprocess=postprocess)
    int8 = load_segmenter(demo_int8, device='cpu', backend='openvino',
                          postprocess=postprocess)
    ious, total = [], 0
    for image in scenes(range(21, 29)):
        reference = fp32(image)
        ious += matches(int8(image), reference, box_px=INT8_BOX_PX)
        total += len(reference)
    print(f'int8: {len(ious)}/{total} fp32 detections matched, mean mask IoU '
          f'{np.mean(ious):.3f}')
    assert len(ious) >= INT8_MATCHED * total
    assert np.mean(ious) >= INT8_MEAN_IOU


def test_an_xml_file_selects_the_openvino_backend(demo_ir, tmp_path):
    assert resolve_backend(Path('model.xml'), None) == 'openvino'
    assert resolve_backend(Path('model.XML'), 'onnxruntime') == 'onnxruntime'
    image = tmp_path / 'scene.png'
    cv2.imwrite(str(image), scenes([31])[0])
    assert main(['predict', str(image), '--weights', str(demo_ir), '--device', 'cpu',
                 '--output', str(tmp_path / 'out')]) == 0
    assert (tmp_path / 'out' / 'predictions.json').is_file()
    with pytest.raises(ValueError, match='is an OpenVINO IR: use --backend openvino'):
        load_segmenter(demo_ir, backend='onnxruntime', device='cpu')


def test_bf16_is_an_openvino_option_only(demo_ir):
    with pytest.raises(ValueError, match='bf16 applies to the openvino backend only'):
        load_segmenter(demo_weights(), backend='torch', device='cpu', bf16=True)


@pytest.mark.parametrize('command', [['predict', '{image}', '--weights', '{ir}'],
                                     ['export', '--format', 'openvino', '--output', '{out}']])
def test_missing_openvino_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path, demo_ir,
                                                 command):
    monkeypatch.setitem(sys.modules, 'openvino', None)  # absent, even where installed
    image = tmp_path / 'scene.png'
    cv2.imwrite(str(image), scenes([41])[0])
    values = {'image': image, 'ir': demo_ir, 'out': tmp_path / 'x.xml'}
    assert main([part.format(**values) for part in command] + ['--device', 'cpu']) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert 'OpenVINO is not installed: `pip install openvino`' in error
    assert not (tmp_path / 'x.xml').exists()
