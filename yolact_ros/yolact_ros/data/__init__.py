"""Datasets: COCO-format loading, SSD augmentation, dataset specs and synthetic data."""

from yolact_ros.data.coco import CocoDataset, collate, SkippedAnnotation
from yolact_ros.data.spec import DatasetSpec, load_spec, resolve_dataset
from yolact_ros.data.synthetic import (
    CATEGORY_IDS as SYNTH_CATEGORY_IDS, CLASS_NAMES as SYNTH_CLASS_NAMES)
from yolact_ros.data.synthetic_dataset import generate_dataset
from yolact_ros.data.synthetic_sequence import synthetic_video_frames, write_synthetic_video
from yolact_ros.data.transforms import Sample, SSDAugmentation, to_network_input

__all__ = [
    'CocoDataset', 'DatasetSpec', 'SSDAugmentation', 'SYNTH_CATEGORY_IDS', 'SYNTH_CLASS_NAMES',
    'Sample', 'SkippedAnnotation', 'collate', 'generate_dataset', 'load_spec', 'resolve_dataset',
    'synthetic_video_frames', 'to_network_input', 'write_synthetic_video',
]
