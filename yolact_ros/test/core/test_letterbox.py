"""Letterboxed input: a camera frame keeps its aspect, and detections map back exactly.

The known answer: letterboxing an ``H x W`` image is the same network input as squashing the
image padded to a square, so its detections must be that square's detections cut to ``H x W``.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from yolact_ros.cli.common import bundled_weights
from yolact_ros.config import PostprocessConfig
from yolact_ros.data.synthetic import random_scene
from yolact_ros.data.synthetic_dataset import generate_dataset
from yolact_ros.data.transforms import Letterbox, Sample
from yolact_ros.inference import Segmenter
from yolact_ros.postprocess import paste_masks, Postprocessor
from yolact_ros.preprocess import letterbox_shape, Preprocessor


@pytest.fixture(scope='module')
def bundled():
    """Return the bundled model's network squashing its input, and letterboxing it."""
    letterbox = Segmenter.from_weights(bundled_weights(), device='cpu')
    assert letterbox.config.letterbox  # the bundled model was trained so
    squash = Segmenter(letterbox.model, replace(letterbox.config, letterbox=False), device='cpu')
    return squash, letterbox


def scene(height: int, width: int, seed: int = 3) -> np.ndarray:
    return random_scene(np.random.default_rng(seed), height, width).image


@pytest.mark.parametrize('size,expected', [((480, 640), (120, 160)), ((720, 1280), (90, 160)),
                                           ((640, 480), (160, 120)), ((100, 100), (160, 160))])
def test_letterbox_shape_fits_the_long_side(size, expected):
    assert letterbox_shape(*size, 160) == expected


def test_the_input_is_the_scaled_image_then_the_mean_colour(bundled):
    _, letterbox = bundled
    image = scene(480, 640)
    side = letterbox.config.input_size
    inputs = letterbox.preprocessor([image])  # (1, 3, S, S); the image in the top 3/4
    assert inputs.shape == (1, 3, side, side)
    assert torch.all(inputs[:, :, side * 3 // 4:] == 0)  # normalised mean colour
    assert inputs[:, :, :side * 3 // 4].abs().sum(dim=(0, 1)).min() > 0  # every row has content
    assert letterbox.preprocessor.content_fractions([(480, 640)]) == [(0.75, 1.0)]


def test_detections_are_the_padded_squares_cut_to_the_image(bundled):
    """At the shipped thresholds, on a 4:3 scene: same boxes, scores, classes and masks."""
    squash, letterbox = bundled
    image = scene(480, 640)
    ours = letterbox(image)
    # The same network input, post-processed as a squashed 640 x 640 image, then cut.
    with torch.inference_mode():
        outputs = letterbox.model(letterbox.preprocessor([image]))
        (square,) = Postprocessor(PostprocessConfig())(outputs, [(640, 640)])
    assert len(ours) >= 3  # the model finds the scene's shapes
    assert len(ours) == len(square['scores'])
    np.testing.assert_array_equal(ours.scores, square['scores'].numpy())
    boxes = square['boxes'].numpy().copy()
    boxes[:, [1, 3]] = np.minimum(boxes[:, [1, 3]], 480)
    np.testing.assert_array_equal(ours.boxes, boxes)
    masks = paste_masks(square['mask_windows'], len(ours), (640, 640))[:, :480].numpy()
    np.testing.assert_array_equal(ours.masks, masks)


def test_a_16_by_9_frame_windows_equal_the_full_upsampling(bundled):
    """Content 90/160 of the prototype rows (fractional): the fast path equals the reference."""
    _, letterbox = bundled
    image = scene(720, 1280, seed=5)
    with torch.inference_mode():
        outputs = letterbox.model(letterbox.preprocessor([image]))
    contents = letterbox.preprocessor.content_fractions([(720, 1280)])
    assert contents == [(0.5625, 1.0)]
    config = PostprocessConfig()
    (fast,) = Postprocessor(config)(outputs, [(720, 1280)], contents)
    (reference,) = Postprocessor(config, full_upsample=True)(outputs, [(720, 1280)], contents)
    count = len(fast['scores'])
    assert count >= 3
    assert torch.equal(fast['boxes'], reference['boxes'])
    assert (fast['boxes'][:, 3] <= 720).all()
    differ = (paste_masks(fast['mask_windows'], count, (720, 1280))
              != paste_masks(reference['mask_windows'], count, (720, 1280)))
    assert differ.sum() <= 1e-5 * differ.numel()  # float rounding at the threshold only


def test_a_detection_in_the_padding_is_dropped():
    detections = {'box': torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.2, 0.8, 0.4, 0.95]]),
                  'coef': torch.ones(2, 4), 'class': torch.tensor([0, 1]),
                  'score': torch.tensor([0.9, 0.8]), 'proto': torch.ones(40, 40, 4)}
    result = Postprocessor(PostprocessConfig()).to_image(detections, (480, 640), (0.75, 1.0))
    assert result['classes'].tolist() == [0]
    assert result['boxes'].tolist() == [[64, 64, 320, 320]]  # 0.1 * 640, 0.1 / 0.75 * 480


def test_squash_models_are_unchanged(bundled):
    squash, _ = bundled
    image = scene(480, 640)
    assert squash.preprocessor.content_fractions([(480, 640)]) == [(1.0, 1.0)]
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    side = squash.config.input_size
    resized = torch.nn.functional.interpolate(pixels, size=(side, side), mode='bilinear',
                                              align_corners=False)
    mean = torch.tensor(squash.config.pixel_mean_bgr).view(1, 3, 1, 1)
    std = torch.tensor(squash.config.pixel_std_bgr).view(1, 3, 1, 1)
    expected = ((resized - mean) / std)[:, (2, 1, 0)]
    assert torch.equal(squash.preprocessor([image]), expected)


def test_training_letterbox_matches_the_inference_input():
    """The training transform places the image where the Preprocessor does (cv2 vs torch)."""
    mean = (103.94, 116.78, 123.68)
    image = scene(480, 640)
    masks = np.zeros((1, 480, 640), np.uint8)
    masks[0, 100:300, 200:400] = 1
    sample = Sample(image.astype(np.float32), masks, np.array([[200, 100, 400, 300]], np.float32),
                    np.array([0]), np.array([False]))
    out = Letterbox(160, mean)(sample)
    assert out.image.shape == (160, 160, 3) and out.masks.shape == (1, 160, 160)
    np.testing.assert_allclose(out.boxes, [[50, 25, 100, 75]])
    assert out.masks[0].sum() == 50 * 50 and out.masks[0, 25:75, 50:100].all()
    np.testing.assert_allclose(out.image[120:], np.broadcast_to(mean, (40, 160, 3)), atol=1e-4)
    preprocessor = Preprocessor(160, mean, (1.0, 1.0, 1.0), device=torch.device('cpu'),
                                letterbox=True)
    network = preprocessor([image])[0].permute(1, 2, 0).numpy()[:, :, ::-1] + np.array(mean)
    assert np.abs(network[:120] - out.image[:120]).mean() < 2.0  # bilinear: cv2 vs torch
    np.testing.assert_allclose(network[120:], out.image[120:], atol=1e-3)


def test_camera_shaped_synthetic_sets(tmp_path):
    import json

    generate_dataset(tmp_path, num_images=3, size=[64, (80, 60), (96, 54)], seed=0)
    images = json.loads((tmp_path / 'annotations.json').read_text())['images']
    assert [(i['width'], i['height']) for i in images] == [(64, 64), (80, 60), (96, 54)]
    import cv2
    assert cv2.imread(str(tmp_path / 'images' / '000002.png')).shape == (54, 96, 3)


def test_a_batch_of_frames_of_several_shapes_equals_one_at_a_time(bundled):
    """Several cameras in one call (the node's batching): each frame keeps its own mapping."""
    _, letterbox = bundled
    frames = [scene(480, 640, seed=7), scene(720, 1280, seed=8), scene(256, 256, seed=9)]
    batch = letterbox(frames)
    for frame, together in zip(frames, batch):
        alone = letterbox(frame)
        assert together.image_size == frame.shape[:2]
        np.testing.assert_array_equal(together.boxes, alone.boxes)
        np.testing.assert_allclose(together.scores, alone.scores, atol=1e-5)
        # The same masks, up to a pixel whose value sits on the threshold: a batch of 3 may
        # take other convolution kernels than a batch of 1 (seen with 1 thread: 1 pixel of
        # 7.4 million).
        assert together.masks.shape == alone.masks.shape
        assert (together.masks != alone.masks).sum() <= max(1, together.masks.size // 10**6)
