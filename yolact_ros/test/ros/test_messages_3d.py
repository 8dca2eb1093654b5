"""The 3D outputs built without a node: instances' 3D fields, detections_3d, markers, points.

A flat depth image of known depth under the FakeSegmenter's two instances, so every number is
computed by hand; rosbags classes (no rclpy), serialised to check every field is filled.
"""

import numpy as np
import pytest
from ros_harness import FakeSegmenter
from test_frame_pipeline import image_msg, TYPES, TYPESTORE

from yolact_ros.geometry import CameraIntrinsics
from yolact_ros.ros.frame_pipeline import (
    BadFrameError, DepthFrame, OutputOptions, process_frame)
from yolact_ros.ros.messages_3d import POINT_DTYPE
from yolact_ros.ros.params import NodeParams

HEIGHT, WIDTH = 24, 32
CAMERA = CameraIntrinsics(fx=40.0, fy=40.0, cx=15.5, cy=11.5, width=WIDTH, height=HEIGHT)
Z = 2.0
ALL_3D = OutputOptions(detections_3d=True, markers=True, points=True)
PIXELS = np.zeros((HEIGHT, WIDTH, 3), np.uint8)


def depth_frame(**kwargs) -> DepthFrame:
    depth = np.full((HEIGHT, WIDTH), int(Z * 1000), np.uint16)
    options = {'erode_px': 2, 'min_points': 5, **kwargs.pop('options', {})}
    return DepthFrame(depth=depth, intrinsics=CAMERA, options=options, **kwargs)


def run(options=ALL_3D, depth=None, tracker=None):
    return process_frame(image_msg('bgr8', PIXELS), FakeSegmenter(), TYPES, options,
                         depth=depth_frame() if depth is None else depth, tracker=tracker)


def person_expected():
    """Centroid and box of the person (left half) eroded by 2 px: columns 2..13, rows 2..21."""
    cols, rows = np.arange(2, WIDTH // 2 - 2), np.arange(2, HEIGHT - 2)
    x, y = (cols - CAMERA.cx) * Z / CAMERA.fx, (rows - CAMERA.cy) * Z / CAMERA.fy
    centroid = np.array([x.mean(), y.mean(), Z])
    size = np.array([x.max() - x.min(), y.max() - y.min(), 0.0])
    return centroid, size, cols.size * rows.size


def serialize(msg):
    return TYPESTORE.serialize_cdr(msg, msg.__msgtype__)


def test_instances_carry_the_3d_fields_and_detections_3d_the_same_ids_and_hypotheses():
    result = run()
    assert list(result.messages) == ['instances', 'detections', 'detections_3d', 'markers',
                                     'points']
    centroid, size, count = person_expected()
    person = result.messages['instances'].instances[0]
    assert (person.num_points, person.valid_3d) == (count, True)
    np.testing.assert_allclose([person.position.x, person.position.y, person.position.z],
                               centroid, atol=1e-5)
    np.testing.assert_allclose([person.bbox_3d.size.x, person.bbox_3d.size.y,
                                person.bbox_3d.size.z], size, atol=1e-5)
    assert person.bbox_3d.center.orientation.w == 1.0
    detections, detections_3d = (result.messages[k] for k in ('detections', 'detections_3d'))
    assert detections_3d.header is result.messages['instances'].header
    assert [d.id for d in detections_3d.detections] == [d.id for d in detections.detections]
    for d2, d3 in zip(detections.detections, detections_3d.detections):
        assert d3.results[0].hypothesis == d2.results[0].hypothesis
    pose = detections_3d.detections[0].results[0].pose.pose.position
    np.testing.assert_allclose([pose.x, pose.y, pose.z], centroid, atol=1e-5)
    for msg in result.messages.values():
        serialize(msg)


def test_markers_delete_all_first_then_a_box_and_a_label_per_instance_with_stable_ids():
    markers = run(tracker=lambda detections, stamp: np.array([7, 0])).messages['markers']
    kinds = [(m.ns, m.id, m.type, m.action) for m in markers.markers]
    assert kinds == [('boxes', 0, 1, 3), ('boxes', 7, 1, 0), ('labels', 7, 9, 0),
                     ('boxes', -2, 1, 0), ('labels', -2, 9, 0)]  # track 7; untracked: -2
    box, label = markers.markers[1:3]
    centroid, size, _ = person_expected()
    assert box.scale.z == pytest.approx(1e-3)  # a flat surface: the smallest scale RViz takes
    assert box.scale.x == pytest.approx(size[0], abs=1e-5)
    assert label.text == 'person 0.90 #7' and markers.markers[4].text == 'car 0.60'
    assert 0 < box.color.a < 1 and label.color.a == 1.0
    serialize(markers)


def test_point_cloud_has_xyz_instance_and_class_fields_with_the_kept_points():
    result = run()
    cloud = result.messages['points']
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
        ('x', 0, 7), ('y', 4, 7), ('z', 8, 7), ('instance_id', 12, 6), ('class_id', 16, 6)]
    points = np.frombuffer(bytes(cloud.data), POINT_DTYPE)
    geometry = result.geometry
    assert (cloud.height, cloud.width) == (1, geometry[0].count + geometry[1].count)
    assert cloud.row_step == 20 * cloud.width and cloud.point_step == 20
    person = points[points['instance_id'] == 1]
    assert set(points['instance_id']) == {1, 2} and set(person['class_id']) == {0}
    np.testing.assert_array_equal(np.stack([person['x'], person['y'], person['z']], 1),
                                  geometry[0].points)


def test_instances_below_min_points_are_flagged_and_left_out_of_the_3d_outputs():
    result = run(depth=depth_frame(options={'min_points': 100}))  # the car keeps 4 x 2 px
    person, car = result.messages['instances'].instances
    assert person.valid_3d and not car.valid_3d and 0 < car.num_points < 100
    assert [d.id for d in result.messages['detections_3d'].detections] == ['1']
    assert len(result.messages['markers'].markers) == 3


def test_without_depth_the_3d_fields_are_zero_and_no_3d_output_is_built():
    result = process_frame(image_msg('bgr8', PIXELS), FakeSegmenter(), TYPES, ALL_3D)
    assert list(result.messages) == ['instances', 'detections'] and result.geometry is None
    for instance in result.messages['instances'].instances:
        assert (instance.num_points, instance.valid_3d, instance.position.z,
                instance.bbox_3d.size.x) == (0, False, 0.0, 0.0)


def test_a_target_frame_moves_the_3d_outputs_and_renames_their_frame_only():
    rotation = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # optical->ROS
    translation = np.array([0.1, 0.0, 1.0])
    result = run(depth=depth_frame(frame_id='base', rotation=rotation, translation=translation))
    centroid, _, _ = person_expected()
    detection = result.messages['detections_3d'].detections[0]
    assert result.messages['detections_3d'].header.frame_id == 'base'
    assert result.messages['points'].header.frame_id == 'base'
    assert result.messages['instances'].header.frame_id == 'cam'
    assert detection.header.stamp == result.messages['instances'].header.stamp
    moved = rotation @ centroid + translation
    pose = detection.results[0].pose.pose.position
    np.testing.assert_allclose([pose.x, pose.y, pose.z], moved, atol=1e-5)
    position = result.messages['instances'].instances[0].position  # camera frame
    np.testing.assert_allclose([position.x, position.y, position.z], centroid, atol=1e-5)


def test_depth_of_another_aspect_ratio_is_a_bad_frame_naming_both_sizes():
    depth = DepthFrame(depth=np.ones((24, 24), np.uint16), intrinsics=CAMERA)
    with pytest.raises(BadFrameError, match='depth: cannot rescale depth of 24x24 to 32x24'):
        run(depth=depth)


def test_3d_options_follow_depth_enabled_and_the_subscriptions():
    off = OutputOptions.from_params(NodeParams(), instance_mask=False, overlay=False,
                                    markers=True, points=True)
    assert (off.detections_3d, off.markers, off.points) == (False, False, False)
    on = OutputOptions.from_params(NodeParams(depth_enabled=True), instance_mask=False,
                                   overlay=False, points=True)
    assert (on.detections_3d, on.markers, on.points) == (True, False, True)
