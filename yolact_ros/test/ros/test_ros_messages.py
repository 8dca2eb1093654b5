"""Message builders, checked with rosbags' message classes (no ROS install needed)."""

from dataclasses import replace
import math
from pathlib import Path

import numpy as np
import pytest

from yolact_ros.ros.mask_encoding import BITMAP_ROI, decode_mask, RLE_COCO
from yolact_ros.ros.messages import (
    build_detection_array, build_diagnostics, build_header, build_image, build_instance_array,
    build_label_info, label_image, latency_ms, rosbags_message_types,
    stamp_to_ns)
from yolact_ros.structures import Detections, StageTimes, WindowedMasks

pytest.importorskip('rosbags')


@pytest.fixture(scope='module')
def typestore():
    from yolact_ros.ros.msg_definitions import rosbags_typestore

    return rosbags_typestore()


@pytest.fixture(scope='module')
def types(typestore):
    return rosbags_message_types(typestore)


def make_detections(height=48, width=64) -> Detections:
    masks = np.zeros((3, height, width), bool)
    masks[0, 10:30, 5:25] = True
    masks[1, 20:40, 20:50] = True  # overlaps instance 0
    masks[2, 0:5, 60:64] = True
    return Detections(
        boxes=np.array([[5, 10, 25, 30], [20, 20, 50, 40], [60, 0, 64, 5]], np.float32),
        scores=np.array([0.9, 0.7, 0.4], np.float32), class_ids=np.array([0, 2, 0]),
        class_names=['person', 'dog', 'person'], category_ids=np.array([1, 18, 1]),
        mask_windows=WindowedMasks.from_dense(masks), image_size=(height, width),
        times=StageTimes(1.5, 20.25, 3.0))


def roundtrip(typestore, msg):
    """Serialise to CDR and back: proves every field is present and well typed."""
    data = typestore.serialize_cdr(msg, msg.__msgtype__)
    return typestore.deserialize_cdr(data, msg.__msgtype__), len(data)


@pytest.mark.parametrize('encoding', [BITMAP_ROI, RLE_COCO])
def test_instance_array_fields_and_masks(typestore, types, encoding):
    detections = make_detections()
    header = build_header(types, 1_700_000_000_123_456_789, 'camera_optical')
    msg = build_instance_array(types, header, detections, encoding=encoding, dropped_frames=7,
                               latency=12.5)
    msg, _ = roundtrip(typestore, msg)
    assert msg.header.frame_id == 'camera_optical'
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert (msg.height, msg.width, msg.dropped_frames) == (48, 64, 7)
    assert (msg.preprocess_ms, msg.inference_ms, msg.postprocess_ms, msg.latency_ms) == (
        1.5, 20.25, 3.0, 12.5)
    assert [i.id for i in msg.instances] == [1, 2, 3]
    assert [i.class_name for i in msg.instances] == ['person', 'dog', 'person']
    assert [i.class_id for i in msg.instances] == [0, 2, 0]
    assert msg.instances[0].score == pytest.approx(0.9)
    box = msg.instances[1].bbox  # x1=20 y1=20 x2=50 y2=40 in source pixels
    assert (box.center.position.x, box.center.position.y, box.size_x, box.size_y) == (
        35.0, 30.0, 30.0, 20.0)
    for instance, mask in zip(msg.instances, detections.masks):
        assert instance.mask.encoding == encoding
        assert instance.mask.area == mask.sum()
        np.testing.assert_array_equal(decode_mask(instance.mask, 48, 64), mask)


def as_small_windows(detections: Detections) -> Detections:
    """Return the same detections, each mask kept as a window around it (as the Segmenter)."""
    windows, origins = [], []
    for mask in detections.masks:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        top, left = max(rows[0] - 2, 0), max(cols[0] - 1, 0)  # a margin, as upsampling leaves
        windows.append(mask[top:rows[-1] + 2, left:cols[-1] + 3])
        origins.append((top, left))
    return replace(detections, mask_windows=WindowedMasks(
        detections.image_size, np.array(origins, np.int64), tuple(windows)))


@pytest.mark.parametrize('encoding', [BITMAP_ROI, RLE_COCO])
def test_windowed_masks_give_the_same_messages(typestore, types, encoding):
    dense = make_detections()
    windowed = as_small_windows(dense)
    assert sum(w.size for w in windowed.mask_windows.windows) < dense.masks.size / 3
    header = build_header(types, 1, 'camera')
    ours = build_instance_array(types, header, windowed, encoding=encoding)
    reference = build_instance_array(types, header, dense, encoding=encoding)
    assert typestore.serialize_cdr(ours, ours.__msgtype__) == typestore.serialize_cdr(
        reference, reference.__msgtype__)
    np.testing.assert_array_equal(label_image(windowed), label_image(dense))


def test_empty_detections_and_missing_stamp(typestore, types):
    header = build_header(types, 0)
    msg = build_instance_array(types, header, Detections.empty((4, 5)), encoding=BITMAP_ROI)
    msg, _ = roundtrip(typestore, msg)
    assert msg.instances == [] and (msg.height, msg.width) == (4, 5)
    assert math.isnan(msg.latency_ms)
    assert math.isnan(latency_ms(header.stamp, 5_000_000_000))
    assert latency_ms(build_header(types, 1_000_000_000).stamp, 1_250_000_000) == 250.0
    assert stamp_to_ns(build_header(types, 3_000_000_007).stamp) == 3_000_000_007


@pytest.mark.parametrize('class_id,expected', [('name', ['person', 'dog', 'person']),
                                               ('id', ['0', '2', '0'])])
def test_detection_array(typestore, types, class_id, expected):
    header = build_header(types, 42, 'cam')
    msg, _ = roundtrip(typestore, build_detection_array(types, header, make_detections(),
                                                        class_id=class_id))
    assert msg.header.frame_id == 'cam' and stamp_to_ns(msg.header.stamp) == 42
    assert [d.id for d in msg.detections] == ['1', '2', '3']
    assert [d.results[0].hypothesis.class_id for d in msg.detections] == expected
    assert [d.header.frame_id for d in msg.detections] == ['cam'] * 3
    assert msg.detections[0].results[0].hypothesis.score == pytest.approx(0.9)
    assert msg.detections[0].results[0].pose.pose.orientation.w == 1.0
    # The node hands over the instances' boxes instead of building them again: same message.
    instances = build_instance_array(types, header, make_detections(), encoding=BITMAP_ROI)
    reused = build_detection_array(types, header, make_detections(), class_id=class_id,
                                   bboxes=[instance.bbox for instance in instances.instances])
    assert typestore.serialize_cdr(reused, reused.__msgtype__) == typestore.serialize_cdr(
        msg, msg.__msgtype__)
    bbox = msg.detections[0].bbox
    assert (bbox.center.position.x, bbox.center.position.y, bbox.size_x, bbox.size_y) == (
        15.0, 20.0, 20.0, 20.0)
    with pytest.raises(ValueError, match="'name' or 'id'"):
        build_detection_array(types, header, make_detections(), class_id='uuid')


def test_track_ids_fill_instance_track_id_and_detection_id(typestore, types):
    header = build_header(types, 42, 'cam')
    detections = make_detections()
    track_ids = np.array([7, 0, 12], np.int64)  # the second one is not tracked
    instances, _ = roundtrip(typestore, build_instance_array(
        types, header, detections, encoding=BITMAP_ROI, track_ids=track_ids))
    assert [(i.id, i.track_id) for i in instances.instances] == [(1, 7), (2, 0), (3, 12)]
    msg, _ = roundtrip(typestore, build_detection_array(types, header, detections,
                                                        track_ids=track_ids))
    assert [d.id for d in msg.detections] == ['7', '0', '12']
    # Tracking off: track_id 0, Detection2D.id the per-frame id.
    untracked, _ = roundtrip(typestore, build_instance_array(types, header, detections,
                                                             encoding=BITMAP_ROI))
    assert [i.track_id for i in untracked.instances] == [0, 0, 0]
    with pytest.raises(ValueError, match=r'expected track_ids \[3\], got \[2\]'):
        build_detection_array(types, header, detections, track_ids=np.array([1, 2]))


def test_label_image_ids_and_overlap_priority(typestore, types):
    detections = make_detections()
    labels = label_image(detections)
    assert labels.dtype == np.uint16 and labels.shape == (48, 64)
    assert labels[0, 0] == 0
    assert labels[25, 22] == 1  # overlap of 0 and 1: the higher score (id 1) wins
    assert labels[35, 45] == 2 and labels[2, 62] == 3
    msg, _ = roundtrip(typestore, build_image(types, build_header(types, 5, 'c'), labels,
                                              'mono16'))
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == (
        'mono16', 48, 64, 128, 0)
    np.testing.assert_array_equal(np.frombuffer(msg.data, '<u2').reshape(48, 64), labels)


def test_bgr8_image_and_bad_arrays(typestore, types):
    image = np.random.default_rng(0).integers(0, 256, (3, 4, 3), np.uint8)
    msg, _ = roundtrip(typestore, build_image(types, build_header(types, 1), image, 'bgr8'))
    assert (msg.step, msg.encoding) == (12, 'bgr8')
    np.testing.assert_array_equal(msg.data.reshape(3, 4, 3), image)
    with pytest.raises(ValueError, match='bgr8 needs uint8'):
        build_image(types, build_header(types, 1), image.astype(np.uint16), 'bgr8')
    with pytest.raises(ValueError, match="'bgr8' or 'mono16'"):
        build_image(types, build_header(types, 1), image, 'rgb8')


def test_label_info(typestore, types):
    msg, _ = roundtrip(typestore, build_label_info(types, build_header(types, 1),
                                                   ['person', 'car'], 0.25))
    assert [(c.class_id, c.class_name) for c in msg.class_map] == [(0, 'person'), (1, 'car')]
    assert msg.threshold == 0.25


def test_diagnostics(typestore, types):
    msg = build_diagnostics(types, build_header(types, 9), name='seg: segmentation',
                            hardware_id='cpu', level='WARN', message='no input images',
                            values={'input_rate_hz': 29.97, 'latency_p50_ms': None,
                                    'dropped_frames': 3})
    msg, _ = roundtrip(typestore, msg)
    status = msg.status[0]
    assert (status.level, status.name, status.hardware_id) == (1, 'seg: segmentation', 'cpu')
    assert {kv.key: kv.value for kv in status.values} == {
        'input_rate_hz': '29.970', 'latency_p50_ms': 'n/a', 'dropped_frames': '3'}
    with pytest.raises(ValueError, match='level must be one of'):
        build_diagnostics(types, build_header(types, 9), name='x', hardware_id='', level='BAD',
                          message='', values={})


def test_instances_message_size_budget(typestore, types):
    """640x480 with 20 instances, BITMAP_ROI: a few tens of KB, not 20 full frames (6 MB)."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / 'benchmarks' / 'message_size.py'
    spec = importlib.util.spec_from_file_location('message_size', path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    size = benchmark.instances_size(typestore, types, BITMAP_ROI)
    assert size < 64 * 1024, size
