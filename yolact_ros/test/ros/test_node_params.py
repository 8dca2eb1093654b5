"""Node parameters: specs match the frozen values, validation gives reasons, YAML is valid."""

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from yolact_ros.config import PostprocessConfig
from yolact_ros.ros.params import (
    field_name, load_segmenter, NodeParams, PARAM_SPECS, SPECS, validate_param)
from yolact_ros.tracking import TrackerConfig

PARAMS_YAML = Path(__file__).resolve().parents[2] / 'config' / 'params.yaml'


def test_specs_and_dataclass_agree():
    assert [f.name for f in fields(NodeParams)] == [field_name(s.name) for s in PARAM_SPECS]
    defaults = NodeParams()
    for spec in PARAM_SPECS:
        assert getattr(defaults, field_name(spec.name)) == spec.default, spec.name
        assert spec.description.endswith('.'), spec.name
        assert validate_param(spec.name, spec.default) is None, spec.name


@pytest.mark.parametrize('name,value,reason', [
    ('score_threshold', 1.5, r'1.5 is outside \[0.0, 1.0\]'),
    ('score_threshold', 'high', 'expected a number'),
    ('score_threshold', float('nan'), 'finite'),
    ('nms_iou', 0.0, r'0.0 is outside \[0.01, 1.0\]'),
    ('top_k', 0, r'outside \[1, 1000\]'),
    ('top_k', 2.5, 'expected an integer'),
    ('top_k', True, 'expected an integer'),
    ('mask_threshold', 1.0, r'outside \[0.01, 0.99\]'),
    ('mask_threshold', 0.0, 'outside'),
    ('threads', -1, r'outside \[0, 64\]'),
    ('threads', 65, 'outside'),
    ('mask_encoding', 'png', "'png' is not one of bitmap_roi, rle_coco"),
    ('detection_class_id', 'uuid', 'not one of name, id'),
    ('image_transport', 'theora', 'not one of raw, compressed'),
    ('qos_reliability', 'fast', 'not one of best_effort, reliable'),
    ('device', 'gpu0', "'gpu0' is not 'auto'"),
    ('device', 'mps', "'mps' is not 'auto'"),
    ('backend', 'tflite', 'not one of torch, onnxruntime, tensorrt, openvino'),
    ('publish_overlay', 1, 'expected a bool'),
    ('classes', 'person', 'expected a list of strings'),
    ('classes', ['person', ' '], 'must not be empty'),
    ('overlay_max_rate', 0.0, 'outside'),
    ('cameras', ['front', '/rear'], "'/rear': a camera is a relative ROS name"),
    ('cameras', ['front', 'front'], "'front' given more than once"),
    ('cameras', ['2nd'], 'relative ROS name'),
    ('tracking.enabled', 'yes', 'expected a bool'),
    ('tracking.high_threshold', 1.5, r'outside \[0.0, 1.0\]'),
    ('tracking.track_buffer', -0.5, r'outside \[0.0, 60.0\]'),
    ('tracking.duplicate_iou', 1.5, r'outside \[0.0, 1.0\]'),
    ('volume', 11, "unknown parameter 'volume'"),
])
def test_invalid_values_are_rejected_with_a_reason(name, value, reason):
    import re

    message = validate_param(name, value)
    assert message is not None and re.search(reason, message), message


def test_classes_checked_against_the_model():
    names = ['person', 'car']
    assert validate_param('classes', ['car'], names) is None
    assert validate_param('classes', [], names) is None
    message = validate_param('classes', ['car', 'unicorn'], names)
    assert "unknown class 'unicorn'" in message and 'person, car' in message
    assert validate_param('classes', ['unicorn']) is None  # no model yet: checked at configure


def test_from_values_collects_every_error_and_with_values_keeps_the_rest():
    with pytest.raises(ValueError) as info:
        NodeParams.from_values({'top_k': 0, 'mask_encoding': 'png'})
    assert 'top_k' in str(info.value) and 'mask_encoding' in str(info.value)
    params = NodeParams(weights='w.safetensors').with_values(
        {'score_threshold': 0.5, 'classes': ['dog']})
    assert (params.weights, params.score_threshold, params.classes) == (
        'w.safetensors', 0.5, ('dog',))
    assert params.postprocess() == PostprocessConfig(score_threshold=0.5, nms_iou=0.5,
                                                     top_k=200, max_detections=100)
    assert NodeParams().with_values({'score_threshold': 1}).score_threshold == 1.0


def test_tracking_parameters_map_to_the_tracker_config():
    params = NodeParams.from_values({'tracking.high_threshold': 0.7,
                                     'tracking.new_track_threshold': 0.8,
                                     'tracking.mask_weight': 0.0, 'tracking.track_buffer': 2.5,
                                     'tracking.duplicate_iou': 0.8})
    assert params.tracking_enabled is True and params.as_dict()['tracking.track_buffer'] == 2.5
    assert params.tracker_config() == TrackerConfig(
        high_threshold=0.7, low_threshold=0.0, new_track_threshold=0.8, mask_weight=0.0,
        track_buffer_s=2.5, duplicate_iou=0.8)
    # A new-track threshold below the high one counts as the high one (each is set alone).
    lowered = params.with_values({'tracking.new_track_threshold': 0.2})
    assert lowered.tracker_config().new_track_threshold == 0.7


def test_params_yaml_declares_every_parameter_with_a_valid_value():
    document = yaml.safe_load(PARAMS_YAML.read_text())
    values = document['/**/segment_node']['ros__parameters']
    # classes: unset means all classes; cameras: unset means one camera on image
    assert set(values) | {'classes', 'cameras'} == set(SPECS)
    params = NodeParams.from_values(values)
    assert params.qos_reliability == 'best_effort' and params.autostart is True


def test_empty_weights_select_the_bundled_demo_model(monkeypatch, tmp_path):
    monkeypatch.setenv('YOLACT_WEIGHTS_DIR', str(tmp_path))
    (tmp_path / 'manifest.json').write_text('{"official": []}')
    with pytest.raises(ValueError, match='yolact_resnet18_synth.safetensors'):
        load_segmenter(NodeParams(weights=''))


def test_depth_range_must_stay_ordered_whichever_end_changes():
    params = NodeParams.from_values({'depth.min_depth': 0.5, 'depth.max_depth': 20.0})
    assert params.with_values({'depth.min_depth': 15.0}).depth_min_depth == 15.0
    with pytest.raises(ValueError, match=r'depth.min_depth \(30.0\) must be below '
                                         r'depth.max_depth \(20.0\)'):
        params.with_values({'depth.min_depth': 30.0})
    with pytest.raises(ValueError, match='must be below'):
        NodeParams.from_values({'depth.min_depth': 5.0, 'depth.max_depth': 5.0})
    assert params.depth_options() == {'erode_px': 2, 'min_depth': 0.5, 'max_depth': 20.0,
                                      'mad_k': 3.0, 'min_points': 20}
