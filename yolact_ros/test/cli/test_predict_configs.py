"""``yolact predict`` runs every official config (random weights, small inputs for CPU time)."""

from dataclasses import replace
import json

import cv2
import numpy as np
import pytest
import torch

from yolact_ros.checkpoint import save_checkpoint
from yolact_ros.cli.main import main
from yolact_ros.config import get_config
from yolact_ros.modeling import build_model


@pytest.fixture(scope='module')
def image_path(tmp_path_factory):
    path = tmp_path_factory.mktemp('images') / 'scene.png'
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    return path


# The smallest input each family accepts: the re-scoring head needs 63 px prototypes (252 px).
@pytest.mark.parametrize('name, input_size', [
    ('yolact_resnet50', 128), ('yolact_base', 128), ('yolact_im700', 128),
    ('yolact_darknet53', 128), ('yolact_plus_resnet50', 256), ('yolact_plus_base', 256)])
def test_predict_runs_each_official_config(name, input_size, image_path, tmp_path):
    config = replace(get_config(name), input_size=input_size)
    torch.manual_seed(0)
    weights = save_checkpoint(tmp_path / f'{name}.safetensors', build_model(config), config,
                              half=True)
    out = tmp_path / 'out'
    code = main(['predict', str(image_path), '--weights', str(weights), '--output', str(out),
                 '--device', 'cpu', '--score-threshold', '0.0', '--candidate-threshold', '0.0',
                 '--max-detections', '5'])
    assert code == 0
    predictions = json.loads((out / 'predictions.json').read_text())
    assert len(predictions) == 5
    plus = name.startswith('yolact_plus')
    for prediction in predictions:
        assert ('mask_score' in prediction) == plus
        if plus:  # box score kept as ``score``; mask score = box score x predicted mask IoU
            assert prediction['mask_score'] >= 0.0
            assert prediction['mask_score'] != prediction['score']
