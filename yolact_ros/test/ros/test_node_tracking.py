"""segment_node tracking under real rclpy: track ids stay with a moving object across frames."""

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import bgr_image, FakeSegmenter, wait_stamp
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros.node import SegmentNode

RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE)
FRAMES = 30
PERIOD_NS = 33_333_333  # 30 fps
START_NS = 1_700_000_000_000_000_000

pytestmark = pytest.mark.usefixtures('ros_context')


def run_frames(graph, weights, namespace, frames=FRAMES, **overrides):
    """Start a node with a FakeSegmenter moving 2 px per frame; return its node and outputs."""
    values = {'weights': str(weights), 'autostart': False, 'qos_reliability': 'reliable',
              'qos_depth': 100, **overrides}
    node = SegmentNode(
        namespace=namespace, segmenter_factory=lambda params: FakeSegmenter(step=2),
        parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    assert node.start()
    graph.add(node)
    instances = graph.collect(InstanceArray, f'{namespace}/instances')
    detections = graph.collect(Detection2DArray, f'{namespace}/detections')
    pub = graph.node.create_publisher(Image, f'{namespace}/image', RELIABLE)
    graph.wait_for(lambda: pub.get_subscription_count() > 0, 'the node subscribed')
    graph.wait_for(lambda: node._outputs['detections'].get_subscription_count() > 0
                   and node._outputs['instances'].get_subscription_count() > 0,
                   'the outputs subscribed')
    pixels = np.zeros((64, 256, 3), np.uint8)
    out = []
    for frame in range(frames):  # one at a time: none is dropped
        stamp = START_NS + frame * PERIOD_NS
        pub.publish(bgr_image(pixels, stamp))
        out.append((wait_stamp(graph, instances, stamp, 'instances'),
                    wait_stamp(graph, detections, stamp, 'detections')))
    return node, out


def live_tracks(diagnostics, namespace):
    """Return ``live_tracks`` of the node's latest diagnostics after all frames, or None."""
    for array in reversed(list(diagnostics)):
        for item in array.status:
            values = {kv.key: kv.value for kv in item.values}
            if values.get('input_topic') == f'{namespace}/image' and \
                    values['frames_processed'] == str(FRAMES):
                return values['live_tracks']
    return None


def test_a_moving_object_keeps_its_track_id_and_detections_carry_it(graph, fake_weights):
    diagnostics = graph.collect(DiagnosticArray, '/diagnostics')
    node, out = run_frames(graph, fake_weights, '/tracked')
    person_ids, car_ids = set(), set()
    for frame, (instances, detections) in enumerate(out):
        person, car = instances.instances
        assert (person.id, car.id) == (1, 2), frame  # per-frame ids unchanged
        assert person.bbox.center.position.x == pytest.approx(64.0 + 2 * frame), frame
        person_ids.add(person.track_id)
        car_ids.add(car.track_id)
        assert [d.id for d in detections.detections] == [str(person.track_id),
                                                         str(car.track_id)], frame
    assert len(person_ids) == 1 and len(car_ids) == 1
    assert 0 not in person_ids | car_ids and person_ids != car_ids
    graph.wait_for(lambda: live_tracks(diagnostics, '/tracked') is not None,
                   'diagnostics after all frames', timeout=10.0)
    assert live_tracks(diagnostics, '/tracked') == '2'


def test_with_tracking_disabled_track_id_is_0_and_detection_id_per_frame(graph, fake_weights):
    node, out = run_frames(graph, fake_weights, '/untracked', frames=3,
                           **{'tracking.enabled': False})
    assert node.params.tracking_enabled is False
    for instances, detections in out:
        assert [(i.id, i.track_id) for i in instances.instances] == [(1, 0), (2, 0)]
        assert [d.id for d in detections.detections] == ['1', '2']
