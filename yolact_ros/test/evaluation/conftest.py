"""Fixtures of the evaluation tests: a small synthetic dataset and noisy detections of it."""

from pathlib import Path
from typing import List

import numpy as np
from pycocotools import mask as mask_utils
import pytest


@pytest.fixture(scope='session')
def eval_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory holding a 6-image, 96 px synthetic dataset (seed 5, high occlusion)."""
    from yolact_ros.data.synthetic_dataset import generate_dataset

    out = tmp_path_factory.mktemp('eval_synth')
    generate_dataset(out, num_images=6, size=96, seed=5, occlusion='high')
    return out


@pytest.fixture(scope='session')
def eval_dataset(eval_data_dir):
    """Return the dataset of ``eval_data_dir`` as a CocoDataset (val split)."""
    from yolact_ros.data.coco import CocoDataset
    from yolact_ros.data.spec import resolve_dataset

    return CocoDataset.from_spec(resolve_dataset(eval_data_dir, 'val'), input_size=96)


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


@pytest.fixture(scope='session')
def noisy_results(eval_dataset) -> List[dict]:
    """Return noisy detections of every instance, plus false positives.

    Boxes are jittered, masks grown or shrunk, scores random, the class wrong now and then, and
    half of the detections carry a ``mask_score``.
    """
    import cv2

    rng = np.random.default_rng(0)
    coco = eval_dataset.coco
    categories = sorted(coco.cats)
    results = []
    kernel = np.ones((3, 3), np.uint8)
    for ann in coco.dataset['annotations']:
        mask = coco.annToMask(ann)
        mask = cv2.dilate(mask, kernel) if rng.uniform() < 0.5 else cv2.erode(mask, kernel)
        x, y, w, h = (float(v) + rng.normal(0.0, 2.0) for v in ann['bbox'])
        result = {
            'image_id': ann['image_id'],
            'category_id': int(rng.choice(categories)) if rng.uniform() < 0.15
            else ann['category_id'],
            'bbox': [x, y, max(w, 1.0), max(h, 1.0)],
            'score': float(rng.uniform(0.05, 1.0)),
            'segmentation': _rle(mask),
        }
        if rng.uniform() < 0.5:
            result['mask_score'] = float(rng.uniform(0.05, 1.0))
        results.append(result)
    for image_id, image in coco.imgs.items():  # false positives
        for _ in range(2):
            mask = np.zeros((image['height'], image['width']), np.uint8)
            x, y = rng.integers(0, 70, 2)
            mask[y:y + 20, x:x + 20] = 1
            results.append({'image_id': image_id, 'category_id': int(rng.choice(categories)),
                            'bbox': [float(x), float(y), 20.0, 20.0],
                            'score': float(rng.uniform(0.05, 0.6)), 'segmentation': _rle(mask)})
    return results
