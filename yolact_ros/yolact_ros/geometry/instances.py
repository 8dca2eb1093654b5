"""Instance masks plus an aligned depth image -> 3D points, centroids and boxes per instance.

Plain NumPy (OpenCV for erosion and masks, imported where used); no ROS. The ROS node turns
``CameraInfo`` into :class:`~yolact_ros.geometry.camera.CameraIntrinsics`, calls
:func:`instances_3d`, and moves the result into a planner's frame with
:func:`transform_instances`. Frames, pixel centres and depth units: see
:mod:`yolact_ros.geometry.camera`.
"""

from dataclasses import dataclass
import functools
import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from yolact_ros.geometry.camera import CameraIntrinsics, check_depth, resample_depth
from yolact_ros.structures import WindowedMasks

# Scale of the median absolute deviation that estimates a normal distribution's sigma.
MAD_TO_SIGMA = 1.4826
# Smallest outlier half-width in metres (one uint16 step): with MAD 0 (more than half the depths
# equal, e.g. a surface facing the camera), the depths within this of the median are kept.
MAD_FLOOR_M = 1e-3

_FLOAT_SLACK_M = 1e-5  # float32 rounding of depths at 10 m is ~1e-6 m
_MEDIAN_SAMPLES = 512  # median and MAD from at most this many (at least 1/4 of it) pixels


@dataclass(frozen=True, eq=False)
class Instance3D:
    """The 3D points of one instance and what a planner needs of them.

    When ``count`` is 0 every vector is NaN. When ``0 < count < min_points`` the values are
    computed from the few points left and ``reliable`` is False: use them with care (or not).

    Attributes:
        points: ``float32[n, 3]`` the kept points (x right, y down, z forward, metres, in the
            camera optical frame unless transformed). From :func:`instances_3d` a transposed
            view of one ``[3, n_total]`` block shared by the call's instances (x, y, z each
            contiguous); ``np.ascontiguousarray`` gives a row-major copy.
        count: ``n``, the number of kept points.
        centroid: ``float64[3]`` mean of the points (of the visible surface, not the object's
            centre: it lies on the near side).
        box_center: ``float64[3]`` centre of the axis-aligned box of the points.
        box_size: ``float64[3]`` extent of that box along x, y, z.
        reliable: ``count >= min_points``.
        oriented_center: ``float64[3]`` centre of the box along the principal axes, or None
            when not asked for.
        oriented_size: ``float64[3]`` its extent along each axis (largest variance first).
        orientation: ``float64[3, 3]`` rotation whose columns are the principal axes, largest
            variance first, ``det = +1``; a point ``p`` of the box is
            ``oriented_center + orientation @ q`` with ``|q| <= oriented_size / 2``.
    """

    points: np.ndarray
    count: int
    centroid: np.ndarray
    box_center: np.ndarray
    box_size: np.ndarray
    reliable: bool
    oriented_center: Optional[np.ndarray] = None
    oriented_size: Optional[np.ndarray] = None
    orientation: Optional[np.ndarray] = None


def instances_3d(masks: Union[np.ndarray, WindowedMasks], depth: np.ndarray,
                 intrinsics: CameraIntrinsics, *, erode_px: int = 2, min_depth: float = 0.1,
                 max_depth: float = 10.0, mad_k: float = 3.0, min_band: float = MAD_FLOOR_M,
                 min_points: int = 20, oriented: bool = False) -> Sequence[Instance3D]:
    """Back-project each instance's mask through the aligned depth image.

    Per instance, touching only its window of the image:

    1. erode the mask by ``erode_px`` pixels (a square kernel; outside the window, and outside
       the image, counts as background), dropping the edge pixels whose depth is often
       the background's or a mix (flying pixels);
    2. keep the valid depths in ``[min_depth, max_depth]`` metres;
    3. drop outliers along the ray: keep ``|z - median| <= max(mad_k * 1.4826 * MAD,
       min_band)``. The floor keeps a surface facing the camera whole when more than half its
       depths are equal and MAD is 0. Median and MAD are estimated on at most 512 of the
       mask's pixels (every ``s``-th row and column of the image, ``s`` from the mask's pixel
       count, so windows and dense masks sample the same pixels). Note that surfaces steep
       along the ray beside a dominant one facing the camera (the side of a box off the
       optical axis) lie outside the band and are dropped; raise ``min_band`` to keep them;
    4. back-project the pixels left (pinhole convention: :mod:`yolact_ros.geometry.camera`).

    Args:
        masks: ``bool[D, H, W]`` or :class:`WindowedMasks` of an ``H`` x ``W`` image (dense
            masks are cropped to the box of their pixels first).
        depth: ``uint16[H', W']`` millimetres or ``float32[H', W']`` metres, registered to the
            masks' image. A different size of the same aspect ratio is resampled (nearest
            neighbour, see :func:`resample_depth`; the only full-image work).
        intrinsics: of the masks' image; other sizes of the same aspect ratio are scaled.
        erode_px: pixels removed at the mask border (0: none).
        min_depth: nearest depth kept, metres.
        max_depth: farthest depth kept, metres.
        mad_k: half-width of the kept depth band in robust sigmas.
        min_band: smallest half-width of the kept depth band, metres (default 1 mm, one
            ``uint16`` step).
        min_points: fewer kept points make the instance unreliable.
        oriented: also fit a box along the principal axes of the points.

    Returns:
        One :class:`Instance3D` per mask, in the masks' order.

    Raises:
        ValueError: for masks or depth of the wrong shape or dtype, or depth or intrinsics of
            another aspect ratio than the masks (the message names both sizes).
    """
    import cv2

    check_depth(depth)
    if isinstance(masks, np.ndarray):
        if masks.ndim != 3:
            raise ValueError(f'expected masks bool[D, H, W], got shape {list(masks.shape)}')
        masks = _tight_windows(masks.astype(bool, copy=False))
    elif not isinstance(masks, WindowedMasks):
        raise ValueError(f'expected masks as bool[D, H, W] or WindowedMasks, got '
                         f'{type(masks).__name__}')
    if erode_px < 0 or mad_k <= 0 or min_band < 0 or not min_depth < max_depth:
        raise ValueError(f'expected erode_px >= 0, mad_k > 0, min_band >= 0 and min_depth < '
                         f'max_depth, got erode_px={erode_px}, mad_k={mad_k}, '
                         f'min_band={min_band}, min_depth={min_depth}, max_depth={max_depth}')
    height, width = masks.image_size
    if intrinsics.size != (height, width):
        intrinsics = intrinsics.scaled_to(width, height)
    if depth.shape != (height, width):
        depth = resample_depth(depth, width, height)  # the only full-image work
    depth_flat = np.ascontiguousarray(depth).reshape(-1)
    ray_x, ray_y = _ray_images(intrinsics)
    kernel = np.ones((2 * erode_px + 1, 2 * erode_px + 1), np.uint8) if erode_px else None
    band = _DepthBand(depth.dtype, min_depth, max_depth, mad_k, min_band)
    selections = []  # per mask: int64[n_i] image (flat) indices of its kept pixels
    for index, window in enumerate(masks.windows):
        rows, cols = masks.slices(index)
        window = window.view(np.uint8)
        if kernel is not None and window.size:
            window = cv2.erode(window, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        selected = band.select(window, depth[rows, cols], (rows.start, cols.start))
        if not selected.any():
            selections.append(np.zeros(0, np.int64))
            continue
        # (h, w) -> (n,) window indices, row-major; + each row's offset -> image indices.
        per_row = cv2.reduce(selected, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).reshape(-1)
        offsets = _row_offsets(rows, cols, width)
        selections.append(np.flatnonzero(selected.view(bool)) + np.repeat(offsets, per_row))
    # Points of mask i: columns ends[i] - counts[i] .. ends[i] of one [3, n_total] block, so
    # that x, y and z are contiguous (one reduceat per statistic, no [n, 3] interleaving).
    counts = np.array([selection.size for selection in selections], np.int64)
    ends = np.cumsum(counts)
    block = np.empty((3, int(ends[-1]) if len(ends) else 0), np.float32)
    for selection, end in zip(selections, ends.tolist()):
        x, y, z = block[:, end - selection.size:end]
        band.meters(depth_flat.take(selection), out=z)
        np.multiply(ray_x.take(selection), z, out=x)
        np.multiply(ray_y.take(selection), z, out=y)
    centroids, lower, upper = _segment_statistics(block, counts)
    results = []
    for index, (count, end) in enumerate(zip(counts.tolist(), ends.tolist())):
        results.append(_instance(block[:, end - count:end].T, centroids[index], lower[index],
                                 upper[index], min_points, oriented))
    return results


def instance_from_points(points: np.ndarray, *, min_points: int = 20,
                         oriented: bool = False) -> Instance3D:
    """Summarise ``float32[n, 3]`` points as an :class:`Instance3D` (NaN vectors when empty).

    The oriented box (``oriented=True``) has the eigenvectors of the points' covariance as
    axes, largest variance first, each signed so that its largest component is positive and
    the third replaced by the cross product of the first two (a right-handed rotation).
    """
    points = np.asarray(points, np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f'expected points float32[n, 3], got shape {list(points.shape)}')
    centroids, lower, upper = _segment_statistics(
        [np.ascontiguousarray(points[:, axis]) for axis in range(3)],
        np.array([len(points)], np.int64))
    return _instance(points, centroids[0], lower[0], upper[0], min_points, oriented)


def transform_instances(instances: Sequence[Instance3D], rotation: np.ndarray,
                        translation: np.ndarray) -> Sequence[Instance3D]:
    """Move instances into another frame: ``p' = rotation @ p + translation``.

    For a tf2 lookup of the camera optical frame in the target frame: ``rotation`` is the
    quaternion as a matrix, ``translation`` the vector. Points, centroids and oriented boxes
    are moved (centroids in float64, exactly up to rounding); the axis-aligned box is
    recomputed from the moved points, the tight box in the new axes (moving the old box's
    corners would give a larger one). ``count`` and ``reliable`` stay.

    Args:
        instances: as :func:`instances_3d` returns them.
        rotation: ``float[3, 3]`` proper rotation (orthonormal, ``det = +1``).
        translation: ``float[3]``.
    """
    rotation = np.asarray(rotation, np.float64)
    translation = np.asarray(translation, np.float64).reshape(-1)
    if rotation.shape != (3, 3) or translation.shape != (3,):
        raise ValueError(f'expected rotation [3, 3] and translation [3], got '
                         f'{list(rotation.shape)} and {list(translation.shape)}')
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-5) \
            or np.linalg.det(rotation) < 0:
        raise ValueError(f'expected a proper rotation matrix, got {rotation.tolist()} '
                         f'(det {np.linalg.det(rotation):.6f})')
    moved = []
    for instance in instances:
        points = (instance.points.astype(np.float64) @ rotation.T + translation).astype(
            np.float32)
        summary = instance_from_points(points)
        oriented = instance.orientation is not None
        moved.append(Instance3D(
            points=points, count=instance.count,
            centroid=rotation @ instance.centroid + translation,
            box_center=summary.box_center, box_size=summary.box_size,
            reliable=instance.reliable,
            oriented_center=rotation @ instance.oriented_center + translation if oriented
            else None,
            oriented_size=instance.oriented_size, orientation=rotation @ instance.orientation
            if oriented else None))
    return moved


class _DepthBand:
    """Selects the pixels of a mask whose depth lies in the valid range and the MAD band."""

    def __init__(self, dtype: np.dtype, min_depth: float, max_depth: float, mad_k: float,
                 min_band: float) -> None:
        self.millimetres = dtype == np.uint16
        self.unit = 1e-3 if self.millimetres else 1.0  # metres per depth unit
        self.mad_k, self.min_band = float(mad_k), float(min_band)
        self.valid = self.bounds(min_depth, max_depth)

    def bounds(self, low: float, high: float) -> Tuple[float, float]:
        """Return ``[low, high]`` metres in depth units, shrunk to exclude 0 and +-inf."""
        if self.millimetres:  # integer bounds: depth_mm / 1000 in [low, high]
            return max(math.ceil(low * 1000), 1), min(math.floor(high * 1000), 65535)
        limit = float(np.finfo(np.float32).max)
        return max(low, float(np.finfo(np.float32).tiny)), min(high, limit)

    def meters(self, values: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write raw depth ``values`` as float32 metres to ``out``."""
        if self.millimetres:
            return np.multiply(values, np.float32(1e-3), out=out, dtype=np.float32)
        out[...] = values
        return out

    def select(self, mask: np.ndarray, depth: np.ndarray, origin: Tuple[int, int]) -> np.ndarray:
        """Return ``uint8[h, w]``, nonzero at the mask's pixels with depth in the MAD band.

        Args:
            mask: ``uint8[h, w]`` the (eroded) mask window, 0 or 1.
            depth: ``[h, w]`` raw depth of the window.
            origin: (y, x) of the window in the image, to align the sample grid.
        """
        import cv2

        count = np.count_nonzero(mask)
        if count == 0:
            return mask
        # Median and MAD of a sample: every step-th row and column of the image.
        step = math.ceil(math.sqrt(count / _MEDIAN_SAMPLES))
        top, left = (-origin[0]) % step, (-origin[1]) % step
        sample = depth[top::step, left::step][mask[top::step, left::step].view(bool)]
        low, high = self.valid
        sample = sample[(sample >= low) & (sample <= high)]
        if sample.size == 0:  # the grid missed the valid pixels, if any: look at all
            sample = depth[mask.view(bool)]
            sample = sample[(sample >= low) & (sample <= high)]
            if sample.size == 0:
                return np.zeros_like(mask)
        sample = sample.astype(np.float32)  # depth units; no uint16 wrap-around below
        median = _median(sample)
        mad = _median(np.abs(sample - np.float32(median))) * self.unit
        median *= self.unit
        limit = max(self.mad_k * MAD_TO_SIGMA * mad, self.min_band) + _FLOAT_SLACK_M
        low, high = self.bounds(max(low * self.unit, median - limit),
                                min(high * self.unit, median + limit))
        if low > high:
            return np.zeros_like(mask)
        # inRange: 255 where low <= depth <= high (never at NaN); & mask: 1 where selected
        return cv2.bitwise_and(cv2.inRange(depth, low, high), mask)


def _median(values: np.ndarray) -> float:
    """Return the upper median of a non-empty ``values[n]`` (one partition, not two)."""
    middle = values.size // 2
    return float(np.partition(values, middle)[middle])


def _segment_statistics(coordinates: Sequence[np.ndarray], counts: np.ndarray) -> Tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Return the means, minima and maxima ``float64[D, 3]`` of consecutive runs of points.

    Args:
        coordinates: x, y, z, each ``float32[n_total]``, the points of run ``i`` after those
            of runs ``0 .. i-1``.
        counts: ``int64[D]`` points per run; NaN rows for empty runs.
    """
    means, lower, upper = (np.full((len(counts), 3), np.nan) for _ in range(3))
    filled = counts > 0
    if filled.any():
        starts = (np.cumsum(counts) - counts)[filled]
        for axis, values in enumerate(coordinates):
            # float64 sums: reduceat adds in order, without numpy's pairwise summation
            means[filled, axis] = np.add.reduceat(values, starts, dtype=np.float64)
            lower[filled, axis] = np.minimum.reduceat(values, starts)
            upper[filled, axis] = np.maximum.reduceat(values, starts)
        means[filled] /= counts[filled, None]
    return means, lower, upper


def _instance(points: np.ndarray, centroid: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              min_points: int, oriented: bool) -> Instance3D:
    """Return the :class:`Instance3D` of ``points`` with their mean, minimum and maximum."""
    count = len(points)
    oriented_center = oriented_size = orientation = None
    if oriented:
        if count == 0:
            oriented_center, oriented_size = np.full(3, np.nan), np.full(3, np.nan)
            orientation = np.full((3, 3), np.nan)
        else:
            oriented_center, oriented_size, orientation = _oriented_box(points, centroid)
    return Instance3D(points=points, count=count, centroid=centroid,
                      box_center=(lower + upper) / 2, box_size=upper - lower,
                      reliable=count >= min_points, oriented_center=oriented_center,
                      oriented_size=oriented_size, orientation=orientation)


def _row_offsets(rows: slice, cols: slice, width: int) -> np.ndarray:
    """Return ``int64[h]``: image index minus window index of each row of a window."""
    window_width = cols.stop - cols.start
    first = rows.start * width + cols.start
    # row i: (top + i) * width + left - i * window_width
    return first + np.arange(rows.stop - rows.start, dtype=np.int64) * (width - window_width)


@functools.lru_cache(maxsize=4)
def _ray_images(intrinsics: CameraIntrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``float32[H * W]`` x and y of each pixel's ray (z = 1), row-major, read-only."""
    height, width = intrinsics.size
    ray_x = ((np.arange(width) - intrinsics.cx) / intrinsics.fx).astype(np.float32)
    ray_y = ((np.arange(height) - intrinsics.cy) / intrinsics.fy).astype(np.float32)
    images = (np.broadcast_to(ray_x[None, :], (height, width)).reshape(-1),
              np.broadcast_to(ray_y[:, None], (height, width)).reshape(-1))
    for image in images:
        image.flags.writeable = False
    return images


def _oriented_box(points: np.ndarray, centroid: np.ndarray) -> Tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """Return the centre ``[3]``, size ``[3]`` and axes ``[3, 3]`` of the principal-axes box."""
    # [n, 3] -> [3, n] (a view for instances_3d's points): contiguous rows for fast reductions
    centred = np.ascontiguousarray(points.T) - centroid.astype(np.float32)[:, None]
    covariance = (centred @ centred.T).astype(np.float64) / max(len(points), 1)
    _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues
    axes = vectors[:, ::-1].copy()
    for column in range(2):
        axis = axes[:, column]
        if axis[np.argmax(np.abs(axis))] < 0:
            axes[:, column] = -axis
    axes[:, 2] = np.cross(axes[:, 0], axes[:, 1])
    local = axes.T.astype(np.float32) @ centred  # (3, n): coordinates along the axes
    lower = local.min(axis=1).astype(np.float64)
    upper = local.max(axis=1).astype(np.float64)
    return centroid + axes @ ((lower + upper) / 2), upper - lower, axes


def _tight_windows(masks: np.ndarray) -> WindowedMasks:
    """Return dense ``bool[D, H, W]`` masks as windows cropped to the box of their pixels."""
    rows_any = masks.any(axis=2)  # (D, H)
    cols_any = masks.any(axis=1)  # (D, W)
    origins = np.zeros((len(masks), 2), np.int64)
    windows = []
    for index, mask in enumerate(masks):
        rows, cols = np.flatnonzero(rows_any[index]), np.flatnonzero(cols_any[index])
        if rows.size == 0:
            windows.append(mask[:0, :0])
            continue
        origins[index] = rows[0], cols[0]
        windows.append(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    return WindowedMasks(tuple(masks.shape[1:]), origins, tuple(windows))
