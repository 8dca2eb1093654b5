"""WindowedMasks: masks kept as windows give the same full masks as dense arrays."""

import numpy as np
import pytest

from yolact_ros.structures import Detections, WindowedMasks


def windowed_example():
    """Three masks of a 6x8 image: a window, a window at the bottom-right corner, an empty one."""
    first = np.array([[1, 0, 1], [0, 1, 0]], bool)
    corner = np.ones((2, 2), bool)
    origins = np.array([[1, 2], [4, 6], [0, 0]], np.int64)
    return WindowedMasks((6, 8), origins, (first, corner, np.zeros((0, 0), bool)))


def test_full_and_dense_place_each_window_at_its_origin():
    masks = windowed_example()
    expected = np.zeros((3, 6, 8), bool)
    expected[0, 1, 2] = expected[0, 1, 4] = expected[0, 2, 3] = True
    expected[1, 4:6, 6:8] = True
    np.testing.assert_array_equal(masks.to_dense(), expected)
    for index in range(3):
        np.testing.assert_array_equal(masks.full(index), expected[index])
    np.testing.assert_array_equal(masks.select([2, 0]).to_dense(), expected[[2, 0]])
    assert len(masks.select([])) == 0 and masks.select([]).to_dense().shape == (0, 6, 8)


def test_from_dense_round_trips():
    dense = np.random.default_rng(0).random((4, 5, 7)) < 0.4
    np.testing.assert_array_equal(WindowedMasks.from_dense(dense).to_dense(), dense)


@pytest.mark.parametrize('origin, window', [((5, 0), (2, 2)), ((0, 7), (1, 2)),
                                            ((-1, 0), (1, 1))])
def test_a_window_outside_the_image_is_refused(origin, window):
    with pytest.raises(ValueError, match=r'mask window 0 of shape .* is not inside the image 6x8'):
        WindowedMasks((6, 8), np.array([origin]), (np.ones(window, bool),))


def test_detections_masks_are_the_dense_windows():
    masks = windowed_example()
    detections = Detections(
        boxes=np.zeros((3, 4), np.float32), scores=np.ones(3, np.float32),
        class_ids=np.zeros(3, np.int64), class_names=['a'] * 3,
        category_ids=np.ones(3, np.int64), mask_windows=masks, image_size=(6, 8))
    np.testing.assert_array_equal(detections.masks, masks.to_dense())
    assert Detections.empty((6, 8)).masks.shape == (0, 6, 8)


def test_overlay_from_windows_equals_overlay_from_dense_masks():
    from yolact_ros.visualize import draw_overlay

    windowed = windowed_example()
    common = {'boxes': np.array([[2, 1, 5, 3], [6, 4, 8, 6], [0, 0, 0, 0]], np.float32),
              'scores': np.array([0.9, 0.8, 0.7], np.float32),
              'class_ids': np.array([0, 1, 2]), 'class_names': ['a', 'b', 'c'],
              'category_ids': np.array([1, 2, 3]), 'image_size': (6, 8)}
    image = np.random.default_rng(1).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    ours = draw_overlay(image, Detections(mask_windows=windowed, **common))
    dense = WindowedMasks.from_dense(windowed.to_dense())
    reference = draw_overlay(image, Detections(mask_windows=dense, **common))
    np.testing.assert_array_equal(ours, reference)
    assert (ours != image).any()
