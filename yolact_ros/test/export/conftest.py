"""Exports of the tiny model shared by the export tests (each export takes seconds)."""

import shutil

import pytest


@pytest.fixture(scope='session')
def exported(tmp_path_factory, tiny_weights):
    """Copy the tiny checkpoint and load it on ONNX Runtime (exported on the fly).

    Returns ``(weights, onnx_file, segmenter)``; the ONNX file (dynamic batch) is the one
    ``load_segmenter`` cached beside the copy.
    """
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.export.backends import load_segmenter

    folder = tmp_path_factory.mktemp('exported')
    weights = shutil.copy(tiny_weights, folder / 'tiny.safetensors')
    # A threshold of 0 so that the random model gives detections to compare.
    segmenter = load_segmenter(weights, backend='onnxruntime', device='cpu',
                               postprocess=PostprocessConfig(score_threshold=0.0))
    (onnx_file,) = (folder / '.yolact_cache').glob('*.onnx')
    return weights, onnx_file, segmenter
