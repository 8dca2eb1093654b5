"""Instances in 3D: exact geometry against ray-cast RGB-D scenes (rgbd_scene.py)."""

import cv2
import numpy as np
import pytest
from rgbd_scene import Box, corrupt, render, Sphere
import yaml

from yolact_ros.geometry import (
    CameraIntrinsics, depth_to_meters, instance_from_points, instances_3d, resample_depth,
    transform_instances)
from yolact_ros.structures import WindowedMasks

CAMERA = CameraIntrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)
# 0, 3: boxes facing the camera, unoccluded, straddling the optical axis in x (no side face
# in view; 3 is a thin panel, its top face a 1.5-pixel sliver). 2 hides part of 1 and is
# partly hidden by 0. Background plane at 3.5 m.
SHAPES = [Box.facing((-0.1, 0.08), 1.2, (0.30, 0.24, 0.20)),
          Box.facing((0.30, -0.10), 2.0, (0.50, 0.40, 0.30)),
          Sphere((0.12, 0.0, 1.6), 0.15),
          Box.facing((0.05, 0.70), 2.8, (0.40, 0.30, 0.05)),
          Sphere((-0.9, -0.5, 2.4), 0.25)]
FACING_BOXES = (0, 3)


@pytest.fixture(scope='module')
def scene():
    return render(SHAPES, CAMERA)


def eroded(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT,
                     borderValue=0).astype(bool)


def test_scene_is_as_designed(scene):
    counts = scene.masks.sum(axis=(1, 2))
    assert counts.tolist() == pytest.approx([13755, 8722, 6098, 4349, 10351], rel=0.01)
    # pinhole convention: the pixel at the principal point looks straight ahead
    assert scene.points[239, 319].tolist() == pytest.approx([-0.5 * 1.2 / 525] * 2 + [1.2])


def test_intrinsics_from_camera_info_message_and_calibration_yaml():
    message = {'width': 640, 'height': 480, 'k': [525.0, 0, 319.5, 0, 526.0, 239.5, 0, 0, 1],
               'p': [520.0, 0, 318.0, 0, 0, 521.0, 238.0, 0, 0, 0, 1, 0]}
    assert CameraIntrinsics.from_camera_info_dict(message) == CameraIntrinsics(
        525.0, 526.0, 319.5, 239.5, 640, 480)
    assert CameraIntrinsics.from_camera_info_dict(message, projection=True) == \
        CameraIntrinsics(520.0, 521.0, 318.0, 238.0, 640, 480)
    calibration = yaml.safe_load('''
image_width: 640
image_height: 480
camera_name: rgb
camera_matrix:
  rows: 3
  cols: 3
  data: [525.0, 0.0, 319.5, 0.0, 526.0, 239.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}
''')
    assert CameraIntrinsics.from_camera_info_dict(calibration) == CameraIntrinsics(
        525.0, 526.0, 319.5, 239.5, 640, 480)
    with pytest.raises(ValueError, match='image_width'):
        CameraIntrinsics.from_camera_info_dict({'k': message['k']})
    with pytest.raises(ValueError, match='3x3 matrix of 9 numbers, got 4'):
        CameraIntrinsics.from_camera_info_dict({'width': 2, 'height': 2, 'k': [1, 0, 0, 1]})


def test_scaled_intrinsics_keep_the_image_edges_and_refuse_other_aspect_ratios():
    half = CAMERA.scaled_to(320, 240)
    assert half == CameraIntrinsics(262.5, 262.5, 159.5, 119.5, 320, 240)
    assert half.scaled_to(640, 480) == CAMERA
    assert CAMERA.scaled_to(641, 481).width == 641  # 0.05 % off: accepted
    with pytest.raises(ValueError, match='640x480 to 640x360'):
        CAMERA.scaled_to(640, 360)


def test_depth_to_meters_marks_zero_nan_and_inf_invalid():
    millimetres = np.array([[0, 1000, 2345, 65535]], np.uint16)
    meters = depth_to_meters(millimetres)
    assert meters.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(meters), [[True, False, False, False]])
    np.testing.assert_allclose(meters[0, 1:], [1.0, 2.345, 65.535], rtol=1e-7)
    floats = np.array([[0.0, np.nan, np.inf, -np.inf, 1.5]], np.float32)
    np.testing.assert_array_equal(np.isnan(depth_to_meters(floats)),
                                  [[True, True, True, True, False]])
    with pytest.raises(ValueError, match='uint16'):
        depth_to_meters(np.zeros((2, 2), np.int32))


def test_resample_depth_takes_the_pixel_under_each_centre():
    depth = np.random.default_rng(0).integers(0, 5000, (240, 320)).astype(np.uint16)
    for width, height in ((640, 480), (160, 120)):  # integer ratios: OpenCV agrees
        resampled = resample_depth(depth, width, height)
        assert resampled.dtype == np.uint16
        np.testing.assert_array_equal(resampled, cv2.resize(
            depth, (width, height), interpolation=cv2.INTER_NEAREST_EXACT))
    # 320 -> 480 columns: output column 4 (centre 4.5) is input 4.5 * 2 / 3 = 3.0 -> 3
    resampled = resample_depth(depth.astype(np.float32), 480, 360)
    assert resampled.dtype == np.float32
    np.testing.assert_array_equal(resampled[0, :8], depth[0, [0, 1, 1, 2, 3, 3, 4, 5]])
    with pytest.raises(ValueError, match='320x240 to 640x360'):
        resample_depth(depth, 640, 360)


def test_centroids_are_the_mean_of_the_visible_surface(scene):
    depth = scene.depth.astype(np.float32)
    for erode_px in (0, 2):
        instances = instances_3d(scene.masks, depth, CAMERA, erode_px=erode_px)
        for index, (instance, mask) in enumerate(zip(instances, scene.masks)):
            truth = scene.visible_points(eroded(mask, erode_px))
            assert instance.reliable and instance.count > 0.95 * len(truth), index
            # within 1 cm: the 1.5-pixel top face of the panel (3) lies outside the depth band
            np.testing.assert_allclose(instance.centroid, truth.mean(axis=0), atol=0.01,
                                       err_msg=f'instance {index}, erode_px={erode_px}')
    # Without erosion, the box facing the camera: its front face, every pixel, exactly.
    instance = instances_3d(scene.masks[:1], depth, CAMERA, erode_px=0)[0]
    truth = scene.visible_points(scene.masks[0])
    assert instance.count == len(truth)
    np.testing.assert_allclose(instance.points, truth, atol=2e-6)


def test_boxes_facing_the_camera_have_their_true_width_and_height(scene):
    depth = scene.depth.astype(np.float32)
    for erode_px in (0, 2):
        instances = instances_3d(scene.masks, depth, CAMERA, erode_px=erode_px)
        for index in FACING_BOXES:
            shape, instance = SHAPES[index], instances[index]
            size = np.subtract(shape.upper, shape.lower)
            # pixel centres span one footprint (z / f) less; erosion takes 2 * erode_px more
            # (give or take two: the panel's mask has 2 rows of top face, eroded first)
            footprint = shape.lower[2] / CAMERA.fx
            expected = size[:2] - (2 * erode_px + 1) * footprint
            np.testing.assert_allclose(instance.box_size[:2], expected, atol=2 * footprint)
            if erode_px == 0:
                np.testing.assert_allclose(instance.box_size[:2], size[:2], atol=0.02)
            assert instance.box_size[2] < 0.002  # the front face: one depth
            assert instance.box_center[2] == pytest.approx(shape.lower[2], abs=1e-6)


def test_invalid_and_flying_pixels_are_rejected(scene):
    depth = corrupt(scene, np.random.default_rng(1), invalid=0.3, flying=0.02)
    assert (depth == 0).mean() == pytest.approx(0.3, abs=0.01)
    for erode_px in (0, 2):
        instances = instances_3d(scene.masks, depth, CAMERA, erode_px=erode_px)
        for index, (instance, mask) in enumerate(zip(instances, scene.masks)):
            truth = scene.visible_points(mask)
            assert instance.reliable
            np.testing.assert_allclose(instance.centroid, truth.mean(axis=0), atol=0.03,
                                       err_msg=f'instance {index}, erode_px={erode_px}')
            inner = scene.visible_points(eroded(mask, erode_px))
            np.testing.assert_allclose(instance.box_size[:2], np.ptp(inner[:, :2], axis=0),
                                       atol=0.03, err_msg=f'instance {index}')
            assert instance.points[:, 2].max() <= truth[:, 2].max() + 0.01  # no flying pixel
        for index in FACING_BOXES:
            size = np.subtract(SHAPES[index].upper, SHAPES[index].lower)
            np.testing.assert_allclose(instances[index].box_size[:2], size[:2], atol=0.03)


def test_millimetres_and_metres_agree(scene):
    in_metres = instances_3d(scene.masks, scene.depth.astype(np.float32), CAMERA)
    in_millimetres = instances_3d(
        scene.masks, np.round(scene.depth * 1000).astype(np.uint16), CAMERA)
    for metres, millimetres in zip(in_metres, in_millimetres):
        np.testing.assert_allclose(millimetres.centroid, metres.centroid, atol=0.001)
        # extremes: a point near the band's edge may fall either side of it
        np.testing.assert_allclose(millimetres.box_size, metres.box_size, atol=0.002)
        np.testing.assert_allclose(millimetres.box_center, metres.box_center, atol=0.001)


def test_half_resolution_depth_gives_the_same_instances(scene):
    half = render(SHAPES, CAMERA.scaled_to(320, 240))
    full = instances_3d(scene.masks, scene.depth.astype(np.float32), CAMERA)
    for depth in (half.depth.astype(np.float32), np.round(half.depth * 1000).astype(np.uint16)):
        resampled = instances_3d(scene.masks, depth, CAMERA)
        for index, (a, b) in enumerate(zip(resampled, full)):
            np.testing.assert_allclose(a.centroid, b.centroid, atol=0.02, err_msg=str(index))
            np.testing.assert_allclose(a.box_size, b.box_size, atol=0.02, err_msg=str(index))
    # intrinsics of another size of the same view are scaled to the masks' size
    scaled = instances_3d(scene.masks, scene.depth.astype(np.float32), CAMERA.scaled_to(320, 240))
    np.testing.assert_allclose(scaled[0].centroid, full[0].centroid, atol=1e-6)


def test_other_aspect_ratios_are_refused_naming_both_sizes(scene):
    with pytest.raises(ValueError, match='640x360 to 640x480'):
        instances_3d(scene.masks, np.zeros((360, 640), np.uint16), CAMERA)
    wide = CameraIntrinsics(525.0, 525.0, 319.5, 179.5, 640, 360)
    with pytest.raises(ValueError, match='640x360 to 640x480'):
        instances_3d(scene.masks, scene.depth.astype(np.float32), wide)
    with pytest.raises(ValueError, match=r'masks bool\[D, H, W\]'):
        instances_3d(scene.masks[0], scene.depth, CAMERA)


def test_empty_masks_and_missing_depth_are_unreliable_not_errors(scene):
    masks = np.zeros((3, 480, 640), bool)
    masks[1] = scene.masks[0]
    masks[2, 100:103, 100:103] = True  # 9 pixels < min_points
    depth = scene.depth.astype(np.float32)
    depth[scene.masks[0]] = np.nan
    empty, no_depth, tiny = instances_3d(masks, depth, CAMERA, erode_px=0)
    for instance in (empty, no_depth):
        assert not instance.reliable and instance.count == 0
        assert instance.points.shape == (0, 3)
        assert np.isnan(instance.centroid).all() and np.isnan(instance.box_size).all()
    assert not tiny.reliable and tiny.count == 9 and np.isfinite(tiny.centroid).all()
    assert instances_3d(WindowedMasks.empty((480, 640)), depth, CAMERA) == []
    empty_windows = WindowedMasks((480, 640), np.array([[0, 0], [5, 5]]),
                                  (np.zeros((0, 5), bool), np.zeros((3, 0), bool)))
    for erode_px in (0, 2):
        assert [i.count for i in instances_3d(empty_windows, depth, CAMERA,
                                              erode_px=erode_px)] == [0, 0]
    oriented = instances_3d(masks[:1], depth, CAMERA, oriented=True)[0]
    assert np.isnan(oriented.orientation).all()


def test_windows_give_what_dense_masks_give(scene):
    depth = corrupt(scene, np.random.default_rng(2))
    dense = scene.masks
    # loose windows, as the postprocessor's: the tight box grown by up to 9 pixels
    rng = np.random.default_rng(3)
    origins, windows = [], []
    for mask in dense:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        top, left = max(rows[0] - rng.integers(10), 0), max(cols[0] - rng.integers(10), 0)
        bottom, right = min(rows[-1] + 1 + rng.integers(10), 480), \
            min(cols[-1] + 1 + rng.integers(10), 640)
        origins.append((top, left))
        windows.append(mask[top:bottom, left:right])
    windowed = WindowedMasks((480, 640), np.array(origins, np.int64), tuple(windows))
    for a, b in zip(instances_3d(windowed, depth, CAMERA), instances_3d(dense, depth, CAMERA)):
        np.testing.assert_array_equal(a.points, b.points)
        np.testing.assert_array_equal(a.centroid, b.centroid)
        np.testing.assert_array_equal(a.box_size, b.box_size)


def test_side_faces_beyond_the_band_are_dropped_unless_min_band_allows(scene):
    box = Box.facing((-0.6, 0.0), 1.2, (0.3, 0.2, 0.3))  # right face in view, 28 px wide
    side = render([box], CAMERA)
    mask = side.masks[0]
    truth = side.visible_points(mask)
    front = truth[truth[:, 2] < 1.2 + 1e-9]
    assert len(truth) - len(front) > 2000
    narrow = instances_3d(side.masks, side.depth.astype(np.float32), CAMERA, erode_px=0)[0]
    np.testing.assert_allclose(narrow.centroid, front.mean(axis=0), atol=1e-5)
    wide = instances_3d(side.masks, side.depth.astype(np.float32), CAMERA, erode_px=0,
                        min_band=0.5)[0]
    np.testing.assert_allclose(wide.centroid, truth.mean(axis=0), atol=1e-5)


def rotation_about(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def test_oriented_box_recovers_the_axes_of_an_elongated_point_set():
    rotation = rotation_about([1, 2, 3], 0.7)
    local = np.random.default_rng(4).uniform(-0.5, 0.5, (20000, 3)) * [0.8, 0.3, 0.05]
    center = np.array([0.2, -0.1, 2.0])
    points = (local @ rotation.T + center).astype(np.float32)
    instance = instance_from_points(points, oriented=True)
    axes = instance.orientation
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-9)
    assert np.linalg.det(axes) == pytest.approx(1.0)
    np.testing.assert_allclose(np.abs(np.sum(axes * rotation, axis=0)), 1.0, atol=1e-3)
    np.testing.assert_allclose(instance.oriented_size, [0.8, 0.3, 0.05], atol=0.005)
    np.testing.assert_allclose(instance.oriented_center, center, atol=0.005)
    assert instance.box_size[0] > 0.3  # the axis-aligned box is larger


def test_oriented_box_of_a_rendered_face_lies_in_its_plane(scene):
    instance = instances_3d(scene.masks[:1], scene.depth.astype(np.float32), CAMERA,
                            oriented=True)[0]
    np.testing.assert_allclose(np.abs(instance.orientation), np.eye(3), atol=1e-6)
    np.testing.assert_allclose(instance.oriented_size, instance.box_size, atol=1e-6)


def test_transform_moves_centroids_exactly_and_recomputes_the_box(scene):
    instances = instances_3d(scene.masks, scene.depth.astype(np.float32), CAMERA,
                             oriented=True)
    rotation = rotation_about([0.3, -1.0, 0.2], 1.1)
    translation = np.array([1.0, -2.0, 0.5])
    moved = transform_instances(instances, rotation, translation)
    for before, after in zip(instances, moved):
        np.testing.assert_allclose(after.centroid, rotation @ before.centroid + translation,
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(after.points, before.points @ rotation.T + translation,
                                   atol=1e-6)
        np.testing.assert_allclose(after.box_size, np.ptp(after.points, axis=0), atol=1e-12)
        np.testing.assert_allclose(after.orientation, rotation @ before.orientation,
                                   atol=1e-12)
        np.testing.assert_array_equal(after.oriented_size, before.oriented_size)
        assert after.count == before.count and after.reliable == before.reliable
    # Quarter turn about z: x -> y, y -> -x.
    quarter = transform_instances(instances[:1], rotation_about([0, 0, 1], np.pi / 2),
                                  np.zeros(3))[0]
    np.testing.assert_allclose(quarter.box_size, instances[0].box_size[[1, 0, 2]], atol=1e-6)
    with pytest.raises(ValueError, match='proper rotation'):
        transform_instances(instances, np.diag([1.0, 1.0, -1.0]), translation)
