"""segment_node under real rclpy, in-process.

Covers encodings, bad frames, bursts, subscriber-gated outputs, the no-image warning and
diagnostics (parameters and lifecycle services: test_node_services.py).
These use a fake Segmenter (fast, controllable) where the model does not matter; the tests whose
outcome depends on the model run the bundled one (test_node_real_model.py).
"""

import time
import tracemalloc

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from node_helpers import collect_outputs, fresh_namespace, image_msg, make_node, publisher
import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import FakeSegmenter, stamp_ns, stamped, wait_stamp
from sensor_msgs.msg import CompressedImage, Image
from test_image_conversion import _pattern_image, BGR, EXACT, expected
from vision_msgs.msg import Detection2DArray
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros.image_conversion import SUPPORTED_ENCODINGS


pytestmark = pytest.mark.usefixtures('ros_context')


def test_every_encoding_gives_outputs_with_the_input_header(graph, fake_weights):
    segmenter = FakeSegmenter()
    node, ns = make_node(graph, fake_weights, segmenter)
    instances, detections = collect_outputs(graph, ns)
    pub = publisher(graph, f'{ns}/image')
    cases = [(e, _pattern_image(), False) for e in EXACT]
    cases += [(e, BGR, False) for e in SUPPORTED_ENCODINGS if e.startswith('bayer_')]
    cases += [('mono16', _pattern_image(), True)]
    for index, (encoding, pixels, big_endian) in enumerate(cases):
        stamp = 1_700_000_000_000_000_000 + index * 1_000_001
        frame_id = f'cam_{encoding}'
        pub.publish(image_msg(encoding, pixels, stamp, frame_id, big_endian))
        out = wait_stamp(graph, instances, stamp, f'instances for {encoding}')
        assert out.header.frame_id == frame_id
        assert (out.height, out.width) == pixels.shape[:2]
        if encoding.startswith('bayer_'):
            assert np.abs(segmenter.last_image[2:-2, 2:-2].astype(int)
                          - pixels[2:-2, 2:-2]).max() <= 2, encoding
        else:
            np.testing.assert_array_equal(segmenter.last_image, expected(encoding, pixels))
        det = wait_stamp(graph, detections, stamp, f'detections for {encoding}')
        assert det.header.frame_id == frame_id
        assert [d.header.frame_id for d in det.detections] == [frame_id] * 2
    # yuv422 (UYVY): a grey frame comes through as grey
    msg = Image(header=stamped(5, 'yuv'), height=2, width=4, encoding='yuv422', step=8,
                data=bytes([128, 90] * 8))
    pub.publish(msg)
    out = wait_stamp(graph, instances, 5)
    assert out.header.frame_id == 'yuv' and (segmenter.last_image.std(axis=2) < 1).all()


def test_compressed_transport(graph, fake_weights):
    segmenter = FakeSegmenter()
    node, ns = make_node(graph, fake_weights, segmenter, image_transport='compressed')
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image/compressed', CompressedImage)
    image = np.zeros((24, 32, 3), np.uint8)
    image[:, 16:] = (0, 0, 255)
    for stamp, ext in ((11, '.jpg'), (12, '.png')):
        ok, data = cv2.imencode(ext, image)
        pub.publish(CompressedImage(header=stamped(stamp, 'cmp'), format=ext[1:],
                                    data=data.tobytes()))
        out = wait_stamp(graph, instances, stamp)
        assert out.header.frame_id == 'cmp' and (out.height, out.width) == (24, 32)
        difference = np.abs(segmenter.last_image.astype(int) - image)
        assert difference[:, :12].max() < 20 and difference[:, 20:].max() < 20  # JPEG: not edges


def test_bad_frames_are_skipped_and_the_next_good_frame_is_served(graph, fake_weights):
    node, ns = make_node(graph, fake_weights)
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image')
    good = _pattern_image()
    bad = [
        Image(header=stamped(101), height=6, width=8, encoding='jpeg', step=24, data=bytes(144)),
        Image(header=stamped(102), height=6, width=8, encoding='rgb8', step=24, data=bytes(100)),
        Image(header=stamped(103), height=6, width=8, encoding='rgb8', step=20, data=bytes(120)),
        Image(header=stamped(104), height=0, width=0, encoding='rgb8', step=0, data=b''),
    ]
    for index, msg in enumerate(bad):
        pub.publish(msg)
        graph.wait_for(lambda: node._counters.bad_frames == index + 1,
                       'the bad frame to be rejected')
        stamp = 200 + index
        pub.publish(image_msg('rgb8', good, stamp))
        wait_stamp(graph, instances, stamp, 'the good frame after a bad one')
    assert not any(stamp_ns(m.header) in (101, 102, 103, 104) for m in instances)
    assert node._counters.bad_frames == 4
    graph.wait_for(lambda: any("unsupported encoding 'jpeg'" in line
                               for line in graph.log_lines('segment_node')),
                   'the bad-frame warning on /rosout')


def test_corrupt_jpeg_is_skipped(graph, fake_weights):
    node, ns = make_node(graph, fake_weights, image_transport='compressed')
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image/compressed', CompressedImage)
    pub.publish(CompressedImage(header=stamped(1), format='jpeg', data=b'\xff\xd8garbage'))
    graph.wait_for(lambda: node._counters.bad_frames == 1, 'the corrupt JPEG to be rejected')
    ok, data = cv2.imencode('.jpg', _pattern_image())
    pub.publish(CompressedImage(header=stamped(2), format='jpeg', data=data.tobytes()))
    wait_stamp(graph, instances, 2)
    assert [stamp_ns(m.header) for m in instances] == [2] and node._counters.bad_frames == 1


def test_burst_with_slow_inference_serves_latest_and_counts_drops(graph, fake_weights):
    """100 frames at 100 Hz, 640x480 rgb8, 50 ms inference."""
    segmenter = FakeSegmenter(delay=0.05)
    node, ns = make_node(graph, fake_weights, segmenter, publish_detections=False)
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image')
    frame = image_msg('rgb8', np.zeros((480, 640, 3), np.uint8), 1)
    frame_bytes = 480 * 640 * 3
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        for i in range(1, 101):  # about 100 Hz
            frame.header = stamped(i * 10_000_000)
            pub.publish(frame)
            time.sleep(0.01)
        wait_stamp(graph, instances, 100 * 10_000_000, 'the last frame of the burst')
        graph.wait_for(lambda: node._slot.received == 100, 'all 100 frames at the node')
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    stamps = [stamp_ns(m.header) for m in instances]
    assert stamps == sorted(stamps) and stamps[-1] == 100 * 10_000_000  # newest served last
    assert len(instances) < 100  # slow inference: most frames were overwritten
    dropped = sum(m.dropped_frames for m in instances)
    assert dropped == 100 - len(instances) == node._slot.dropped  # every frame accounted for
    assert segmenter.calls == len(instances)
    # A frame in the slot, one in flight and its by-products: far below the 100 frames sent.
    assert peak < 20 * frame_bytes, f'peak Python memory {peak / 1e6:.1f} MB'


def test_mask_and_overlay_only_computed_when_subscribed_and_rate_limited(
        graph, fake_weights, monkeypatch):
    from yolact_ros.ros import frame_pipeline  # the node's per-frame path
    import yolact_ros.visualize

    calls = {'label': 0, 'overlay': 0}
    real_label, real_overlay = frame_pipeline.label_image, yolact_ros.visualize.draw_overlay

    def counting_label(detections):
        calls['label'] += 1
        return real_label(detections)

    def counting_overlay(image, detections, **options):
        calls['overlay'] += 1
        return real_overlay(image, detections, **options)

    monkeypatch.setattr(frame_pipeline, 'label_image', counting_label)
    monkeypatch.setattr(yolact_ros.visualize, 'draw_overlay', counting_overlay)
    node, ns = make_node(graph, fake_weights, overlay_max_rate=0.01)  # one per 100 s
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image')
    image = _pattern_image()
    for stamp in (1, 2, 3):
        pub.publish(image_msg('bgr8', image, stamp))
        wait_stamp(graph, instances, stamp)
    assert calls == {'label': 0, 'overlay': 0}

    masks = graph.collect(Image, f'{ns}/instance_mask')
    overlays = graph.collect(Image, f'{ns}/overlay')
    graph.wait_for(lambda: node._outputs['overlay'].get_subscription_count() == 1
                   and node._outputs['instance_mask'].get_subscription_count() == 1,
                   'subscribers on instance_mask and overlay')
    for stamp in (4, 5, 6):
        pub.publish(image_msg('bgr8', image, stamp))
        wait_stamp(graph, instances, stamp)
    wait_stamp(graph, masks, 6, 'instance_mask')
    assert calls == {'label': 3, 'overlay': 1}
    mask = wait_stamp(graph, masks, 4, 'instance_mask')
    assert (mask.encoding, mask.height, mask.width) == ('mono16', 6, 8)
    labels = np.frombuffer(mask.data, '<u2').reshape(6, 8)
    assert set(np.unique(labels)) == {0, 1, 2} and labels[0, 0] == 1
    overlay = wait_stamp(graph, overlays, 4, 'overlay')
    assert (overlay.encoding, overlay.height, overlay.width) == ('bgr8', 6, 8)
    assert len(overlays) == 1


def test_instances_and_detections_only_built_when_subscribed(graph, fake_weights, monkeypatch):
    from yolact_ros.ros import frame_pipeline  # the node's per-frame path

    built = {'detections': 0}
    real_build = frame_pipeline.build_detection_array

    def counting_build(*args, **kwargs):
        built['detections'] += 1
        return real_build(*args, **kwargs)

    monkeypatch.setattr(frame_pipeline, 'build_detection_array', counting_build)
    node, ns = make_node(graph, fake_weights)
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image')
    graph.wait_for(lambda: node._outputs['instances'].get_subscription_count() == 1,
                   'the instances subscription')
    image = _pattern_image()
    for stamp in (1, 2):
        pub.publish(image_msg('bgr8', image, stamp))
        wait_stamp(graph, instances, stamp)
    assert built['detections'] == 0  # nobody listens to detections yet

    detections = graph.collect(Detection2DArray, f'{ns}/detections')
    graph.wait_for(lambda: node._outputs['detections'].get_subscription_count() == 1,
                   'the detections subscription')
    pub.publish(image_msg('bgr8', image, 3))
    wait_stamp(graph, detections, 3, 'detections')
    assert built['detections'] == 1


@pytest.mark.parametrize('with_publisher', [False, True])
def test_no_image_warning_names_topic_and_publisher_qos(graph, fake_weights, with_publisher):
    ns = fresh_namespace()
    if with_publisher:  # a best-effort camera cannot reach the reliable subscription
        camera = rclpy.create_node('camera', namespace=ns)
        camera.create_publisher(Image, 'image', QoSProfile(
            depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        graph.add(camera)
        graph.wait_for(lambda: graph.node.count_publishers(f'{ns}/image') == 1,
                       'the camera publisher in the graph')
        expected_text = [f'{ns}/camera', 'reliability best_effort',
                         'set qos_reliability to best_effort']
    else:
        expected_text = ['no publishers on it']
    make_node(graph, fake_weights, namespace=ns, no_image_timeout=0.2)

    def warned():
        return [line for line in graph.log_lines(ns[1:])
                if f"no image received on '{ns}/image'" in line]

    graph.wait_for(lambda: warned(), 'the no-image warning')
    line = warned()[0]
    assert 'subscribed reliable' in line
    for text in expected_text:
        assert text in line, line


def test_diagnostics(graph, fake_weights):
    node, ns = make_node(graph, fake_weights)
    diagnostics = graph.collect(DiagnosticArray, '/diagnostics')
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image')
    pub.publish(image_msg('bgr8', _pattern_image(), 1))
    wait_stamp(graph, instances, 1)

    def status():
        for array in reversed(list(diagnostics)):
            for item in array.status:
                values = {kv.key: kv.value for kv in item.values}
                if item.name == 'segment_node: segmentation' and values.get(
                        'input_topic') == f'{ns}/image' and values['frames_processed'] == '1':
                    return item, values
        return None

    graph.wait_for(lambda: status() is not None, 'a diagnostics status after one frame')
    item, values = status()
    assert item.level == b'\x00' and item.hardware_id == 'cpu'
    assert values['device'] == 'cpu' and values['dropped_frames'] == '0'
    assert {'input_rate_hz', 'output_rate_hz', 'latency_p50_ms', 'latency_p95_ms',
            'bad_frames'} <= set(values)
