"""Errors a user can cause: one line on stderr naming the file, exit code 2, nothing written."""

import json
import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from yolact_ros.cli.main import main


def run_cli(args, capfd):
    """Run ``yolact ARGS`` in this process; return (exit code, stderr lines).

    ``capfd`` also catches what C libraries (OpenCV, FFmpeg) write to file descriptor 2.
    """
    code = main(args)
    return code, capfd.readouterr().err.strip().splitlines()


def assert_one_line_error(code, err, command, *needles):
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f'yolact {command}: error: ')
    for needle in needles:
        assert str(needle) in err[0]


@pytest.fixture
def image(tmp_path):
    path = tmp_path / 'photo.png'
    cv2.imwrite(str(path), np.full((32, 40, 3), 128, np.uint8))
    return path


def test_predict_missing_input_writes_nothing(tmp_path, capfd):
    out = tmp_path / 'out'
    code, err = run_cli(['predict', str(tmp_path / 'nope.jpg'), '--output', str(out)], capfd)
    assert_one_line_error(code, err, 'predict', tmp_path / 'nope.jpg', 'no such file')
    assert not out.exists()


def test_predict_every_input_missing_is_one_line_naming_each(tmp_path, capfd):
    out = tmp_path / 'out'
    code, err = run_cli(['predict', str(tmp_path / 'a.jpg'), str(tmp_path / 'b.mp4'),
                         '--output', str(out)], capfd)
    assert_one_line_error(code, err, 'predict', tmp_path / 'a.jpg', tmp_path / 'b.mp4')
    assert not out.exists()


def test_predict_folder_without_images(tmp_path, capfd):
    (tmp_path / 'empty').mkdir()
    out = tmp_path / 'out'
    code, err = run_cli(['predict', str(tmp_path / 'empty'), '--output', str(out)], capfd)
    assert_one_line_error(code, err, 'predict', tmp_path / 'empty', 'no images')
    assert not out.exists()


@pytest.mark.parametrize('name, size, seed, problem', [
    ('photo.jpg', 3000, 0, 'cannot read image'),
    ('clip.mp4', 5000, 1, 'cannot read video'),
])
def test_predict_corrupt_image_or_video(tmp_path, capfd, name, size, seed, problem):
    corrupt = tmp_path / name
    corrupt.write_bytes(np.random.default_rng(seed).bytes(size))
    out = tmp_path / 'out'
    code, err = run_cli(['predict', str(corrupt), '--output', str(out)], capfd)
    assert_one_line_error(code, err, 'predict', corrupt, problem)
    assert not out.exists()


@pytest.mark.parametrize('kind', ['text', 'zip', 'pickled object', 'safetensors'])
def test_predict_weights_that_are_not_a_checkpoint(kind, image, tmp_path, capfd):
    if kind == 'text':
        weights = tmp_path / 'x.pth'
        weights.write_text('not a checkpoint\n')
    elif kind == 'zip':
        weights = tmp_path / 'x.pth'
        with zipfile.ZipFile(weights, 'w') as archive:
            archive.writestr('x/data.txt', 'a zip, but not a state dict')
    elif kind == 'pickled object':
        import torch

        weights = tmp_path / 'x.pth'
        torch.save({'model': object()}, weights)  # a pickled object: never unpickled
    else:
        weights = tmp_path / 'x.safetensors'
        weights.write_bytes(b'\x10\x00\x00\x00garbage')
    out = tmp_path / 'out'
    code, err = run_cli(['predict', str(image), '--weights', str(weights), '--output', str(out),
                         '--device', 'cpu'], capfd)
    assert_one_line_error(code, err, 'predict', weights)
    assert not out.exists()


def test_predict_missing_weights(image, tmp_path, capfd):
    out = tmp_path / 'out'
    code, err = run_cli(['predict', str(image), '--weights', str(tmp_path / 'w.safetensors'),
                         '--output', str(out)], capfd)
    assert_one_line_error(code, err, 'predict', tmp_path / 'w.safetensors', 'not found')
    assert not out.exists()


def test_predict_unknown_config(image, tmp_path, capfd):
    out = tmp_path / 'out'
    code, err = run_cli(['predict', str(image), '--config', 'yolact_nope', '--output', str(out),
                         '--device', 'cpu'], capfd)
    assert_one_line_error(code, err, 'predict', "unknown config 'yolact_nope'", 'yolact_base')
    assert not out.exists()


def test_eval_annotations_that_do_not_parse(tmp_path, capfd):
    data = tmp_path / 'data'
    (data / 'images').mkdir(parents=True)
    (data / 'annotations.json').write_text('{"images": [')
    (data / 'dataset.yaml').write_text('images: images\nannotations: annotations.json\n')
    out = tmp_path / 'evaluation'
    code, err = run_cli(['eval', '--data', str(data), '--output', str(out), '--device', 'cpu'],
                        capfd)
    assert_one_line_error(code, err, 'eval', data / 'annotations.json')
    assert not out.exists()


def test_eval_results_file_that_is_not_json(tmp_path, capfd):
    data = tmp_path / 'data'
    (data / 'images').mkdir(parents=True)
    (data / 'annotations.json').write_text(json.dumps({
        'images': [{'id': 1, 'file_name': 'a.png', 'height': 8, 'width': 8}],
        'annotations': [], 'categories': [{'id': 1, 'name': 'thing'}]}))
    (data / 'dataset.yaml').write_text('images: images\nannotations: annotations.json\n')
    results = tmp_path / 'predictions.json'
    results.write_text('[{"image_id": ')
    out = tmp_path / 'evaluation'
    code, err = run_cli(['eval', '--data', str(data), '--results', str(results),
                         '--output', str(out)], capfd)
    assert_one_line_error(code, err, 'eval', results, 'not a readable JSON file')
    assert not out.exists()


def test_demo_weights_not_a_checkpoint(tmp_path, capfd):
    weights = tmp_path / 'x.pth'
    weights.write_text('hello')
    out = tmp_path / 'demo'
    code, err = run_cli(['demo', '--weights', str(weights), '--output', str(out),
                         '--device', 'cpu'], capfd)
    assert_one_line_error(code, err, 'demo', weights)
    assert not out.exists()


def test_export_weights_not_a_checkpoint(tmp_path, capfd):
    weights = tmp_path / 'x.pth'
    weights.write_text('hello')
    code, err = run_cli(['export', '--weights', str(weights)], capfd)
    assert_one_line_error(code, err, 'export', weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['x.pth']


def test_output_folder_that_is_a_file(image, tiny_weights, tmp_path, capfd):
    out = tmp_path / 'out'
    out.write_text('a file where the output folder should go')
    code, err = run_cli(['predict', str(image), '--weights', str(tiny_weights), '--output',
                         str(out), '--device', 'cpu'], capfd)
    assert_one_line_error(code, err, 'predict', out)


def test_export_output_under_a_file(tiny_weights, tmp_path, capfd):
    blocker = tmp_path / 'models'
    blocker.write_text('a file where the output folder should go')
    output = blocker / 'net.onnx'
    code, err = run_cli(['export', '--weights', str(tiny_weights), '--output', str(output),
                         '--device', 'cpu'], capfd)
    assert_one_line_error(code, err, 'export', output, 'cannot create its folder')


def test_export_openvino_output_not_xml(tiny_weights, tmp_path, capfd):
    output = tmp_path / 'model'
    code, err = run_cli(['export', '--weights', str(tiny_weights), '--format', 'openvino',
                         '--output', str(output), '--device', 'cpu'], capfd)
    assert_one_line_error(code, err, 'export', output, 'give a .xml file or a folder')
    assert list(tmp_path.iterdir()) == []


def test_verbose_adds_the_traceback(tmp_path):
    weights = tmp_path / 'x.pth'
    weights.write_text('hello')
    command = [sys.executable, '-m', 'yolact_ros.cli.main', 'export', '--weights', str(weights)]
    quiet = subprocess.run(command, capture_output=True, text=True)
    verbose = subprocess.run(command[:3] + ['--verbose'] + command[3:], capture_output=True,
                             text=True)
    assert quiet.returncode == verbose.returncode == 2
    assert len(quiet.stderr.strip().splitlines()) == 1 and 'Traceback' not in quiet.stderr
    assert 'Traceback' in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == quiet.stderr.strip()
    assert json.dumps(str(weights))[1:-1] in quiet.stderr


@pytest.mark.parametrize('size,output,problem', [
    (200, 'copy.safetensors', 'input size must be a multiple of 32, got 200'),
    (192, 'copy.onnx', 'copy.onnx: not a .safetensors file'),
])
def test_weights_resize_refuses_what_would_not_run(size, output, problem, tiny_weights, tmp_path,
                                                   capfd):
    code, err = run_cli(['weights', 'resize', str(tiny_weights), '--input-size', str(size),
                         '--output', str(tmp_path / output)], capfd)
    assert_one_line_error(code, err, 'weights', problem)
    assert list(tmp_path.iterdir()) == []


def test_weights_resize_missing_file(tmp_path, capfd):
    missing = tmp_path / 'none.safetensors'
    code, err = run_cli(['weights', 'resize', str(missing), '--input-size', '192', '--output',
                         str(tmp_path / 'copy.safetensors')], capfd)
    assert_one_line_error(code, err, 'weights', 'weights file not found', missing)
    assert list(tmp_path.iterdir()) == []
