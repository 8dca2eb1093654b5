"""RGB-D test scenes the bundled model can read: demo shapes as flat cut-outs at known depths.

The colour image is :func:`ros_harness.synthetic_scene`'s (shapes the demo model was trained
on); the depth image is ray cast with the geometry tests' camera model
(``test/core/rgbd_scene.py``): each shape is a flat cut-out facing the camera at its own depth
in front of a background plane, so the 3D centroid of each object's visible surface is known.
"""

from dataclasses import dataclass
from pathlib import Path
import sys
from typing import List

import numpy as np
from ros_harness import synthetic_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'core'))
from rgbd_scene import rays  # noqa: E402, I100 - the geometry tests' camera model

from yolact_ros.geometry import CameraIntrinsics  # noqa: E402, I100

SIZE = 256
CAMERA = CameraIntrinsics(fx=250.0, fy=250.0, cx=127.5, cy=127.5, width=SIZE, height=SIZE)
BACKGROUND_Z = 3.0
DEPTHS = (1.2, 1.6, 2.0, 2.4)  # metres, shape by shape


@dataclass(frozen=True)
class RgbdScene:
    """A colour scene with its registered depth and the truth in 3D.

    Attributes:
        scene: the colour scene (``image``, ``instances`` with masks and category ids).
        depth_mm: ``uint16[H, W]`` depth, millimetres.
        centroids: ``float64[3]`` per instance: the mean of its visible surface points.
    """

    scene: object
    depth_mm: np.ndarray
    centroids: List[np.ndarray]


def rgbd_scene(seed: int, count: int = 3) -> RgbdScene:
    """Return the scene of ``synthetic_scene(seed, count)`` with depth (deterministic)."""
    scene = synthetic_scene(seed, count=count, size=SIZE)
    directions = rays(CAMERA.fx, CAMERA.fy, CAMERA.cx, CAMERA.cy, SIZE, SIZE)
    depth = np.full((SIZE, SIZE), BACKGROUND_Z)
    centroids = []
    for instance, z in zip(scene.instances, DEPTHS):
        depth[instance.mask] = z  # the plane z = const: the ray parameter of the hit is z
        centroids.append((directions[instance.mask] * z).mean(axis=0))
    return RgbdScene(scene=scene, depth_mm=np.round(depth * 1000).astype(np.uint16),
                     centroids=centroids)


def camera_info_dict() -> dict:
    """Return the camera as ``sensor_msgs/CameraInfo`` fields (also a camera_info YAML)."""
    k = [CAMERA.fx, 0.0, CAMERA.cx, 0.0, CAMERA.fy, CAMERA.cy, 0.0, 0.0, 1.0]
    return {'width': SIZE, 'height': SIZE, 'k': k, 'distortion_model': 'plumb_bob',
            'd': [0.0] * 5, 'r': [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
            'p': k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0]}
