"""Score thresholds and the class allow-list, on the bundled demo model (torch, ONNX Runtime).

A final ``score_threshold`` T only removes detections: the result at T is the result at 0 without
the detections scoring ``<= T`` (upstream's ``postprocess``), whatever T, whichever backend.
"""

from dataclasses import replace
import shutil

import numpy as np
import pytest
import torch

from yolact_ros.config import PostprocessConfig
from yolact_ros.data.synthetic import CATEGORIES, random_scene
from yolact_ros.inference import Segmenter
from yolact_ros.postprocess import Postprocessor
from yolact_ros.weights import demo_weights

THRESHOLDS = (0.05, 0.3, 0.5, 0.7, 0.9)
CLASS_NAMES = dict(CATEGORIES)


def scenes(count=4, size=256):
    """Return synthetic scenes like the demo model's training data (fixed seeds).

    ``size``: ``S`` for squares or ``(H, W)``.
    """
    height, width = (size, size) if isinstance(size, int) else size
    return [random_scene(np.random.default_rng(seed), height, width, 'low')
            for seed in range(count)]


@pytest.fixture(scope='module')
def torch_segmenter():
    return Segmenter.from_weights(demo_weights(), device='cpu')


@pytest.fixture(scope='module')
def onnx_segmenter(tmp_path_factory):
    pytest.importorskip('onnxruntime', reason='onnxruntime not installed (pip install '
                        'yolact_ros[export])')
    from yolact_ros.export.backends import load_segmenter

    # A copy, so the exported graph is cached in a temporary folder, not in weights/.
    weights = shutil.copy(demo_weights(), tmp_path_factory.mktemp('onnx') / 'demo.safetensors')
    return load_segmenter(weights, backend='onnxruntime', device='cpu')


def at_threshold(segmenter, image, threshold):
    segmenter.postprocess = PostprocessConfig(score_threshold=threshold)
    return segmenter(image)


def assert_same_detections(ours, expected):
    assert ours.class_names == expected.class_names
    np.testing.assert_array_equal(ours.scores, expected.scores)
    np.testing.assert_array_equal(ours.boxes, expected.boxes)
    np.testing.assert_array_equal(ours.masks, expected.masks)


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
def test_a_threshold_only_removes_detections_scoring_at_or_below_it(backend, request):
    segmenter = request.getfixturevalue(f'{"onnx" if backend == "onnxruntime" else backend}'
                                        '_segmenter')
    removed_some = set()
    for scene in scenes():
        everything = at_threshold(segmenter, scene.image, 0.0)
        assert len(everything) > 0
        for threshold in THRESHOLDS:
            ours = at_threshold(segmenter, scene.image, threshold)
            keep = np.flatnonzero(everything.scores > threshold)
            assert_same_detections(ours, everything.select(keep))
            assert (ours.scores > threshold).all()
            if 0 < len(keep) < len(everything):
                removed_some.add(threshold)
    # Each threshold removed something somewhere, and kept something: the check had teeth.
    assert removed_some >= {0.3, 0.5, 0.7}


def test_the_default_threshold_gives_about_one_detection_per_object(torch_segmenter):
    """At the node's 0.3, scenes of 3-6 shapes give about one detection per shape.

    Before the final threshold existed, each object came once per class (6 per object). On
    200 held-out images the bundled model gives 1.39 per object on squares and 1.30 on 640x480
    frames at 0.3; confident (> 0.9) detections are of classes in the scene.
    """
    found = objects = 0
    for scene in scenes(count=4) + scenes(count=4, size=(480, 640)):
        detections = at_threshold(torch_segmenter, scene.image, 0.3)
        truth = sorted(CLASS_NAMES[instance.category_id] for instance in scene.instances)
        assert len(detections) <= 2 * len(truth), (detections.class_names, truth)
        assert (detections.scores > 0.3).all()
        confident = detections.select(np.flatnonzero(detections.scores > 0.9))
        assert set(confident.class_names) <= set(truth)
        found, objects = found + len(detections), objects + len(truth)
    assert 0.8 <= found / objects <= 1.6, (found, objects)


def test_the_onnx_runtime_backend_agrees_with_torch_at_the_node_default(
        torch_segmenter, onnx_segmenter):
    for scene in scenes(count=2):
        ours = at_threshold(onnx_segmenter, scene.image, 0.3)
        theirs = at_threshold(torch_segmenter, scene.image, 0.3)
        assert ours.class_names == theirs.class_names
        np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-3)
        assert np.abs(ours.boxes - theirs.boxes).max(initial=0) <= 1


def crowded_outputs(num_crowd=20):
    """Network outputs: ``num_crowd`` confident, non-overlapping class-0 boxes, one class-1 box.

    The class-1 box scores 0.6, below every class-0 box (0.95).
    """
    num_priors = num_crowd + 1
    logits = torch.full((1, num_priors, 4), -10.0)  # background, class 0, 1, 2
    logits[0, :num_crowd, 1] = 10.0  # softmax ~1 for class 0
    logits[0, num_crowd, 0] = 0.0
    logits[0, num_crowd, 2] = float(np.log(0.6 / 0.4))  # 0.6 class 1, 0.4 background
    # Priors on a grid far apart: no suppression between them; zero offsets keep them as boxes.
    centres = [((i % 7 + 0.5) / 7, (i // 7 + 0.5) / 7) for i in range(num_priors)]
    priors = torch.tensor([[x, y, 0.05, 0.05] for x, y in centres])
    return {'loc': torch.zeros((1, num_priors, 4)), 'conf': logits,
            'mask_coef': torch.zeros((1, num_priors, 4)), 'proto': torch.zeros((1, 8, 8, 4)),
            'priors': priors}


def test_allowed_classes_are_never_crowded_out():
    outputs = crowded_outputs()
    config = PostprocessConfig(max_detections=5, score_threshold=0.3)
    crowded = Postprocessor(config).detect(outputs)[0]
    assert crowded['class'].tolist() == [0] * 5  # class 1 is pushed out by max_detections
    (allowed,) = Postprocessor(replace(config, classes=(1,))).detect(outputs)[0]['class']
    assert int(allowed) == 1
    both = Postprocessor(replace(config, classes=(0, 1), max_detections=30)).detect(outputs)[0]
    assert both['class'].tolist() == [0] * 20 + [1]
    with pytest.raises(ValueError, match=r'classes \[5\] out of range: the model has 3'):
        Postprocessor(replace(config, classes=(5,))).detect(outputs)


def test_the_allow_list_keeps_only_its_classes_on_the_real_model(torch_segmenter):
    scene = scenes(count=1)[0]
    everything = at_threshold(torch_segmenter, scene.image, 0.3)
    name = everything.class_names[-1]
    allowed = torch_segmenter.class_names.index(name)
    torch_segmenter.postprocess = PostprocessConfig(score_threshold=0.3, classes=(allowed,))
    only = torch_segmenter(scene.image)
    assert only.class_names and set(only.class_names) == {name}
    # Candidates of other classes at the same place no longer compete: at least as many.
    assert len(only) >= everything.class_names.count(name)


@pytest.mark.parametrize('kwargs, message', [
    ({'candidate_threshold': 1.0}, 'candidate_threshold must be in'),
    ({'score_threshold': -0.1}, 'score_threshold must be in'),
    ({'classes': (-1,)}, 'classes must be 0-based class indices'),
])
def test_out_of_range_thresholds_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PostprocessConfig(**kwargs)
