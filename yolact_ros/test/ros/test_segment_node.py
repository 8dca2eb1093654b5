"""segment_node under real rclpy, in-process.

Covers encodings, bad frames, bursts, parameters, lifecycle, subscriber-gated outputs, the
no-image warning and diagnostics.
These use a fake Segmenter (fast, controllable) where the model does not matter; the tests whose
outcome depends on the model run the bundled one (test_node_real_model.py).
"""

import time
import tracemalloc

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import CLASS_NAMES, FakeSegmenter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from test_image_conversion import _pattern_image, BGR, encode, EXACT, expected
from vision_msgs.msg import Detection2DArray, LabelInfo
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros import node as node_module
from yolact_ros.ros.image_conversion import SUPPORTED_ENCODINGS
from yolact_ros.ros.mask_encoding import decode_mask, RLE_COCO
from yolact_ros.ros.node import SegmentNode

RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


pytestmark = pytest.mark.usefixtures('ros_context')


_counter = [0]


def make_node(graph, weights, segmenter=None, start=True, **overrides):
    """Create a SegmentNode in its own namespace, spun by ``graph``; return (node, ns)."""
    _counter[0] += 1
    namespace = f'/t{_counter[0]}'
    values = {'weights': str(weights), 'autostart': False, 'qos_reliability': 'reliable',
              'qos_depth': 100, **overrides}
    segmenter = segmenter if segmenter is not None else FakeSegmenter()
    node = SegmentNode(
        namespace=namespace, segmenter_factory=lambda params: segmenter,
        parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    if start:
        assert node.start()
    graph.add(node)
    return node, namespace


def image_msg(encoding, pixels_bgr, stamp_ns, frame_id='camera', big_endian=False):
    step, data = encode(encoding, pixels_bgr, big_endian)
    msg = Image()
    msg.header = stamped(stamp_ns, frame_id)
    msg.height, msg.width = pixels_bgr.shape[:2]
    msg.encoding, msg.step, msg.is_bigendian, msg.data = encoding, step, big_endian, data
    return msg


def stamped(stamp_ns, frame_id='camera') -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def wait_stamp(graph, received, stamp, what='output'):
    graph.wait_for(lambda: any(stamp_ns(m.header) == stamp for m in received),
                   f'{what} with stamp {stamp}')
    return next(m for m in received if stamp_ns(m.header) == stamp)


def publisher(graph, topic, msg_type=Image, qos=RELIABLE):
    pub = graph.node.create_publisher(msg_type, topic, qos)
    graph.wait_for(lambda: pub.get_subscription_count() > 0, f'a subscriber on {topic}')
    return pub


def test_every_encoding_gives_outputs_with_the_input_header(graph, fake_weights):
    segmenter = FakeSegmenter()
    node, ns = make_node(graph, fake_weights, segmenter)
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    detections = graph.collect(Detection2DArray, f'{ns}/detections')
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


def set_parameters_service(graph, ns, values):
    """Set parameters through the node's service, as `ros2 param set` does."""
    client = graph.node.create_client(SetParameters, f'{ns}/segment_node/set_parameters')
    assert client.wait_for_service(timeout_sec=10.0)
    request = SetParameters.Request()
    for name, value in values.items():
        if isinstance(value, float):
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        request.parameters.append(ParameterMsg(name=name, value=pv))
    return graph.call(client, request, 'set_parameters response').results


def test_dynamic_parameters_accepted_and_rejected(graph, fake_weights):
    segmenter = FakeSegmenter()
    node, ns = make_node(graph, fake_weights, segmenter)
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    detections = graph.collect(Detection2DArray, f'{ns}/detections')
    pub = publisher(graph, f'{ns}/image')
    image = _pattern_image()

    def frame(stamp):
        pub.publish(image_msg('bgr8', image, stamp))
        return wait_stamp(graph, instances, stamp)

    assert len(frame(1).instances) == 2
    (result,) = set_parameters_service(graph, ns, {'score_threshold': 0.7})
    assert result.successful
    assert segmenter.postprocess.score_threshold == 0.7  # the Segmenter filters (fake: not)
    assert len(frame(2).instances) == 2

    (result,) = set_parameters_service(graph, ns, {'score_threshold': 1.5})
    assert not result.successful and 'score_threshold' in result.reason
    (result,) = set_parameters_service(graph, ns, {'mask_encoding': 'png'})
    assert not result.successful and 'bitmap_roi, rle_coco' in result.reason
    assert node.params.mask_encoding == 'bitmap_roi' and node.params.score_threshold == 0.7

    results = node.set_parameters([Parameter('score_threshold', value=0.0),
                                   Parameter('classes', value=['unicorn'])])
    assert not results[1].successful and "unknown class 'unicorn'" in results[1].reason
    assert node.set_parameters([Parameter('classes', value=['car'])])[0].successful
    assert segmenter.postprocess.classes == (1,)  # 'car' is class 1; the real model's test
    frame(3)                                      # (test_node_real_model) checks the output

    assert set_parameters_service(graph, ns, {'mask_encoding': 'rle_coco'})[0].successful
    assert node.set_parameters([Parameter('publish_detections', value=False)])[0].successful
    out = frame(4)
    assert out.instances[1].mask.encoding == RLE_COCO
    np.testing.assert_array_equal(
        decode_mask(out.instances[1].mask, *image.shape[:2]),
        segmenter(image).masks[1])
    assert node.set_parameters([Parameter('publish_detections', value=True)])[0].successful
    frame(5)
    wait_stamp(graph, detections, 5)
    assert 4 not in [stamp_ns(d.header) for d in detections]  # disabled while frame 4 ran
    assert node.set_parameters([Parameter('detection_class_id', value='id')])[0].successful
    frame(6)
    det = wait_stamp(graph, detections, 6)
    assert [d.results[0].hypothesis.class_id for d in det.detections] == ['0', '1']


def lifecycle_call(graph, ns, transition_id):
    client = graph.node.create_client(ChangeState, f'{ns}/segment_node/change_state')
    assert client.wait_for_service(timeout_sec=10.0)
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return graph.call(client, request, 'change_state response').success


def lifecycle_state(graph, ns):
    client = graph.node.create_client(GetState, f'{ns}/segment_node/get_state')
    assert client.wait_for_service(timeout_sec=10.0)
    return graph.call(client, GetState.Request(), 'get_state response').current_state.id


def test_lifecycle_through_the_services(graph, fake_weights, tmp_path):
    segmenter = FakeSegmenter()
    missing = tmp_path / 'no_such_weights.safetensors'
    node, ns = make_node(graph, missing, segmenter, start=False)
    assert lifecycle_state(graph, ns) == State.PRIMARY_STATE_UNCONFIGURED
    assert not lifecycle_call(graph, ns, Transition.TRANSITION_CONFIGURE)
    graph.wait_for(lambda: any(str(missing) in line and 'not found' in line
                               for line in graph.log_lines('segment_node')),
                   'an error naming the missing weights file')
    assert lifecycle_state(graph, ns) == State.PRIMARY_STATE_UNCONFIGURED

    assert node.set_parameters([Parameter('weights', value=str(fake_weights))])[0].successful
    assert lifecycle_call(graph, ns, Transition.TRANSITION_CONFIGURE)
    label_info = graph.collect(LabelInfo, f'{ns}/label_info', LATCHED)  # late joiner
    graph.wait_for(lambda: label_info, 'transient-local label_info')
    assert [c.class_name for c in label_info[0].class_map] == CLASS_NAMES
    assert node.count_subscribers(f'{ns}/image') == 0

    assert lifecycle_call(graph, ns, Transition.TRANSITION_ACTIVATE)
    assert segmenter.warmups == 1 and node.count_subscribers(f'{ns}/image') == 1
    instances = graph.collect(InstanceArray, f'{ns}/instances')
    pub = publisher(graph, f'{ns}/image')
    pub.publish(image_msg('bgr8', _pattern_image(), 77))
    wait_stamp(graph, instances, 77)

    assert lifecycle_call(graph, ns, Transition.TRANSITION_DEACTIVATE)
    assert node.count_subscribers(f'{ns}/image') == 0 and segmenter.releases == 1
    assert lifecycle_state(graph, ns) == State.PRIMARY_STATE_INACTIVE
    assert lifecycle_call(graph, ns, Transition.TRANSITION_CLEANUP)
    assert node.count_publishers(f'{ns}/instances') == 0
    assert lifecycle_state(graph, ns) == State.PRIMARY_STATE_UNCONFIGURED
    # configure again after cleanup: a lifecycle manager's restart
    assert lifecycle_call(graph, ns, Transition.TRANSITION_CONFIGURE)
    assert lifecycle_call(graph, ns, Transition.TRANSITION_ACTIVATE)
    pub.publish(image_msg('bgr8', _pattern_image(), 78))
    wait_stamp(graph, instances, 78)


def test_wrong_weights_file_fails_configure_naming_it(graph, tmp_path):
    bad = tmp_path / 'corrupt.safetensors'
    bad.write_bytes(b'this is not a checkpoint')
    node = SegmentNode(namespace='/wrong_weights', parameter_overrides=[
        Parameter('weights', value=str(bad)), Parameter('device', value='cpu')])
    graph.add(node)
    assert node.trigger_configure() != node_module.SUCCESS
    graph.wait_for(lambda: any(f"cannot load weights '{bad}'" in line
                               for line in graph.log_lines('wrong_weights')),
                   'an error naming the corrupt weights file')


def test_unknown_class_in_allow_list_fails_configure(graph, fake_weights):
    node, ns = make_node(graph, fake_weights, start=False, classes=['unicorn'])
    assert node.trigger_configure() != node_module.SUCCESS
    graph.wait_for(lambda: any("unknown class 'unicorn'" in line
                               for line in graph.log_lines(ns[1:])),
                   'an error naming the unknown class')


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
    ns = f'/t{_counter[0] + 1}'  # the namespace make_node will use
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
    node, node_ns = make_node(graph, fake_weights, no_image_timeout=0.2)
    assert node_ns == ns

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


def test_threads_parameter_is_applied_at_configure_before_loading(graph, fake_weights,
                                                                  monkeypatch):
    import yolact_ros.runtime

    calls = []

    def record(threads):
        calls.append(('set_threads', threads))
        return threads or 7

    def factory(params):
        calls.append(('load', params.weights))
        return FakeSegmenter()

    monkeypatch.setattr(yolact_ros.runtime, 'set_threads', record)
    node = SegmentNode(namespace='/threads', segmenter_factory=factory, parameter_overrides=[
        Parameter('weights', value=str(fake_weights)), Parameter('threads', value=3)])
    graph.add(node)
    assert node.trigger_configure() == node_module.SUCCESS
    assert calls == [('set_threads', 3), ('load', str(fake_weights))]
    graph.wait_for(lambda: any('3 threads' in line for line in graph.log_lines('threads')),
                   'the configured line naming the threads')
    assert not node.set_parameters([Parameter('threads', value=65)])[0].successful
