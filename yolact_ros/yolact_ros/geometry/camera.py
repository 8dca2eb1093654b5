"""Pinhole camera intrinsics and depth images: units, validity, resampling.

Conventions (shared by :mod:`yolact_ros.geometry.instances`):

* Camera optical frame (REP 103): x right, y down, z forward, metres.
* Pixel centres sit at integer coordinates, as in OpenCV and ``sensor_msgs/CameraInfo``: the
  pixel in column ``u``, row ``v`` looks along the ray ``((u - cx) / fx, (v - cy) / fy, 1)``,
  so a point at depth ``z`` (distance along the optical axis, not along the ray) is
  ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``. With this convention the centre of a
  640 x 480 image is ``(319.5, 239.5)``.
* Depth images: ``uint16`` millimetres or ``float32`` / ``float64`` metres; ``0``, NaN and
  +-inf mark pixels without a measurement.
"""

from dataclasses import dataclass
import math
from typing import Any, Mapping, Sequence, Tuple

import numpy as np

# Largest relative difference of aspect ratios accepted when rescaling depth or intrinsics.
ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels (no distortion).

    Attributes:
        fx: focal length along x, pixels.
        fy: focal length along y, pixels.
        cx: principal point column, pixels (pixel centres at integers).
        cy: principal point row, pixels.
        width: image width the intrinsics belong to, pixels.
        height: image height, pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        """Check that the focal lengths and the image size are positive and finite."""
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f'expected finite intrinsics with fx, fy > 0, got fx={self.fx}, '
                             f'fy={self.fy}, cx={self.cx}, cy={self.cy}')
        if int(self.width) != self.width or int(self.height) != self.height \
                or self.width <= 0 or self.height <= 0:
            raise ValueError(f'expected a positive integer image size, got '
                             f'{self.width}x{self.height}')

    @classmethod
    def from_camera_info_dict(cls, info: Mapping[str, Any], *,
                              projection: bool = False) -> 'CameraIntrinsics':
        """Read a ``sensor_msgs/CameraInfo`` as a dict, or a parsed camera_info YAML file.

        Both spellings are read: the message's fields (``width``, ``height``, ``k`` as 9
        numbers, ``p`` as 12; upper-case ``K``/``P`` as ROS 1 wrote them) and the calibration
        file that ``camera_calibration_parsers`` writes (``image_width``, ``image_height``,
        ``camera_matrix: {rows: 3, cols: 3, data: [...]}``, ``projection_matrix``).

        Args:
            info: the mapping (e.g. ``yaml.safe_load`` of the file, or a message as a dict).
            projection: read fx, fy, cx, cy from the projection matrix ``P`` (the intrinsics
                of the rectified image) instead of ``K`` (of the raw image).
        """
        width = _first(info, ('width', 'image_width'))
        height = _first(info, ('height', 'image_height'))
        if projection:
            matrix, shape = _first(info, ('p', 'P', 'projection_matrix')), (3, 4)
        else:
            matrix, shape = _first(info, ('k', 'K', 'camera_matrix')), (3, 3)
        if width is None or height is None or matrix is None:
            raise ValueError(f'expected width/height (or image_width/image_height) and a '
                             f'{"projection" if projection else "camera"} matrix, got keys '
                             f'{sorted(info)}')
        if isinstance(matrix, Mapping):
            matrix = matrix.get('data')
        matrix = np.asarray(matrix, np.float64).reshape(-1)
        if matrix.size != shape[0] * shape[1]:
            raise ValueError(f'expected a {shape[0]}x{shape[1]} matrix of '
                             f'{shape[0] * shape[1]} numbers, got {matrix.size}')
        matrix = matrix.reshape(shape)
        return cls(fx=float(matrix[0, 0]), fy=float(matrix[1, 1]), cx=float(matrix[0, 2]),
                   cy=float(matrix[1, 2]), width=int(width), height=int(height))

    @property
    def size(self) -> Tuple[int, int]:
        """Return ``(height, width)``, the order of image shapes."""
        return int(self.height), int(self.width)

    def scaled_to(self, width: int, height: int) -> 'CameraIntrinsics':
        """Return the intrinsics of the same view resampled to ``width`` x ``height``.

        ``fx`` scales with the width ratio ``s``, ``fy`` with the height ratio. With pixel
        centres at integers the principal point moves by half a pixel more than a plain
        scaling: ``cx' = (cx + 0.5) * s - 0.5`` (the image's left edge, at ``-0.5``, stays at
        ``-0.5``); at 320 x 240 from 640 x 480, ``cx = 319.5`` becomes 159.5, not 159.75.

        Raises:
            ValueError: when the aspect ratios differ by more than 1 % (the fields of view
                would differ: a crop or padding, not a resampling).
        """
        _check_same_aspect((self.width, self.height), (width, height), 'intrinsics')
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(fx=self.fx * sx, fy=self.fy * sy, cx=(self.cx + 0.5) * sx - 0.5,
                                cy=(self.cy + 0.5) * sy - 0.5, width=int(width),
                                height=int(height))


def depth_to_meters(depth: np.ndarray) -> np.ndarray:
    """Return a depth image as ``float32[H, W]`` metres with NaN where there is no measurement.

    Args:
        depth: ``uint16[H, W]`` millimetres, or ``float32[H, W]`` / ``float64[H, W]`` metres;
            ``0``, NaN and +-inf are invalid.
    """
    check_depth(depth)
    if depth.dtype == np.uint16:
        meters = np.multiply(depth, np.float32(1e-3), dtype=np.float32)
    else:
        meters = depth.astype(np.float32)
    meters[~((meters > 0) & np.isfinite(meters))] = np.nan
    return meters


def resample_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Return ``depth`` resampled to ``height`` x ``width`` with nearest neighbours.

    The output pixel at integer ``(v, u)`` takes the input pixel holding its centre, row
    ``floor((v + 0.5) * H_in / height)`` in exact integers (PIL's nearest; OpenCV's
    ``INTER_NEAREST_EXACT`` but for ties at non-integer ratios, where its fixed point rounds
    down), so the image edges stay aligned. No values are mixed: invalid pixels stay invalid and no
    depth between two surfaces is made up. The dtype is kept.

    Raises:
        ValueError: when the aspect ratios differ by more than 1 %.
    """
    check_depth(depth)
    rows, cols = _nearest_maps(depth.shape, (height, width))
    return depth[rows[:, None], cols[None, :]]


def _first(info: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """Return the value of the first of ``keys`` present in ``info``, else None."""
    for key in keys:
        if key in info and info[key] is not None:
            return info[key]
    return None


def _check_same_aspect(source: Tuple[int, int], target: Tuple[int, int], what: str) -> None:
    """Raise when ``(width, height)`` sizes ``source`` and ``target`` differ in aspect ratio."""
    (w0, h0), (w1, h1) = source, target
    if min(w0, h0, w1, h1) <= 0:
        raise ValueError(f'cannot rescale {what} of {w0}x{h0} to {w1}x{h1}: empty size')
    ratio = (w1 / w0) / (h1 / h0)
    if abs(ratio - 1) > ASPECT_TOLERANCE:
        raise ValueError(f'cannot rescale {what} of {w0}x{h0} to {w1}x{h1}: the aspect ratios '
                         f'differ by {abs(ratio - 1):.1%} (> {ASPECT_TOLERANCE:.0%}), so the '
                         f'fields of view differ (a crop, not a resampling)')


def check_depth(depth: np.ndarray) -> None:
    """Raise unless ``depth`` is a ``uint16`` or float image ``[H, W]``."""
    if not isinstance(depth, np.ndarray) or depth.ndim != 2 or depth.dtype not in (
            np.uint16, np.float32, np.float64):
        shape = list(getattr(depth, 'shape', []))
        raise ValueError(f'expected depth uint16[H, W] (mm) or float32[H, W] (m), got '
                         f'{getattr(depth, "dtype", type(depth).__name__)}{shape}')


def _nearest_maps(source: Tuple[int, int],
                  target: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Return the source rows ``int64[H]`` and columns ``int64[W]`` of each target pixel."""
    (h0, w0), (h1, w1) = source, target
    _check_same_aspect((w0, h0), (w1, h1), 'depth')
    # floor((i + 0.5) * n_in / n_out) in integers: exact at ties such as 4.5 * 320 / 480
    rows = (2 * np.arange(h1, dtype=np.int64) + 1) * h0 // (2 * h1)
    cols = (2 * np.arange(w1, dtype=np.int64) + 1) * w0 // (2 * w1)
    return rows, cols
