"""segment_node with the real Segmenter: the bundled model, the shipped params.yaml, real rclpy.

Frames are rendered synthetic scenes with known objects (like the model's training data), so the
published instances can be checked against the truth: count, scores, classes and masks.
"""

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import (
    bgr_image, Graph, shipped_params, start_shipped_node, synthetic_scene, wait_stamp)
from sensor_msgs.msg import Image
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.data.synthetic import CATEGORIES
from yolact_ros.ros.mask_encoding import decode_mask
from yolact_ros.weights import DEMO_WEIGHTS

NAMESPACE = '/real'
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20,
                      reliability=ReliabilityPolicy.RELIABLE)
CLASS_OF = dict(CATEGORIES)


@pytest.fixture(scope='module')
def graph():
    rclpy.init()
    graph = Graph('real_model_helper')
    yield graph
    graph.close()
    rclpy.shutdown()


@pytest.fixture(scope='module')
def node(graph):
    """Start the node with the shipped parameters (weights '': the bundled model)."""
    assert shipped_params()['weights'] == ''
    return start_shipped_node(graph, NAMESPACE)


@pytest.fixture(scope='module')
def io(graph, node):
    """Return ``(publish, instances)``: a camera publisher and the received InstanceArrays."""
    instances = graph.collect(InstanceArray, f'{NAMESPACE}/instances', RELIABLE)
    publisher = graph.node.create_publisher(Image, f'{NAMESPACE}/image', RELIABLE)
    graph.wait_for(lambda: publisher.get_subscription_count() > 0, 'the node subscription')
    graph.wait_for(lambda: node._outputs['instances'].get_subscription_count() > 0,
                   'the instances subscription')
    return publisher.publish, instances


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_empty_weights_load_the_bundled_model_and_say_so(graph, node):
    graph.wait_for(lambda: any('bundled demo model' in line and DEMO_WEIGHTS in line
                               for line in graph.log_lines('real')),
                   'one log line naming the bundled weights file')
    assert node._segmenter.class_names == [name for _, name in CATEGORIES]


@pytest.mark.parametrize('seed', [1, 2, 3])
def test_published_instances_match_the_objects(graph, node, io, seed):
    publish, instances = io
    scene = synthetic_scene(seed)
    stamp = 1_000 + seed
    publish(bgr_image(scene.image, stamp, 'synth'))
    out = wait_stamp(graph, instances, stamp, 'instances of the scene', timeout=60.0)
    assert (out.header.frame_id, out.height, out.width) == ('synth', 256, 256)
    assert out.inference_ms > 0
    threshold = node.params.score_threshold
    truth = scene.instances
    assert abs(len(out.instances) - len(truth)) <= 1, [i.class_name for i in out.instances]
    assert all(instance.score >= threshold for instance in out.instances)
    masks = [(i.class_name, decode_mask(i.mask, 256, 256)) for i in out.instances]
    for shape in truth:
        name = CLASS_OF[shape.category_id]
        ious = [mask_iou(mask, shape.mask) for found, mask in masks if found == name]
        assert ious and max(ious) >= 0.7, f'{name} in scene {seed}: mask IoUs {ious}'


def test_classes_parameter_publishes_only_that_class(graph, node, io):
    publish, instances = io
    scene = synthetic_scene(3)  # a ring, a circle and a star
    assert sorted(CLASS_OF[s.category_id] for s in scene.instances) == ['circle', 'ring', 'star']
    assert node.set_parameters([Parameter('classes', value=['circle'])])[0].successful
    try:
        publish(bgr_image(scene.image, 2_000))
        out = wait_stamp(graph, instances, 2_000, timeout=60.0)
    finally:
        node.set_parameters([Parameter('classes', Parameter.Type.STRING_ARRAY, [])])
    assert out.instances and {i.class_name for i in out.instances} == {'circle'}
    (circle,) = [s for s in scene.instances if CLASS_OF[s.category_id] == 'circle']
    best = max(out.instances, key=lambda instance: instance.score)
    assert mask_iou(decode_mask(best.mask, 256, 256), circle.mask) >= 0.7


@pytest.mark.parametrize('side', [1, 2, 4])
def test_tiny_frames_give_no_empty_boxes(graph, node, io, side):
    publish, instances = io
    stamp = 3_000 + side
    for pixels in (np.zeros((side, side, 3), np.uint8),
                   np.random.default_rng(side).integers(0, 256, (side, side, 3), np.uint8)):
        stamp += 100
        publish(bgr_image(pixels, stamp))
        out = wait_stamp(graph, instances, stamp, f'instances of a {side}x{side} frame')
        assert (out.height, out.width) == (side, side)
        assert len(out.instances) <= 3, f'{len(out.instances)} instances in {side}x{side} pixels'
        for instance in out.instances:
            box = instance.bbox
            assert box.size_x > 0 and box.size_y > 0
            assert decode_mask(instance.mask, side, side).any()
