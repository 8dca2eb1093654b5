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

from yolact_ros.data.synthetic import CATEGORIES  # noqa: E402, I100
from yolact_ros.geometry import CameraIntrinsics  # noqa: E402

SIZE = 256
CAMERA = CameraIntrinsics(fx=250.0, fy=250.0, cx=127.5, cy=127.5, width=SIZE, height=SIZE)
BACKGROUND_Z = 3.0
DEPTHS = (1.2, 1.6, 2.0, 2.4)  # metres, shape by shape
CLASS_OF = dict(CATEGORIES)


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


def depth_image(depth_mm: np.ndarray, stamp: int):
    """Return a ``16UC1`` ``sensor_msgs/Image`` of millimetre depth."""
    from ros_harness import stamped
    from sensor_msgs.msg import Image

    height, width = depth_mm.shape
    return Image(header=stamped(stamp, 'synth'), height=height, width=width, encoding='16UC1',
                 step=width * 2, data=depth_mm.astype('<u2').tobytes())


def camera_info(stamp: int):
    """Return the camera as a ``sensor_msgs/CameraInfo`` stamped ``stamp``."""
    from ros_harness import stamped
    from sensor_msgs.msg import CameraInfo

    return CameraInfo(header=stamped(stamp, 'synth'), **camera_info_dict())


def publish_frame(publishers: dict, rgbd: RgbdScene, stamp: int, info: bool = True) -> None:
    """Publish camera_info (unless not ``info``), depth (2 ms later) and the colour image."""
    from ros_harness import bgr_image

    if info:
        publishers['depth/camera_info'].publish(camera_info(stamp))
    publishers['depth/image'].publish(depth_image(rgbd.depth_mm, stamp + 2_000_000))
    publishers['image'].publish(bgr_image(rgbd.scene.image, stamp, 'synth'))


def check_positions(rgbd: RgbdScene, instances) -> int:
    """Assert each shape's instance (the first of its class) lies within 5 cm of the truth.

    Returns how many shapes were found (an undetected shape is not checked).
    """
    found = 0
    for shape, centroid in zip(rgbd.scene.instances, rgbd.centroids):
        matches = [i for i in instances if i.class_name == CLASS_OF[shape.category_id]]
        if not matches:
            continue
        found += 1
        instance = matches[0]
        position = np.array([instance.position.x, instance.position.y, instance.position.z])
        assert instance.valid_3d and instance.num_points >= 20
        assert np.linalg.norm(position - centroid) < 0.05, (instance.class_name, position,
                                                            centroid)
    return found
