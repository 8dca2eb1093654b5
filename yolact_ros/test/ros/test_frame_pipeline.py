"""The node's per-frame path: message in, output messages out (rosbags classes, no rclpy)."""

import math

import cv2
import numpy as np
import pytest
from ros_harness import FakeSegmenter
from test_image_conversion import encode

from yolact_ros.ros.frame_pipeline import (
    BadFrameError, decode_image, InferenceError, OutputOptions, process_frame)
from yolact_ros.ros.mask_encoding import decode_mask, RLE_COCO
from yolact_ros.ros.messages import build_header, rosbags_message_types
from yolact_ros.ros.msg_definitions import rosbags_typestore
from yolact_ros.ros.params import NodeParams
from yolact_ros.tracking import StreamTracker, TrackerConfig
from yolact_ros.visualize import draw_overlay

TYPESTORE = rosbags_typestore()
TYPES = rosbags_message_types(TYPESTORE)
STAMP_NS = 1_700_000_000_000_000_123
BGR = np.random.default_rng(0).integers(0, 256, (6, 8, 3), np.uint8)


def image_msg(encoding='rgb8', pixels=BGR, step=None, frame_id='cam'):
    row_step, data = encode(encoding, pixels)
    return TYPESTORE.types['sensor_msgs/msg/Image'](
        header=build_header(TYPES, STAMP_NS, frame_id), height=pixels.shape[0],
        width=pixels.shape[1], encoding=encoding, is_bigendian=0,
        step=row_step if step is None else step, data=np.frombuffer(data, np.uint8))


def compressed_msg(payload: bytes):
    return TYPESTORE.types['sensor_msgs/msg/CompressedImage'](
        header=build_header(TYPES, STAMP_NS, 'cam'), format='png',
        data=np.frombuffer(payload, np.uint8))


def test_decode_image_reads_raw_and_compressed_messages_by_their_fields():
    np.testing.assert_array_equal(decode_image(image_msg('rgb8')), BGR)
    png = cv2.imencode('.png', BGR)[1].tobytes()
    np.testing.assert_array_equal(decode_image(compressed_msg(png)), BGR)
    with pytest.raises(BadFrameError, match='step is smaller than width'):
        decode_image(image_msg('rgb8', step=10))
    with pytest.raises(BadFrameError, match=r"cannot decode compressed image \(format 'png', "
                                            r'3 bytes\)'):
        decode_image(compressed_msg(b'\x89PN'))


def test_default_options_build_instances_and_detections_with_the_input_header():
    segmenter = FakeSegmenter()
    msg = image_msg()
    result = process_frame(msg, segmenter, TYPES, OutputOptions(), dropped_frames=4,
                           now_ns=lambda: STAMP_NS + 25_000_000)
    assert list(result.messages) == ['instances', 'detections']
    np.testing.assert_array_equal(segmenter.last_image, BGR)
    instances, detections = result.messages['instances'], result.messages['detections']
    assert instances.header is msg.header and detections.header is msg.header
    assert (instances.height, instances.width, instances.dropped_frames) == (6, 8, 4)
    assert instances.latency_ms == pytest.approx(25.0) and result.latency_ms == 25.0
    assert [(i.id, i.class_name) for i in instances.instances] == [(1, 'person'), (2, 'car')]
    assert [d.results[0].hypothesis.class_id for d in detections.detections] == ['person', 'car']
    # FakeSegmenter's stage times pass through; decoding and building are measured.
    assert (result.times.preprocess_ms, result.times.inference_ms,
            result.times.postprocess_ms) == (1.0, 2.0, 3.0)
    assert result.times.total_ms == pytest.approx(
        6.0 + result.times.decode_ms + result.times.build_ms)


def test_tracker_sees_the_detections_at_the_image_stamp_and_the_messages_its_ids():
    calls = []

    def tracker(detections, stamp_s):
        calls.append((len(detections), stamp_s))
        return np.array([5, 9], np.int64)

    result = process_frame(image_msg(), FakeSegmenter(), TYPES, OutputOptions(), tracker=tracker)
    assert calls == [(2, pytest.approx(STAMP_NS / 1e9))]
    np.testing.assert_array_equal(result.track_ids, [5, 9])
    instances, detections = result.messages['instances'], result.messages['detections']
    assert [(i.id, i.track_id) for i in instances.instances] == [(1, 5), (2, 9)]
    assert [d.id for d in detections.detections] == ['5', '9']
    untracked = process_frame(image_msg(), FakeSegmenter(), TYPES, OutputOptions())
    assert untracked.track_ids is None
    assert [d.id for d in untracked.messages['detections'].detections] == ['1', '2']


def test_overlay_shows_track_ids_and_trails_when_tracking():
    stream = StreamTracker(TrackerConfig(mask_weight=0.0))
    options = OutputOptions(overlay=True)
    for _ in range(2):
        result = process_frame(image_msg(), FakeSegmenter(), TYPES, options, tracker=stream,
                               trails=stream.trails)
    expected = draw_overlay(BGR, result.detections, track_ids=result.track_ids,
                            trails=stream.trails.points())
    overlay = result.messages['overlay']
    drawn = np.frombuffer(bytes(overlay.data), np.uint8).reshape(BGR.shape)
    np.testing.assert_array_equal(drawn, expected)
    assert not np.array_equal(expected, draw_overlay(BGR, result.detections))


def test_encodings_and_image_outputs():
    options = OutputOptions(mask_encoding='rle_coco', detection_class_id='id', detections=True,
                            instance_mask=True, overlay=True)
    result = process_frame(image_msg(), FakeSegmenter(), TYPES, options)
    assert list(result.messages) == ['instances', 'detections', 'instance_mask', 'overlay']
    person, car = result.messages['instances'].instances
    assert (car.id, car.class_name, car.mask.encoding) == (2, 'car', RLE_COCO)
    expected_mask = np.zeros((6, 8), bool)
    expected_mask[1:3, 6:] = True  # FakeSegmenter's 'car': rows H/4..H/2, columns 3W/4..W
    np.testing.assert_array_equal(decode_mask(car.mask, 6, 8), expected_mask)
    assert [d.results[0].hypothesis.class_id
            for d in result.messages['detections'].detections] == ['0', '1']
    labels = np.frombuffer(result.messages['instance_mask'].data.tobytes(), '<u2').reshape(6, 8)
    expected_labels = np.zeros((6, 8), np.uint16)
    expected_labels[:, :4] = 1  # 'person': the left half
    expected_labels[expected_mask] = 2
    np.testing.assert_array_equal(labels, expected_labels)
    overlay = result.messages['overlay']
    assert (overlay.encoding, overlay.height, overlay.width) == ('bgr8', 6, 8)
    # Offline (no clock): the latency is the frame's processing time so far.
    assert 0 < result.latency_ms < 60_000 and not math.isnan(result.latency_ms)


def test_node_params_select_the_options():
    params = NodeParams.from_values({'classes': ['dog'], 'publish_detections': False,
                                     'publish_overlay': False, 'mask_encoding': 'rle_coco'})
    options = OutputOptions.from_params(params, instance_mask=True, overlay=True)
    assert options == OutputOptions(mask_encoding='rle_coco',
                                    detection_class_id='name', instances=True,
                                    detections=False, instance_mask=True, overlay=False)
    assert not OutputOptions.from_params(params, instance_mask=False,
                                         overlay=True).instance_mask
    with pytest.raises(ValueError, match="mask_encoding must be one of .*, got 'png'"):
        OutputOptions(mask_encoding='png')


def test_segmenter_failure_is_an_inference_error_with_the_cause():
    def broken(image):
        raise RuntimeError('CUDA out of memory')

    with pytest.raises(InferenceError, match='CUDA out of memory') as raised:
        process_frame(image_msg(), broken, TYPES, OutputOptions())
    assert isinstance(raised.value.__cause__, RuntimeError)
