"""segment_node's parameters and lifecycle through its ROS services, in-process, real rclpy.

A fake Segmenter where the model does not matter (the thresholds and class filter themselves are
tested with the real model in test_node_real_model.py).
"""

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from node_helpers import collect_outputs, image_msg, LATCHED, make_node, publisher
import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_harness import CLASS_NAMES, FakeSegmenter, stamp_ns, wait_stamp
from test_image_conversion import _pattern_image
from vision_msgs.msg import LabelInfo
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros import node as node_module
from yolact_ros.ros.mask_encoding import decode_mask, RLE_COCO
from yolact_ros.ros.node import SegmentNode


pytestmark = pytest.mark.usefixtures('ros_context')


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
    instances, detections = collect_outputs(graph, ns)
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
