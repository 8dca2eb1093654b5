"""segment_node with two cameras and depth under real rclpy: each camera's 3D in its namespace.

The bundled model at the shipped parameters; each camera publishes colour, depth and camera_info
of its own rendered RGB-D scene (``depth_scene``) under its name and gets its 3D outputs there,
positions within 5 cm of the truth. A camera without camera_info warns naming its own topic and
stays 2D while the other still gets 3D.
"""

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from depth_scene import check_positions, publish_frame, rgbd_scene
from diagnostic_msgs.msg import DiagnosticArray
import pytest
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import start_shipped_node, wait_stamp
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from vision_msgs.msg import Detection3DArray
from yolact_ros_msgs.msg import InstanceArray

NAMESPACE = '/two_cams'
CAMERAS = ('front', 'rear')
SCENES = {'front': rgbd_scene(1), 'rear': rgbd_scene(2)}
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20,
                      reliability=ReliabilityPolicy.RELIABLE)
OUTPUTS = {'instances': InstanceArray, 'detections_3d': Detection3DArray, 'points': PointCloud2}
INPUTS = {'image': Image, 'depth/image': Image, 'depth/camera_info': CameraInfo}


@pytest.fixture(scope='module')
def graph(module_graph):
    return module_graph


@pytest.fixture(scope='module')
def node(graph):
    return start_shipped_node(graph, NAMESPACE, cameras=list(CAMERAS),
                              **{'depth.enabled': True, 'tracking.enabled': False})


@pytest.fixture(scope='module')
def io(graph, node):
    """Return ``{camera: (publishers, received)}``: its inputs and its outputs by topic."""
    found = {}
    for camera in CAMERAS:
        prefix = f'{NAMESPACE}/{camera}'
        received = {topic: graph.collect(kind, f'{prefix}/{topic}', RELIABLE)
                    for topic, kind in OUTPUTS.items()}
        publishers = {topic: graph.node.create_publisher(kind, f'{prefix}/{topic}', RELIABLE)
                      for topic, kind in INPUTS.items()}
        for topic, publisher in publishers.items():
            graph.wait_for(lambda: publisher.get_subscription_count() > 0,
                           f'a subscriber of {camera}/{topic}')
        for topic in OUTPUTS:
            output = node._outputs[f'{camera}/{topic}']
            graph.wait_for(lambda: output.get_subscription_count() > 0, f'{camera}/{topic}')
        found[camera] = publishers, received
    return found


def test_each_camera_publishes_3d_outputs_under_its_name(node):
    for camera in CAMERAS:
        assert {f'{camera}/{topic}' for topic in ('detections_3d', 'markers', 'points')} <= set(
            node._outputs)
    assert [stream.depth.info_topic for stream in node._streams] == [
        f'{NAMESPACE}/{camera}/depth/camera_info' for camera in CAMERAS]


def test_a_camera_without_camera_info_warns_naming_its_topic(graph, node, io):
    """The other camera still gets 3D."""
    for stamp in (1_000_000_000, 1_100_000_000):
        for camera in CAMERAS:
            publish_frame(io[camera][0], SCENES[camera], stamp, info=camera == 'front')
        front = wait_stamp(graph, io['front'][1]['instances'], stamp, 'front instances', 60.0)
        wait_stamp(graph, io['front'][1]['detections_3d'], stamp, 'front detections_3d')
        assert check_positions(SCENES['front'], front.instances) >= 2
        rear = wait_stamp(graph, io['rear'][1]['instances'], stamp, 'rear instances', 60.0)
        assert rear.instances and not any(i.valid_3d for i in rear.instances)
    warnings = [line for line in graph.log_lines('two_cams') if 'camera_info' in line]
    assert warnings == [f"no camera_info received on '{NAMESPACE}/rear/depth/camera_info': "
                        'publishing 2D outputs only until it comes']
    assert not io['rear'][1]['detections_3d']
    front_depth, rear_depth = (stream.depth for stream in node._streams)
    assert front_depth.paired >= 2 and front_depth.unpaired == 0
    assert rear_depth.paired == 0 and rear_depth.unpaired >= 2


def test_every_camera_pairs_its_own_depth_within_5_cm(graph, node, io):
    stamp = 2_000_000_000
    for camera in CAMERAS:
        publish_frame(io[camera][0], SCENES[camera], stamp)
    for camera in CAMERAS:
        received = io[camera][1]
        out = {topic: wait_stamp(graph, received[topic], stamp, f'{camera}/{topic}', 60.0)
               for topic in OUTPUTS}
        instances = out['instances'].instances
        assert check_positions(SCENES[camera], instances) >= 2, camera
        assert [d.id for d in out['detections_3d'].detections] == [
            str(i.id) for i in instances if i.valid_3d]
        assert out['points'].width == sum(i.num_points for i in instances if i.valid_3d) > 0


def test_each_camera_status_carries_its_depth_counts(graph, node, io):
    diagnostics = graph.collect(DiagnosticArray, '/diagnostics')

    def status(camera: str) -> dict:
        for array in reversed(list(diagnostics)):
            for item in array.status:
                if item.name == f'segment_node: segmentation {camera}':
                    return {kv.key: kv.value for kv in item.values}
        return {}

    graph.wait_for(lambda: all(status(camera) for camera in CAMERAS), 'per-camera diagnostics')
    front, rear = status('front'), status('rear')
    assert front['depth_topic'] == f'{NAMESPACE}/front/depth/image'
    assert rear['depth_topic'] == f'{NAMESPACE}/rear/depth/image'
    assert (front['depth_paired_frames'], front['depth_unpaired_frames']) == ('3', '0')
    assert (rear['depth_paired_frames'], rear['depth_unpaired_frames']) == ('1', '2')
