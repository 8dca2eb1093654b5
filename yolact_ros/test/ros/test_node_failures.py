"""segment_node under failures: a failed frame is reported, a dead worker leaves ACTIVE.

Also: nothing is published while inactive (lifecycle publishers). Real rclpy, fake Segmenter.
"""

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import bgr_image, FakeSegmenter, wait_stamp
from sensor_msgs.msg import Image
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros import frame_pipeline
from yolact_ros.ros.node import SegmentNode

RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE)
PIXELS = np.full((6, 8, 3), 100, np.uint8)
_counter = [0]


pytestmark = pytest.mark.usefixtures('ros_context')


def started_node(graph, fake_weights, segmenter):
    """Return ``(node, ns, publish, instances)`` for an active node fed by the helper."""
    _counter[0] += 1
    ns = f'/fail{_counter[0]}'
    node = SegmentNode(namespace=ns, segmenter_factory=lambda params: segmenter,
                       parameter_overrides=[
                           Parameter('weights', value=str(fake_weights)),
                           Parameter('qos_reliability', value='reliable'),
                           Parameter('autostart', value=False)])
    graph.add(node)
    assert node.start()
    instances = graph.collect(InstanceArray, f'{ns}/instances', RELIABLE)
    publisher = graph.node.create_publisher(Image, f'{ns}/image', RELIABLE)
    graph.wait_for(lambda: publisher.get_subscription_count() > 0
                   and node._outputs['instances'].get_subscription_count() > 0,
                   'the node and the helper connected')
    return node, ns, publisher.publish, instances


def state_of(node) -> int:
    return node._state_machine.current_state[0]


class _FailOnce:
    """Wrap a callable so that its first call raises ``error``."""

    def __init__(self, wrapped, error: Exception) -> None:
        self.wrapped, self.error, self.failed = wrapped, error, False

    def __call__(self, *args, **kwargs):
        if not self.failed:
            self.failed = True
            raise self.error
        return self.wrapped(*args, **kwargs)


def _break_segmenter(node, monkeypatch, error):
    node._segmenter.fail_next = error


def _break_building(node, monkeypatch, error):
    monkeypatch.setattr(frame_pipeline, 'build_instance_array',
                        _FailOnce(frame_pipeline.build_instance_array, error))


def _break_publishing(node, monkeypatch, error):
    publisher = node._outputs['instances']
    monkeypatch.setattr(publisher, 'publish', _FailOnce(publisher.publish, error))


@pytest.mark.parametrize('inject,where', [
    (_break_segmenter, 'inference failed: RuntimeError: CUDA out of memory'),
    (_break_building, 'processing failed: RuntimeError: CUDA out of memory'),
    (_break_publishing, 'processing failed: RuntimeError: CUDA out of memory'),
], ids=['segmenter', 'message_building', 'publishing'])
def test_a_failed_frame_is_logged_counted_reported_and_the_next_is_served(
        graph, fake_weights, monkeypatch, inject, where):
    node, ns, publish, instances = started_node(graph, fake_weights, FakeSegmenter())
    diagnostics = graph.collect(DiagnosticArray, '/diagnostics')
    inject(node, monkeypatch, RuntimeError('CUDA out of memory'))
    publish(bgr_image(PIXELS, 5_000_000_007))
    graph.wait_for(lambda: node._counters.frame_errors == 1, 'the failure to be counted')
    publish(bgr_image(PIXELS, 5_000_000_008))
    wait_stamp(graph, instances, 5_000_000_008, 'the frame after the failed one')
    assert 5_000_000_007 not in [m.header.stamp.nanosec for m in instances if
                                 m.header.stamp.sec == 5]
    line = f'frame 5.000000007: {where}'
    graph.wait_for(lambda: line in graph.log_lines(ns[1:]), f'the log line {line!r}')
    assert state_of(node) == State.PRIMARY_STATE_ACTIVE

    def error_status():
        for array in list(diagnostics):
            for item in array.status:
                values = {kv.key: kv.value for kv in item.values}
                if values.get('input_topic') == f'{ns}/image' and item.level == b'\x02':
                    return item, values
        return None

    graph.wait_for(lambda: error_status() is not None, 'an ERROR diagnostics status')
    item, values = error_status()
    assert values['frame_errors'] == '1' and line in item.message


def test_many_failures_are_rate_limited_in_the_log(graph, fake_weights):
    class Broken(FakeSegmenter):

        def __call__(self, image):
            raise ValueError('broken model')

    node, ns, publish, instances = started_node(graph, fake_weights, Broken())
    for stamp in range(1, 11):
        publish(bgr_image(PIXELS, stamp))
        graph.wait_for(lambda: node._counters.frame_errors == stamp, f'failure {stamp} counted')
    lines = [line for line in graph.log_lines(ns[1:]) if 'broken model' in line]
    assert len(lines) == 1 and state_of(node) == State.PRIMARY_STATE_ACTIVE


def test_a_dead_worker_takes_the_node_out_of_active(graph, fake_weights, monkeypatch):
    segmenter = FakeSegmenter()
    node, ns, publish, instances = started_node(graph, fake_weights, segmenter)
    publish(bgr_image(PIXELS, 1))
    wait_stamp(graph, instances, 1)

    def broken_take(timeout=None):
        raise MemoryError('worker killed')

    monkeypatch.setattr(node._slot, 'take', broken_take)
    graph.wait_for(lambda: state_of(node) == State.PRIMARY_STATE_UNCONFIGURED,
                   'the node to leave active through error processing')
    graph.wait_for(lambda: any('frame worker died (MemoryError: worker killed)' in line
                               for line in graph.log_lines(ns[1:])), 'the error on /rosout')
    assert node.count_subscribers(f'{ns}/image') == 0 and node._segmenter is None
    assert node.start()  # a lifecycle manager can bring it back
    publish(bgr_image(PIXELS, 2))
    wait_stamp(graph, instances, 2, 'a frame after the restart')


def test_nothing_is_published_while_inactive(graph, fake_weights):
    node, ns, publish, instances = started_node(graph, fake_weights, FakeSegmenter())
    assert node.trigger_deactivate() == node_success()
    assert state_of(node) == State.PRIMARY_STATE_INACTIVE
    for topic in ('instances', 'detections', 'instance_mask', 'overlay'):
        node._outputs[topic].publish(node._outputs[topic].msg_type())  # dropped: not active
    node._publish_diagnostics()  # /diagnostics is not a per-frame output: still allowed
    assert node.trigger_activate() == node_success()
    publish(bgr_image(PIXELS, 9))
    wait_stamp(graph, instances, 9)
    assert [m.header.stamp.nanosec for m in instances] == [9]  # the inactive one never came


def node_success():
    from yolact_ros.ros.node import SUCCESS

    return SUCCESS
