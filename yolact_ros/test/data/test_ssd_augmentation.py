"""SSD augmentation: boxes and masks stay consistent; seeded; resize and normalisation."""

import cv2
import numpy as np
import pytest

from yolact_ros.config import IMAGENET_MEAN_BGR, IMAGENET_STD_BGR
from yolact_ros.data.transforms import (
    Expand, PhotometricDistort, RandomMirror, RandomSampleCrop, Resize, resize_masks, Sample,
    SSDAugmentation, to_network_input)


def _mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Pixel-edge x1 y1 x2 y2 of each non-empty mask."""
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def _rect_sample(rng: np.random.Generator, height: int = 60, width: int = 80,
                 count: int = 4, crowd: int = 0) -> Sample:
    """Random image with axis-aligned rectangle instances (box == mask box exactly)."""
    image = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    masks = np.zeros((count, height, width), np.uint8)
    boxes = np.zeros((count, 4), np.float32)
    for i in range(count):
        x1, y1 = int(rng.integers(0, width - 12)), int(rng.integers(0, height - 12))
        x2, y2 = int(rng.integers(x1 + 6, width + 1)), int(rng.integers(y1 + 6, height + 1))
        masks[i, y1:y2, x1:x2] = 1
        boxes[i] = (x1, y1, x2, y2)
    return Sample(image, masks, boxes, np.arange(count, dtype=np.int64),
                  np.arange(count) >= count - crowd)


def _disk_sample() -> Sample:
    masks = np.zeros((2, 50, 70), np.uint8)
    cv2.circle(masks[0], (20, 25), 12, 1, -1)
    cv2.ellipse(masks[1], (50, 20), (15, 8), 30, 0, 360, 1, -1)
    image = np.full((50, 70, 3), 128, np.float32)
    return Sample(image, masks, _mask_boxes(masks), np.array([0, 1]), np.zeros(2, bool))


def test_mirror_flips_boxes_with_masks():
    sample = _disk_sample()
    flipped = RandomMirror(p=1.0)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(flipped.boxes, _mask_boxes(flipped.masks))
    np.testing.assert_array_equal(flipped.masks[0], sample.masks[0][:, ::-1])
    assert not np.array_equal(flipped.boxes, sample.boxes)


def test_expand_moves_boxes_with_masks_and_fills_with_the_mean():
    sample = _disk_sample()
    out = Expand(IMAGENET_MEAN_BGR, p=1.0)(sample, np.random.default_rng(3))
    assert out.height > sample.height and out.width > sample.width
    np.testing.assert_array_equal(out.boxes, _mask_boxes(out.masks))
    assert out.masks.sum() == sample.masks.sum()
    np.testing.assert_allclose(out.image[0, 0], IMAGENET_MEAN_BGR, rtol=1e-6)


def test_random_crop_keeps_centred_boxes_and_a_non_crowd_instance():
    crops = 0
    for seed in range(30):
        sample = _rect_sample(np.random.default_rng(seed), count=5, crowd=2)
        ys, xs = np.mgrid[0:sample.height, 0:sample.width]
        sample.image[..., 0], sample.image[..., 1] = xs, ys  # pixels tell where they came from
        out = RandomSampleCrop()(sample, np.random.default_rng(seed))
        assert (~out.crowd).any()
        if out.height == sample.height and out.width == sample.width:
            continue
        crops += 1
        x1, y1 = out.image[0, 0, :2]
        x2, y2 = out.image[-1, -1, :2] + 1
        centres = (sample.boxes[:, :2] + sample.boxes[:, 2:]) / 2
        inside = ((centres > (x1, y1)) & (centres < (x2, y2))).all(axis=1)
        np.testing.assert_array_equal(out.labels, sample.labels[inside])
        assert out.masks.shape[1:] == (out.height, out.width)
        nonempty = out.masks.reshape(len(out.masks), -1).any(1)
        # Rectangles stay rectangles: clipped box == box of the cropped mask.
        np.testing.assert_array_equal(out.boxes[nonempty], _mask_boxes(out.masks[nonempty]))
        assert len(out.boxes) <= len(sample.boxes)
    assert crops > 15


def test_random_crop_leaves_crowd_only_images_alone():
    sample = _rect_sample(np.random.default_rng(0), count=2, crowd=2)
    out = RandomSampleCrop()(sample, np.random.default_rng(0))
    assert out is sample


@pytest.mark.parametrize('seed', range(12))
def test_full_augmentation_keeps_boxes_on_their_masks(seed):
    sample = _rect_sample(np.random.default_rng(100 + seed), count=4, crowd=1)
    augment = SSDAugmentation(64, IMAGENET_MEAN_BGR)
    out = augment(sample, np.random.default_rng(seed))
    assert out.image.shape == (64, 64, 3) and out.masks.shape[1:] == (64, 64)
    sides = out.boxes[:, 2:] - out.boxes[:, :2]
    assert (sides > 4).all()
    for box, mask in zip(out.boxes, out.masks):
        assert mask.any()
        # Resizing a rectangle mask (bilinear, threshold 0.5) moves its edges by < 1 px.
        np.testing.assert_allclose(_mask_boxes(mask[None])[0], box, atol=1.0)
    again = augment(sample, np.random.default_rng(seed))
    np.testing.assert_array_equal(again.image, out.image)
    np.testing.assert_array_equal(again.boxes, out.boxes)


def test_augmentation_differs_between_seeds():
    sample = _rect_sample(np.random.default_rng(0))
    augment = SSDAugmentation(64, IMAGENET_MEAN_BGR)
    outs = [augment(sample, np.random.default_rng(s)).image for s in range(4)]
    assert len({o.tobytes() for o in outs}) == 4


def test_photometric_changes_pixels_only():
    sample = _disk_sample()
    sample.image[:] = np.random.default_rng(0).uniform(0, 255, sample.image.shape)
    changed = 0
    for seed in range(5):
        out = PhotometricDistort()(sample, np.random.default_rng(seed))
        assert out.masks is sample.masks and out.boxes is sample.boxes
        assert out.image.dtype == np.float32 and 0 <= out.image.min() <= out.image.max() <= 255
        changed += not np.allclose(out.image, sample.image, atol=1e-3)
    assert changed >= 3


def test_resize_drops_boxes_of_four_pixels_or_less():
    masks = np.zeros((3, 100, 100), np.uint8)
    boxes = np.array([[0, 0, 50, 50], [10, 10, 18, 60], [20, 20, 29, 70]], np.float32)
    for m, (x1, y1, x2, y2) in zip(masks, boxes.astype(int)):
        m[y1:y2, x1:x2] = 1
    sample = Sample(np.zeros((100, 100, 3), np.float32), masks, boxes, np.arange(3),
                    np.zeros(3, bool))
    out = Resize(50)(sample)
    np.testing.assert_array_equal(out.labels, [0, 2])  # box 1 is 4 px wide at 50 px
    np.testing.assert_allclose(out.boxes, boxes[[0, 2]] / 2)
    assert len(Resize(50, min_box_size=None)(sample).boxes) == 3


def test_resize_masks_handles_more_instances_than_cv2_channels():
    masks = np.zeros((130, 20, 20), np.uint8)
    for i in range(130):
        masks[i, i % 20, :] = 1
    out = resize_masks(masks, (40, 40))
    assert out.shape == (130, 40, 40)
    assert out[129].sum() == out[9].sum() > 0 and out[129, 18:20].all()


def test_network_input_normalises_in_bgr_then_swaps_to_rgb():
    image = np.zeros((2, 3, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30  # B, G, R
    tensor = to_network_input(image, IMAGENET_MEAN_BGR, IMAGENET_STD_BGR)
    assert tuple(tensor.shape) == (3, 2, 3)
    expected_rgb = [(30 - IMAGENET_MEAN_BGR[2]) / IMAGENET_STD_BGR[2],
                    (20 - IMAGENET_MEAN_BGR[1]) / IMAGENET_STD_BGR[1],
                    (10 - IMAGENET_MEAN_BGR[0]) / IMAGENET_STD_BGR[0]]
    np.testing.assert_allclose(tensor[:, 0, 0].numpy(), expected_rgb, rtol=1e-6)
