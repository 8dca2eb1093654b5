"""The Segmenter: input handling, batching, thresholds, result fields."""

from dataclasses import replace

import numpy as np
import pytest

from yolact_ros.config import PostprocessConfig
from yolact_ros.inference import resolve_device, Segmenter
from yolact_ros.preprocess import to_bgr8


@pytest.fixture(scope='module')
def segmenter(tiny_weights):
    # A low threshold so the random tiny model produces detections to check.
    return Segmenter.from_weights(tiny_weights, device='cpu',
                                  postprocess=PostprocessConfig(score_threshold=0.0))


def image(height=60, width=80, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_results_are_in_source_pixels_with_names_and_category_ids(segmenter):
    result = segmenter(image(60, 80))
    assert len(result) > 0
    assert result.masks.shape == (len(result), 60, 80) and result.masks.dtype == bool
    assert result.boxes.shape == (len(result), 4)
    assert (result.boxes[:, [0, 2]] <= 80).all() and (result.boxes[:, [1, 3]] <= 60).all()
    assert (result.boxes >= 0).all()
    assert np.all(np.diff(result.scores) <= 0)  # sorted by score
    names = dict(zip(range(3), ('circle', 'square', 'ring')))
    assert result.class_names == [names[c] for c in result.class_ids]
    assert result.category_ids.tolist() == [(1, 3, 7)[c] for c in result.class_ids]
    assert result.times.inference_ms > 0


def test_a_batch_of_different_sizes_gives_the_same_as_one_by_one(segmenter):
    images = [image(60, 80, 1), image(33, 47, 2)]
    batch = segmenter(images)
    for single_image, batched in zip(images, batch):
        single = segmenter(single_image)
        np.testing.assert_allclose(batched.scores, single.scores, atol=1e-5)
        np.testing.assert_array_equal(batched.boxes, single.boxes)
        assert batched.image_size == single_image.shape[:2]


def test_grayscale_bgra_and_16_bit_inputs_are_converted():
    bgr = image(10, 12)
    gray = bgr[:, :, 0]
    np.testing.assert_array_equal(to_bgr8(gray), np.repeat(gray[:, :, None], 3, axis=2))
    bgra = np.concatenate([bgr, np.full((10, 12, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_bgr8(bgra), bgr)
    deep = bgr.astype(np.uint16) * 256 + 255
    np.testing.assert_array_equal(to_bgr8(deep), bgr)


@pytest.mark.parametrize('bad, message', [
    (np.zeros((0, 10, 3), np.uint8), 'image is empty'),
    (np.zeros((10, 10, 2), np.uint8), r'got shape \(10, 10, 2\)'),
    (np.zeros((10, 10, 3), np.float32), 'expected uint8 or uint16 pixels, got float32'),
    ([[1, 2]], 'no images given|expected a numpy image array'),
])
def test_malformed_inputs_are_clear_value_errors(segmenter, bad, message):
    with pytest.raises(ValueError, match=message):
        segmenter(bad if isinstance(bad, np.ndarray) else [np.asarray(bad).tolist()])


def test_thresholds_change_at_runtime(segmenter):
    frame = image(60, 80, 3)
    everything = segmenter(frame)
    try:
        segmenter.postprocess = replace(segmenter.postprocess, max_detections=2)
        assert len(segmenter(frame)) == min(2, len(everything))
        segmenter.postprocess = replace(segmenter.postprocess, max_detections=100,
                                        score_threshold=float(everything.scores[0]))
        assert len(segmenter(frame)) < len(everything)
    finally:
        segmenter.postprocess = PostprocessConfig(score_threshold=0.0)


def test_an_image_without_detections_gives_empty_arrays_of_the_right_shape(segmenter):
    try:
        segmenter.postprocess = PostprocessConfig(score_threshold=1.0)
        result = segmenter(image(20, 30))
    finally:
        segmenter.postprocess = PostprocessConfig(score_threshold=0.0)
    assert len(result) == 0
    assert result.masks.shape == (0, 20, 30) and result.boxes.shape == (0, 4)


def test_postprocess_config_rejects_out_of_range_values():
    with pytest.raises(ValueError, match='nms_iou must be in'):
        PostprocessConfig(nms_iou=0.0)
    with pytest.raises(ValueError, match='score_threshold'):
        PostprocessConfig(score_threshold=1.5)


def test_devices_are_validated(tiny_weights):
    assert resolve_device('cpu').type == 'cpu'
    with pytest.raises(ValueError, match='unknown device'):
        resolve_device('gpu0')
    with pytest.raises(ValueError, match='half precision'):
        Segmenter.from_weights(tiny_weights, device='cpu', half=True)
