"""The bundled demo model loads, knows its classes and finds the shapes of an unseen scene."""

from typing import List

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


def best_ious(segmenter, scenes) -> List[float]:
    """Each true shape's best mask IoU among the detections of its class (0 if none)."""
    best = []
    for scene in scenes:
        detections = segmenter(scene.image)
        for instance in scene.instances:
            best.append(max([np.logical_and(mask, instance.mask).sum()
                             / np.logical_or(mask, instance.mask).sum()
                             for mask, category in zip(detections.masks, detections.category_ids)
                             if category == instance.category_id], default=0.0))
    return best


def test_demo_model_finds_most_shapes_of_an_unseen_scene(segmenter):
    ious = best_ious(segmenter, [random_scene(np.random.default_rng(seed), 256, 256)
                                 for seed in (101, 102, 103)])
    found, total = sum(iou >= 0.5 for iou in ious), len(ious)
    assert total >= 5
    print(f'{found} of {total} shapes found with mask IoU >= 0.5')
    assert found / total >= 0.6, f'{found} of {total} shapes found with mask IoU >= 0.5'


def test_resized_to_192_px_it_segments_camera_frames_better_than_at_its_trained_160(
        segmenter, tmp_path):
    """What training/README.md advises for 4:3 cameras: `yolact weights resize --input-size 192`.

    On unseen 640x480 frames the copy's masks fit the shapes better than the shipped 160 px's.
    """
    from yolact_ros.cli.main import main

    assert segmenter.config.input_size == 160 and segmenter.config.letterbox
    resized = tmp_path / 'at192.safetensors'
    assert main(['weights', 'resize', str(demo_weights()), '--input-size', '192',
                 '--output', str(resized)]) == 0
    at_192 = Segmenter.from_weights(resized, device='cpu',
                                    postprocess=PostprocessConfig(score_threshold=0.3))
    assert at_192.config.input_size == 192
    scenes = [random_scene(np.random.default_rng(seed), 480, 640) for seed in range(201, 209)]
    iou_160, iou_192 = (np.mean(best_ious(model, scenes)) for model in (segmenter, at_192))
    print(f'mean best mask IoU on 640x480 frames: {iou_160:.3f} at 160 px, {iou_192:.3f} at 192')
    assert iou_192 > iou_160 + 0.02
