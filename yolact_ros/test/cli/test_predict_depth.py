"""``yolact predict --depth --intrinsics``: 3D fields in predictions.json (bundled model).

Rendered RGB-D scenes of the ROS tests (``test/ros/depth_scene.py``): every object found in 2D
gets a position within 5 cm of the truth; depth is matched to the images by name.
"""

import json
from pathlib import Path
import sys

import cv2
import numpy as np
import pytest
import yaml

from yolact_ros.cli.main import main
from yolact_ros.data.synthetic import CATEGORIES
from yolact_ros.weights import demo_weights

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'ros'))
from depth_scene import camera_info_dict, rgbd_scene  # noqa: E402, I100

CLASS_OF = dict(CATEGORIES)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    root = tmp_path_factory.mktemp('rgbd')
    (root / 'color').mkdir()
    (root / 'depth').mkdir()
    scenes = {}
    for seed in (1, 2):
        rgbd = rgbd_scene(seed)
        cv2.imwrite(str(root / 'color' / f'{seed:04d}.jpg'), rgbd.scene.image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(root / 'depth' / f'{seed:04d}.png'), rgbd.depth_mm)
        scenes[f'{seed:04d}.jpg'] = rgbd
    info = camera_info_dict()  # as camera_calibration writes it
    calibration = {'image_width': info['width'], 'image_height': info['height'],
                   'camera_name': 'synth', 'camera_matrix': {'rows': 3, 'cols': 3,
                                                             'data': info['k']}}
    (root / 'camera.yaml').write_text(yaml.safe_dump(calibration))
    return root, scenes


def test_every_object_found_in_2d_gets_a_3d_position_within_5_cm(files, tmp_path, capsys):
    root, scenes = files
    out = tmp_path / 'out'
    assert main(['predict', str(root / 'color'), '--depth', str(root / 'depth'),
                 '--intrinsics', str(root / 'camera.yaml'), '--output', str(out),
                 '--device', 'cpu']) == 0, capsys.readouterr().err
    predictions = json.loads((out / 'predictions.json').read_text())
    found = 0
    for name, rgbd in scenes.items():
        mine = [p for p in predictions if p['file_name'] == name]
        for shape, centroid in zip(rgbd.scene.instances, rgbd.centroids):
            matches = [p for p in mine if p['category_id'] == shape.category_id]
            if matches:
                found += 1
                best = max(matches, key=lambda p: p['score'])
                assert best['valid_3d'] and best['num_points'] >= 20
                assert np.linalg.norm(np.subtract(best['position'], centroid)) < 0.05
                assert len(best['bbox_3d']['center']) == len(best['bbox_3d']['size']) == 3
    assert found >= 4


def test_a_missing_depth_image_is_named_and_fails_the_run(files, tmp_path, capsys):
    root, _ = files
    empty = tmp_path / 'no_depth'
    empty.mkdir()
    code = main(['predict', str(root / 'color' / '0001.jpg'), '--depth', str(empty),
                 '--intrinsics', str(root / 'camera.yaml'), '--output', str(tmp_path / 'o'),
                 '--device', 'cpu'])
    assert code == 2
    assert f'0001.jpg: no depth image 0001.* (.png, .tif, .tiff, .npy, .pgm) in {empty}' in (
        capsys.readouterr().err)


def test_depth_needs_intrinsics_before_the_model_loads(files, capsys):
    root, _ = files
    assert main(['predict', str(root / 'color'), '--depth', str(root / 'depth')]) != 0
    assert '--depth and --intrinsics go together' in capsys.readouterr().err
