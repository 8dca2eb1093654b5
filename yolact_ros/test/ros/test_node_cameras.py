"""segment_node with two cameras under real rclpy: one batch of both, outputs per namespace.

The bundled model at the shipped parameters does the work, wrapped to count its calls; each
camera sees another synthetic scene, so each camera's instances can be told apart.
"""

import threading

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import (
    bgr_image, stamp_ns, start_shipped_node, synthetic_scene, wait_stamp)
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.data.synthetic import CATEGORIES
from yolact_ros.ros.params import load_segmenter

NAMESPACE = '/multi'
CAMERAS = ('front', 'rear')
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20,
                      reliability=ReliabilityPolicy.RELIABLE)
CLASS_OF = dict(CATEGORIES)


class CountingSegmenter:
    """The real Segmenter, recording each call's batch size; :attr:`gate` holds calls back."""

    def __init__(self, segmenter) -> None:
        self.wrapped = segmenter
        self.batches = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, images):
        self.entered.set()
        self.gate.wait(30.0)
        self.batches.append(1 if isinstance(images, np.ndarray) else len(images))
        return self.wrapped(images)

    @property
    def postprocess(self):
        return self.wrapped.postprocess

    @postprocess.setter
    def postprocess(self, config) -> None:
        self.wrapped.postprocess = config

    def __getattr__(self, name):
        return getattr(self.wrapped, name)


@pytest.fixture(scope='module')
def graph(module_graph):
    return module_graph


@pytest.fixture(scope='module')
def counting():
    return {}


@pytest.fixture(scope='module')
def node(graph, counting):
    def factory(params):
        counting['segmenter'] = CountingSegmenter(load_segmenter(params))
        return counting['segmenter']

    return start_shipped_node(graph, NAMESPACE, segmenter_factory=factory,
                              cameras=list(CAMERAS))


@pytest.fixture(scope='module')
def cameras(graph, node):
    """Return ``{camera: (publisher, instances, detections)}``, all connected to the node."""
    io = {}
    for camera in CAMERAS:
        prefix = f'{NAMESPACE}/{camera}'
        publisher = graph.node.create_publisher(Image, f'{prefix}/image', RELIABLE)
        io[camera] = (publisher, graph.collect(InstanceArray, f'{prefix}/instances', RELIABLE),
                      graph.collect(Detection2DArray, f'{prefix}/detections', RELIABLE))
        graph.wait_for(lambda: publisher.get_subscription_count() > 0, f'{camera} subscribed')
        for topic in ('instances', 'detections'):
            output = node._outputs[f'{camera}/{topic}']
            graph.wait_for(lambda: output.get_subscription_count() > 0, f'{camera}/{topic}')
    return io


SCENES = {'front': synthetic_scene(13, count=3), 'rear': synthetic_scene(14, count=2)}


def classes(out) -> set:
    """Return the class names of the published instances."""
    return {instance.class_name for instance in out.instances}


def test_one_batch_serves_both_cameras_each_under_its_namespace(graph, node, counting,
                                                                cameras):
    segmenter = counting['segmenter']
    assert node.count_subscribers(f'{NAMESPACE}/image') == 0  # no unnamed camera
    front, rear = cameras['front'][0], cameras['rear'][0]
    # What the node's own model finds on each camera's frame alone. Not the scenes' truth: the
    # rear square is hard (the 160 px demo model scored a triangle and a star above it; the
    # current one, at 192 and 224 px, reports a triangle and a star instead).
    alone = {camera: {CLASS_OF[int(c)] for c in segmenter.wrapped(scene.image).category_ids}
             for camera, scene in SCENES.items()}
    assert alone['front'] != alone['rear']  # so a frame sent to the wrong camera would show
    for round_ in range(2):
        # Hold the model on a front frame while a frame of each camera waits: then one batch.
        segmenter.batches.clear()
        segmenter.gate.clear()
        segmenter.entered.clear()
        front.publish(bgr_image(SCENES['front'].image, 100 + 10 * round_, 'front_cam'))
        graph.wait_for(segmenter.entered.is_set, 'the model to start on the first frame')
        front.publish(bgr_image(SCENES['front'].image, 101 + 10 * round_, 'front_cam'))
        rear.publish(bgr_image(SCENES['rear'].image, 102 + 10 * round_, 'rear_cam'))
        graph.wait_for(lambda: all(stream.slot.pending for stream in node._streams),
                       'a frame of each camera waiting')
        segmenter.gate.set()
        for camera, stamp in (('front', 101 + 10 * round_), ('rear', 102 + 10 * round_)):
            _, instances, detections = cameras[camera]
            out = wait_stamp(graph, instances, stamp, f'{camera} instances', timeout=60.0)
            wait_stamp(graph, detections, stamp, f'{camera} detections', timeout=60.0)
            assert out.header.frame_id == f'{camera}_cam'
            assert classes(out) == alone[camera], (camera, classes(out))
        assert segmenter.batches == [1, 2]
    for camera in CAMERAS:  # nothing went to the other camera's topics
        _, instances, _ = cameras[camera]
        assert {m.header.frame_id for m in instances} == {f'{camera}_cam'}


def test_a_camera_that_stops_does_not_stall_the_other(graph, node, counting, cameras):
    diagnostics = graph.collect(DiagnosticArray, '/diagnostics')
    publisher, instances, _ = cameras['front']
    for stamp in range(200, 205):  # rear is silent
        publisher.publish(bgr_image(SCENES['front'].image, stamp, 'front_cam'))
        wait_stamp(graph, instances, stamp, 'front instances', timeout=10.0)
    assert counting['segmenter'].batches[-5:] == [1] * 5

    def statuses():
        found = {}
        for array in list(diagnostics):
            for item in array.status:
                found[item.name] = {kv.key: kv.value for kv in item.values}
        return found

    names = [f'segment_node: segmentation {camera}' for camera in CAMERAS]
    graph.wait_for(lambda: all(name in statuses() for name in names)
                   and statuses()[names[0]]['frames_processed'] == '9',
                   'per-camera diagnostics after the front frames')
    front, rear = (statuses()[name] for name in names)
    assert front['input_topic'] == f'{NAMESPACE}/front/image'
    assert rear['input_topic'] == f'{NAMESPACE}/rear/image'
    assert (front['frames_received'], front['dropped_frames']) == ('9', '0')
    assert (rear['frames_processed'], rear['dropped_frames']) == ('2', '0')
    assert float(front['latency_p50_ms']) > 0 and float(rear['latency_p50_ms']) > 0
    assert stamp_ns(instances[-1].header) == 204
