"""Rigid transforms as tf2 gives them: a unit quaternion and a translation.

The node's tf2 adapter turns a ``geometry_msgs/Transform`` into the rotation matrix and
translation that :func:`yolact_ros.geometry.transform_instances` takes.
"""

import numpy as np


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Return the rotation matrix ``float64[3, 3]`` of the quaternion ``(x, y, z, w)``.

    The quaternion is normalised first (tf2's are unit up to rounding).

    Raises:
        ValueError: for a zero or non-finite quaternion.
    """
    q = np.array([x, y, z, w], np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f'expected a non-zero finite quaternion, got {q.tolist()}')
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
