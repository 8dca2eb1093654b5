"""``yolact predict --depth --intrinsics``: the 3D fields of each detection in the JSON.

Each image is matched with a depth image (the ``--depth`` file, or the file of the same name
stem in the ``--depth`` folder: ``0001.jpg`` takes ``0001.png``), read as ``uint16``
millimetres (PNG / TIFF) or ``float32`` metres (32-bit TIFF / ``.npy``), and back-projected with
the intrinsics of a camera_info YAML file (what ``camera_calibration`` writes, or a
``sensor_msgs/CameraInfo`` as YAML), as the node does with ``depth.enabled``.
"""

from pathlib import Path
from typing import Dict, List, Mapping, Optional

import numpy as np

from yolact_ros.cli import CommandError
from yolact_ros.geometry import CameraIntrinsics

DEPTH_SUFFIXES = ('.png', '.tif', '.tiff', '.npy', '.pgm')


class DepthInput:
    """Depth images and intrinsics for ``predict``; adds the 3D fields to COCO results."""

    def __init__(self, depth: Path, intrinsics: Path, options: Mapping) -> None:
        self.depth = Path(depth)
        if not self.depth.exists():
            raise CommandError(f'--depth {self.depth}: no such file or folder')
        self.intrinsics = read_intrinsics(Path(intrinsics))
        self.options = dict(options)

    def depth_path(self, image: Path) -> Optional[Path]:
        """Return the depth image of ``image``: the file, or the same stem in the folder."""
        if self.depth.is_file():
            return self.depth
        for suffix in DEPTH_SUFFIXES:
            candidate = self.depth / f'{image.stem}{suffix}'
            if candidate.is_file():
                return candidate
        return None

    def add_fields(self, detections, image: Path, results: List[dict]) -> None:
        """Add ``num_points``, ``valid_3d``, ``position`` and ``bbox_3d`` to ``results``.

        Camera optical frame (x right, y down, z forward), metres; see ``Instance.msg``.

        Raises:
            ValueError: no depth image for ``image``, or one that does not fit it; the text
                names the files.
        """
        from yolact_ros.geometry import instances_3d

        path = self.depth_path(image)
        if path is None:
            raise ValueError(f'{image}: no depth image {image.stem}.* '
                             f'({", ".join(DEPTH_SUFFIXES)}) in {self.depth}')
        try:
            geometry = instances_3d(detections.mask_windows, read_depth(path), self.intrinsics,
                                    **self.options)
        except ValueError as error:
            raise ValueError(f'{image} with depth {path}: {error}') from None
        for result, item in zip(results, geometry):
            result.update(fields_3d(item))


def fields_3d(item) -> Dict[str, object]:
    """Return the JSON 3D fields of an ``Instance3D`` (zeros without points, as the message)."""
    if item.count == 0:
        zero = [0.0, 0.0, 0.0]
        return {'num_points': 0, 'valid_3d': False, 'position': zero,
                'bbox_3d': {'center': zero, 'size': zero}}
    return {'num_points': int(item.count), 'valid_3d': bool(item.reliable),
            'position': [round(float(v), 5) for v in item.centroid],
            'bbox_3d': {'center': [round(float(v), 5) for v in item.box_center],
                        'size': [round(float(v), 5) for v in item.box_size]}}


def read_depth(path: Path) -> np.ndarray:
    """Read a depth image: ``uint16`` millimetres or ``float32`` metres ``[H, W]``.

    Raises:
        ValueError: unreadable, or not one channel of uint16 or float.
    """
    import cv2

    if path.suffix == '.npy':
        depth = np.load(path)
    else:
        depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise ValueError(f'{path}: cannot read depth image')
    if depth.ndim != 2 or depth.dtype not in (np.uint16, np.float32, np.float64):
        raise ValueError(f'{path}: expected a one-channel uint16 (mm) or float32 (m) depth '
                         f'image, got {depth.dtype}{list(depth.shape)}')
    return depth


def read_intrinsics(path: Path) -> CameraIntrinsics:
    """Read a camera_info YAML file (calibration file or CameraInfo fields).

    Raises:
        CommandError: unreadable, or without width, height and a camera matrix.
    """
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
        return CameraIntrinsics.from_camera_info_dict(document)
    except (OSError, yaml.YAMLError, ValueError, TypeError, AttributeError) as error:
        raise CommandError(f'--intrinsics {path}: {error}') from None
