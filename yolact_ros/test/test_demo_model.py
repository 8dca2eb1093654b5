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


def test_a_copy_resized_32_px_smaller_segments_camera_frames_worse_than_the_shipped_size(
        segmenter, tmp_path):
    """On unseen 640x480 frames the shipped input size fits the shapes better.

    `yolact weights resize` writes a copy that runs at another size (training/README.md
    #input-size).
    """
    from yolact_ros.cli.main import main

    shipped = segmenter.config.input_size
    assert segmenter.config.letterbox
    resized = tmp_path / 'smaller.safetensors'
    assert main(['weights', 'resize', str(demo_weights()), '--input-size', str(shipped - 32),
                 '--output', str(resized)]) == 0
    smaller = Segmenter.from_weights(resized, device='cpu',
                                     postprocess=PostprocessConfig(score_threshold=0.3))
    assert smaller.config.input_size == shipped - 32
    scenes = [random_scene(np.random.default_rng(seed), 480, 640) for seed in range(201, 209)]
    iou_shipped, iou_smaller = (np.mean(best_ious(model, scenes))
                                for model in (segmenter, smaller))
    print(f'mean best mask IoU on 640x480 frames: {iou_shipped:.3f} at {shipped} px (shipped), '
          f'{iou_smaller:.3f} at {shipped - 32}')
    assert iou_shipped > iou_smaller + 0.02
