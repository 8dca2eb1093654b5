"""segment_node with depth (issue 15) under real rclpy, the bundled model and the shipped params.

Colour, depth and camera_info of rendered RGB-D scenes (``depth_scene``): every object the model
finds in 2D gets a 3D position within 5 cm of the truth, ``detections_3d`` repeats the ids and
hypotheses of ``detections``, the markers and the labelled cloud follow them. Without
camera_info, one warning names the topic and the 2D outputs keep flowing.
"""

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from depth_scene import check_positions, publish_frame, rgbd_scene
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import Graph, stamp_ns, start_shipped_node, wait_stamp
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from vision_msgs.msg import Detection2DArray, Detection3DArray
from visualization_msgs.msg import MarkerArray
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros.messages_3d import POINT_DTYPE

NAMESPACE = '/rgbd'
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20,
                      reliability=ReliabilityPolicy.RELIABLE)
OUTPUTS = {'instances': InstanceArray, 'detections': Detection2DArray,
           'detections_3d': Detection3DArray, 'markers': MarkerArray, 'points': PointCloud2}


@pytest.fixture(scope='module')
def graph(ros_context):
    helper = Graph('rgbd_helper')
    yield helper
    helper.close()


@pytest.fixture(scope='module')
def node(graph):
    return start_shipped_node(graph, NAMESPACE,
                              **{'depth.enabled': True, 'tracking.enabled': False})


@pytest.fixture(scope='module')
def io(graph, node):
    """Return ``(publishers, received)``: image, depth and info publishers; outputs by topic."""
    received = {topic: graph.collect(kind, f'{NAMESPACE}/{topic}', RELIABLE)
                for topic, kind in OUTPUTS.items()}
    publishers = {topic: graph.node.create_publisher(kind, f'{NAMESPACE}/{topic}', RELIABLE)
                  for topic, kind in (('image', Image), ('depth/image', Image),
                                      ('depth/camera_info', CameraInfo))}
    for topic, publisher in publishers.items():
        graph.wait_for(lambda: publisher.get_subscription_count() > 0, f'a subscriber of {topic}')
    for topic in OUTPUTS:
        graph.wait_for(lambda: node._outputs[topic].get_subscription_count() > 0,
                       f'the {topic} subscription')
    return publishers, received


def test_missing_camera_info_warns_once_naming_the_topic_and_2d_keeps_flowing(graph, node, io):
    publishers, received = io
    rgbd = rgbd_scene(1)
    for stamp in (1_000_000_000, 1_100_000_000):
        publish_frame(publishers, rgbd, stamp, info=False)
        instances = wait_stamp(graph, received['instances'], stamp, 'instances', timeout=60.0)
        assert instances.instances and all(i.num_points == 0 and not i.valid_3d
                                           for i in instances.instances)
        wait_stamp(graph, received['detections'], stamp, 'detections')
    warnings = [line for line in graph.log_lines('rgbd') if 'camera_info' in line]
    assert warnings == [f"no camera_info received on '{NAMESPACE}/depth/camera_info': "
                        'publishing 2D outputs only until it comes']
    assert not received['detections_3d'] and node._streams[0].depth.unpaired >= 2


@pytest.mark.parametrize('seed', [1, 2])
def test_every_object_found_in_2d_gets_a_3d_position_within_5_cm(graph, node, io, seed):
    publishers, received = io
    rgbd = rgbd_scene(seed)
    stamp = 2_000_000_000 + seed * 100_000_000
    publish_frame(publishers, rgbd, stamp)
    out = {topic: wait_stamp(graph, received[topic], stamp, topic, timeout=60.0)
           for topic in OUTPUTS if topic != 'markers'}
    graph.wait_for(lambda: any(stamp_ns(m.markers[0].header) == stamp
                               for m in received['markers']), 'markers')
    out['markers'] = next(m for m in received['markers']
                          if stamp_ns(m.markers[0].header) == stamp)
    instances = out['instances'].instances
    found = check_positions(rgbd, instances)
    assert found >= 2, [i.class_name for i in instances]
    detections, detections_3d = out['detections'].detections, out['detections_3d'].detections
    valid_ids = [str(i.id) for i in instances if i.valid_3d]
    assert [d.id for d in detections_3d] == valid_ids
    by_id = {d.id: d for d in detections}
    for d3 in detections_3d:
        assert d3.results[0].hypothesis == by_id[d3.id].results[0].hypothesis
        assert 0 < d3.bbox.size.x < 1.0 and 0 < d3.bbox.size.y < 1.0
    check_markers_and_cloud(out, instances)


def check_markers_and_cloud(out, instances) -> None:
    markers = out['markers'].markers
    assert markers[0].action == 3  # DELETEALL first
    valid = [i for i in instances if i.valid_3d]
    assert sorted(m.id for m in markers[1:] if m.ns == 'boxes') == sorted(i.id for i in valid)
    assert all(m.header.frame_id == 'synth' for m in markers)
    cloud = out['points']
    points = np.frombuffer(bytes(cloud.data), POINT_DTYPE)
    assert cloud.width == sum(i.num_points for i in valid) == len(points)
    for instance in valid:
        mine = points[points['instance_id'] == instance.id]
        assert len(mine) == instance.num_points and set(mine['class_id']) == {instance.class_id}
        assert np.mean(mine['z']) == pytest.approx(instance.position.z, abs=1e-3)


def test_target_frame_without_tf2_warns_once_and_stays_in_the_camera_frame(graph, node, io):
    try:
        import tf2_ros  # noqa: F401
        pytest.skip('tf2_ros is installed: the outputs would be transformed')
    except ImportError:
        pass
    publishers, received = io
    assert node.set_parameters([Parameter('target_frame', value='base_link')])[0].successful
    try:
        for stamp in (3_000_000_000, 3_100_000_000):
            publish_frame(publishers, rgbd_scene(1), stamp)
            out = wait_stamp(graph, received['detections_3d'], stamp, 'detections_3d',
                             timeout=60.0)
            assert out.header.frame_id == 'synth' and out.detections
    finally:
        node.set_parameters([Parameter('target_frame', value='')])
    warnings = [line for line in graph.log_lines('rgbd') if 'tf2_ros' in line]
    assert warnings == ["target_frame 'base_link' needs tf2_ros, which is not installed: 3D "
                        'outputs stay in the camera frame']
