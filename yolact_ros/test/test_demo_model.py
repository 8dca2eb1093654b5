"""The bundled demo model loads, knows its classes and finds the shapes of an unseen scene."""

import numpy as np
import pytest

from yolact_ros.config import PostprocessConfig
from yolact_ros.data.synthetic import CATEGORY_IDS, CLASS_NAMES, random_scene
from yolact_ros.inference import Segmenter
from yolact_ros.weights import demo_weights


@pytest.fixture(scope='module')
def segmenter():
    path = demo_weights()
    assert path.is_file(), f'the bundled demo model is missing: {path}'
    assert path.stat().st_size <= 26_000_000
    return Segmenter.from_weights(path, device='cpu',
                                  postprocess=PostprocessConfig(score_threshold=0.3))


def test_demo_model_reports_the_synthetic_classes(segmenter):
    assert tuple(segmenter.class_names) == tuple(CLASS_NAMES)
    assert tuple(segmenter.config.category_ids) == tuple(CATEGORY_IDS)


def test_demo_model_finds_most_shapes_of_an_unseen_scene(segmenter):
    found, total = 0, 0
    for seed in (101, 102, 103):
        scene = random_scene(np.random.default_rng(seed), 256, 256)
        detections = segmenter(scene.image)
        for instance in scene.instances:
            total += 1
            ious = [np.logical_and(mask, instance.mask).sum()
                    / np.logical_or(mask, instance.mask).sum()
                    for mask, category in zip(detections.masks, detections.category_ids)
                    if category == instance.category_id]
            found += bool(ious) and max(ious) >= 0.5
    assert total >= 5
    print(f'{found} of {total} shapes found with mask IoU >= 0.5')
    assert found / total >= 0.6, f'{found} of {total} shapes found with mask IoU >= 0.5'
