"""Quaternions to rotation matrices, as the node's tf2 adapter uses them."""

import math

import numpy as np
import pytest

from yolact_ros.geometry import Instance3D, quaternion_matrix, transform_instances


def test_known_quaternions_give_known_rotations():
    np.testing.assert_allclose(quaternion_matrix(0, 0, 0, 1), np.eye(3))
    half = math.sqrt(0.5)
    # 90 degrees about z: x -> y
    np.testing.assert_allclose(quaternion_matrix(0, 0, half, half) @ [1, 0, 0], [0, 1, 0],
                               atol=1e-12)
    # camera optical frame -> ROS body frame (z forward -> x forward, x right -> -y)
    optical = quaternion_matrix(-0.5, 0.5, -0.5, 0.5)
    np.testing.assert_allclose(optical, [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    # not normalised: scaled first
    np.testing.assert_allclose(quaternion_matrix(0, 0, 2, 2), quaternion_matrix(0, 0, 1, 1))
    with pytest.raises(ValueError, match='non-zero finite quaternion'):
        quaternion_matrix(0, 0, 0, 0)


def test_a_tf_transform_moves_an_instance_exactly():
    points = np.array([[0.0, 0.0, 2.0], [0.1, 0.0, 2.0]], np.float32)
    instance = Instance3D(points=points, count=2, centroid=points.mean(0).astype(np.float64),
                          box_center=np.array([0.05, 0, 2.0]), box_size=np.array([0.1, 0, 0]),
                          reliable=True)
    rotation = quaternion_matrix(-0.5, 0.5, -0.5, 0.5)
    (moved,) = transform_instances([instance], rotation, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(moved.centroid, [2.0, -0.05, 1.0], atol=1e-6)
    np.testing.assert_allclose(moved.box_size, [0.0, 0.1, 0.0], atol=1e-6)
