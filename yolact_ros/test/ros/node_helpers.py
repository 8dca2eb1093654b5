"""Helpers of the in-process segment_node tests: a node with a fake Segmenter, input frames."""

import _ros_gate  # noqa: F401, I100 - skips the importing module where rclpy cannot run
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import FakeSegmenter, stamped
from sensor_msgs.msg import Image
from test_image_conversion import encode
from vision_msgs.msg import Detection2DArray
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros.node import SegmentNode

RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


_counter = [0]


def fresh_namespace() -> str:
    """Return a namespace that no node of this test session has used."""
    _counter[0] += 1
    return f'/t{_counter[0]}'


def make_node(graph, weights, segmenter=None, start=True, namespace=None, **overrides):
    """Create a SegmentNode spun by ``graph``; return ``(node, namespace)`` (default: fresh)."""
    namespace = namespace or fresh_namespace()
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
    """Return a ``sensor_msgs/Image`` of ``pixels_bgr`` in ``encoding``."""
    step, data = encode(encoding, pixels_bgr, big_endian)
    msg = Image()
    msg.header = stamped(stamp_ns, frame_id)
    msg.height, msg.width = pixels_bgr.shape[:2]
    msg.encoding, msg.step, msg.is_bigendian, msg.data = encoding, step, big_endian, data
    return msg


def publisher(graph, topic, msg_type=Image, qos=RELIABLE):
    """Return a publisher on ``topic`` once the node under test subscribes to it."""
    pub = graph.node.create_publisher(msg_type, topic, qos)
    graph.wait_for(lambda: pub.get_subscription_count() > 0, f'a subscriber on {topic}')
    return pub


def collect_outputs(graph, namespace):
    """Return the lists the node's ``instances`` and ``detections`` messages are appended to."""
    return (graph.collect(InstanceArray, f'{namespace}/instances'),
            graph.collect(Detection2DArray, f'{namespace}/detections'))
