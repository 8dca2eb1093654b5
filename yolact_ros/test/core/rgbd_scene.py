"""Synthetic RGB-D scenes by ray casting: exact depth, instance masks and visible 3D points.

A pinhole camera with pixel centres at integer coordinates (as ``yolact_ros.geometry``): the pixel
in column ``u``, row ``v`` casts the ray ``((u - cx) / fx, (v - cy) / fy, 1)``, so the ray
parameter of a hit is its depth ``z``. Shapes are axis-aligned boxes and spheres in the camera
optical frame (x right, y down, z forward, metres) in front of a background plane ``z = const``.
"""

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box between corners ``lower`` and ``upper`` (metres)."""

    lower: Tuple[float, float, float]
    upper: Tuple[float, float, float]

    @classmethod
    def facing(cls, center_xy: Tuple[float, float], front_z: float,
               size: Tuple[float, float, float]) -> 'Box':
        """Return the box of ``size`` whose front face, centred at ``center_xy``, is at z."""
        (x, y), (sx, sy, sz) = center_xy, size
        return cls((x - sx / 2, y - sy / 2, front_z), (x + sx / 2, y + sy / 2, front_z + sz))

    def hit(self, rays: np.ndarray) -> np.ndarray:
        """Return the depth of the first hit of each ray ``[..., 3]`` (inf on a miss)."""
        with np.errstate(divide='ignore', invalid='ignore'):
            t1 = np.asarray(self.lower) / rays
            t2 = np.asarray(self.upper) / rays
        near = np.minimum(t1, t2).max(axis=-1)
        far = np.maximum(t1, t2).min(axis=-1)
        return np.where((near <= far) & (near > 0), near, np.inf)


@dataclass(frozen=True)
class Sphere:
    """Sphere of ``radius`` around ``center`` (metres)."""

    center: Tuple[float, float, float]
    radius: float

    def hit(self, rays: np.ndarray) -> np.ndarray:
        """Return the depth of the first hit of each ray ``[..., 3]`` (inf on a miss)."""
        center = np.asarray(self.center)
        a = (rays * rays).sum(axis=-1)
        b = rays @ center
        c = center @ center - self.radius ** 2
        disc = b * b - a * c
        with np.errstate(invalid='ignore'):
            t = (b - np.sqrt(disc)) / a
        return np.where((disc >= 0) & (t > 0), t, np.inf)


Shape = Union[Box, Sphere]


@dataclass(frozen=True)
class Scene:
    """One rendered view.

    Attributes:
        depth: ``float64[H, W]`` metres (the background plane where no shape is hit).
        labels: ``int64[H, W]`` index of the visible shape, -1 for the background.
        points: ``float64[H, W, 3]`` the visible surface point of each pixel.
        background: ``float64[H, W]`` depth of the background plane (behind everything).
    """

    depth: np.ndarray
    labels: np.ndarray
    points: np.ndarray
    background: np.ndarray

    @property
    def masks(self) -> np.ndarray:
        """Return ``bool[D, H, W]``, one mask per shape (empty when fully hidden)."""
        count = int(self.labels.max()) + 1
        return self.labels[None] == np.arange(max(count, 0))[:, None, None]

    def visible_points(self, mask: np.ndarray) -> np.ndarray:
        """Return the ground-truth surface points ``float64[n, 3]`` of the pixels of mask."""
        return self.points[mask]


def rays(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> np.ndarray:
    """Return the ray ``float64[H, W, 3]`` through each pixel centre (z component 1)."""
    v, u = np.mgrid[:height, :width].astype(np.float64)
    return np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], axis=-1)


def render(shapes: Sequence[Shape], camera, background_z: float = 3.5) -> Scene:
    """Ray cast ``shapes`` (listed by index in ``labels``) for ``camera`` (CameraIntrinsics)."""
    directions = rays(camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height)
    background = np.full(directions.shape[:2], float(background_z))
    hits = np.stack([background] + [shape.hit(directions) for shape in shapes])
    first = hits.argmin(axis=0)
    depth = np.take_along_axis(hits, first[None], axis=0)[0]
    labels = np.where(first == 0, -1, first - 1)
    return Scene(depth=depth, labels=labels, points=directions * depth[..., None],
                 background=background)


def corrupt(scene: Scene, rng: np.random.Generator, *, invalid: float = 0.3,
            flying: float = 0.02, edge_px: int = 3) -> np.ndarray:
    """Return ``uint16[H, W]`` millimetre depth with invalid (0) and flying pixels.

    ``flying`` of each mask's pixel count, drawn among its pixels within ``edge_px`` of its
    border, get a depth between the shape's and the background plane's; then ``invalid`` of
    all pixels are set to 0.
    """
    depth = scene.depth.copy()
    for mask in scene.masks:
        inner = mask.copy()
        for _ in range(edge_px):  # 4-neighbour erosion
            inner[1:-1, 1:-1] &= (inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2]
                                  & inner[1:-1, 2:])
        edge = np.flatnonzero(mask & ~inner)
        chosen = rng.choice(edge, min(edge.size, int(round(flying * mask.sum()))), replace=False)
        alpha = rng.uniform(0.1, 0.9, chosen.size)
        flat = depth.reshape(-1)
        flat[chosen] = (1 - alpha) * flat[chosen] + alpha * scene.background.reshape(-1)[chosen]
    millimetres = np.round(depth * 1000).astype(np.uint16)
    millimetres[rng.uniform(size=depth.shape) < invalid] = 0
    return millimetres
