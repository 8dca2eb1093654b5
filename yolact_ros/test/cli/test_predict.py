"""``yolact predict`` as a user runs it: images, folders, videos, bad inputs, JSON format."""

import json
import subprocess
import sys

import cv2
import numpy as np
from pycocotools import mask as mask_utils
import pytest

from yolact_ros.cli.main import main


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('inputs')
    rng = np.random.default_rng(0)
    images = folder / 'images'
    images.mkdir()
    cv2.imwrite(str(images / 'a.png'), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(images / 'b.png'), rng.integers(0, 255, (40, 40), dtype=np.uint8))
    (images / 'corrupt.png').write_bytes(b'this is not a png')
    video = folder / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5, (64, 48))
    for _ in range(3):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return folder


def run_predict(args):
    return main(['predict', *args, '--device', 'cpu', '--score-threshold', '0.0'])


def test_folder_video_and_bad_inputs(inputs, tiny_weights, tmp_path, capsys):
    out = tmp_path / 'out'
    code = run_predict([str(inputs / 'images'), str(inputs / 'missing.png'),
                        str(inputs / 'clip.avi'), '--weights', str(tiny_weights),
                        '--output', str(out)])
    err = capsys.readouterr().err
    assert code == 2  # something failed, the rest was still processed
    assert 'corrupt.png: cannot read image' in err
    assert 'missing.png: no such file or folder' in err
    assert 'Traceback' not in err
    assert sorted(p.name for p in out.iterdir()) == [
        '00000_a.png', '00001_b.png', 'clip_overlay.mp4', 'predictions.json']
    predictions = json.loads((out / 'predictions.json').read_text())
    by_file = {}
    for prediction in predictions:
        by_file.setdefault(prediction['file_name'], set()).add(prediction['image_id'])
    assert by_file == {'a.png': {0}, 'b.png': {1}, 'clip.avi': {0, 1, 2}}
    overlay = cv2.VideoCapture(str(out / 'clip_overlay.mp4'))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == 3


def test_json_is_coco_results_whose_masks_and_boxes_agree(inputs, tiny_weights, tmp_path):
    out = tmp_path / 'out'
    assert run_predict([str(inputs / 'images' / 'a.png'), '--weights', str(tiny_weights),
                        '--output', str(out)]) == 0
    predictions = json.loads((out / 'predictions.json').read_text())
    assert predictions
    for prediction in predictions:
        assert set(prediction) == {'file_name', 'image_id', 'category_id', 'category_name',
                                   'bbox', 'score', 'segmentation'}
        assert prediction['category_id'] in (1, 3, 7)
        assert isinstance(prediction['segmentation']['counts'], str)
        mask = mask_utils.decode({'size': prediction['segmentation']['size'],
                                  'counts': prediction['segmentation']['counts'].encode()})
        assert mask.shape == (48, 64)
        x, y, width, height = prediction['bbox']
        assert 0 <= x and x + width <= 64 and 0 <= y and y + height <= 48
        rows, cols = np.nonzero(mask)
        if len(rows):  # masks are cropped to their box (+1 px slack in prototype space)
            slack = 128 / 32 * 2
            assert cols.min() >= x - slack and cols.max() <= x + width + slack
            assert rows.min() >= y - slack and rows.max() <= y + height + slack


def test_missing_weights_is_one_line_and_exit_code_2(inputs, tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'yolact_ros.cli.main', 'predict', str(inputs / 'images'),
         '--weights', str(tmp_path / 'nope.safetensors'), '--device', 'cpu'],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f'yolact predict: error: weights file not found: {tmp_path / "nope.safetensors"}']
