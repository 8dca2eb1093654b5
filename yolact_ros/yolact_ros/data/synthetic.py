"""Synthetic instance-segmentation data: textured shapes on cluttered backgrounds.

A scene is a background (colour gradient, low-frequency blotches, distractor strokes that are
*not* objects) with shapes of several classes painted back to front, so that later shapes occlude
earlier ones. Each annotation is the *visible* part of a shape (possibly several pieces, holes
kept), encoded as COCO compressed RLE; shapes with fewer than ``min_visible_pixels`` visible pixels
are dropped.

Every scene is a pure function of the random generator it is drawn from. Written datasets:
:mod:`yolact_ros.data.synthetic_dataset`; moving scenes (videos, tracking sequences):
:mod:`yolact_ros.data.synthetic_sequence`.
"""

from dataclasses import dataclass, field
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

# Category ids are not contiguous on purpose (like COCO's): the id -> label mapping gets exercised.
CATEGORIES: Tuple[Tuple[int, str], ...] = (
    (1, 'circle'), (3, 'square'), (5, 'triangle'), (7, 'ring'), (9, 'star'), (11, 'ellipse'))
CLASS_NAMES: Tuple[str, ...] = tuple(name for _, name in CATEGORIES)
CATEGORY_IDS: Tuple[int, ...] = tuple(cid for cid, _ in CATEGORIES)
_CATEGORY_OF = {name: cid for cid, name in CATEGORIES}

PATTERNS = ('solid', 'stripes', 'checker', 'radial', 'linear')
OCCLUSION_LEVELS = ('low', 'high')

# Fixed-point bits for cv2 drawing, so shapes move smoothly by sub-pixel amounts.
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class ShapeSpec:
    """One object: its class, geometry and texture, all in pixels of the image it is drawn on.

    Attributes:
        kind: class name, one of :data:`CLASS_NAMES`.
        center: ``(x, y)`` centre in pixels.
        radius: outer radius in pixels (half the major axis for ellipses).
        angle: rotation in degrees.
        aspect: minor / major axis ratio (ellipse only).
        inner: inner / outer radius ratio (ring: the hole; star: the notches).
        colors: two BGR colours mixed by the pattern.
        pattern: one of :data:`PATTERNS`.
        frequency: pattern periods per radius.
    """

    kind: str
    center: Tuple[float, float]
    radius: float
    angle: float = 0.0
    aspect: float = 1.0
    inner: float = 0.5
    colors: Tuple[Tuple[int, int, int], Tuple[int, int, int]] = ((0, 0, 255), (255, 255, 255))
    pattern: str = 'solid'
    frequency: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in _CATEGORY_OF:
            raise ValueError(f'unknown shape kind {self.kind!r}; expected one of {CLASS_NAMES}')
        if self.pattern not in PATTERNS:
            raise ValueError(f'unknown pattern {self.pattern!r}; expected one of {PATTERNS}')
        if self.radius <= 0:
            raise ValueError(f'radius must be > 0, got {self.radius}')

    @property
    def category_id(self) -> int:
        """Dataset category id of this shape's class."""
        return _CATEGORY_OF[self.kind]

    def mask(self, height: int, width: int) -> np.ndarray:
        """Rasterise the whole shape (ignoring occlusion).

        Returns:
            ``bool[H, W]``.
        """
        canvas = np.zeros((height, width), np.uint8)
        cx, cy = self.center
        centre = (int(round(cx * _ONE)), int(round(cy * _ONE)))
        radius = int(round(self.radius * _ONE))
        if self.kind == 'circle':
            cv2.circle(canvas, centre, radius, 1, -1, cv2.LINE_8, _SHIFT)
        elif self.kind == 'ring':
            cv2.circle(canvas, centre, radius, 1, -1, cv2.LINE_8, _SHIFT)
            inner = int(round(self.radius * self.inner * _ONE))
            cv2.circle(canvas, centre, inner, 0, -1, cv2.LINE_8, _SHIFT)
        elif self.kind == 'ellipse':
            axes = (radius, int(round(self.radius * self.aspect * _ONE)))
            cv2.ellipse(canvas, centre, axes, self.angle, 0, 360, 1, -1, cv2.LINE_8, _SHIFT)
        else:
            cv2.fillPoly(canvas, [self._polygon()], 1, cv2.LINE_8, _SHIFT)
        return canvas.astype(bool)

    def _polygon(self) -> np.ndarray:
        """Return the vertices of a polygonal shape as fixed-point ``int32[V, 2]``."""
        if self.kind == 'square':
            radii, count = [self.radius], 4
        elif self.kind == 'triangle':
            radii, count = [self.radius], 3
        else:  # star: alternate outer and inner vertices
            radii, count = [self.radius, self.radius * self.inner], 10
        theta = np.deg2rad(self.angle) + 2 * np.pi * np.arange(count) / count
        r = np.resize(np.asarray(radii, np.float64), count)
        points = np.stack([self.center[0] + r * np.cos(theta),
                           self.center[1] + r * np.sin(theta)], axis=1)
        return np.round(points * _ONE).astype(np.int32)

    def shade(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Texture colour at pixel coordinates, in the shape's own (moving, rotating) frame.

        Args:
            xs: ``int[P]`` pixel columns.
            ys: ``int[P]`` pixel rows.

        Returns:
            ``uint8[P, 3]`` BGR colours.
        """
        cos, sin = math.cos(math.radians(self.angle)), math.sin(math.radians(self.angle))
        dx = (xs - self.center[0]) / self.radius
        dy = (ys - self.center[1]) / self.radius
        u = cos * dx + sin * dy
        v = -sin * dx + cos * dy
        f = self.frequency
        if self.pattern == 'solid':
            t = np.zeros_like(u)
        elif self.pattern == 'stripes':
            t = 0.5 + 0.5 * np.sin(2 * np.pi * f * u)
        elif self.pattern == 'checker':
            t = ((np.sin(np.pi * f * u) * np.sin(np.pi * f * v)) > 0).astype(np.float64)
        elif self.pattern == 'radial':
            t = np.clip(np.hypot(u, v), 0.0, 1.0)
        else:  # linear
            t = np.clip(0.5 + 0.5 * u, 0.0, 1.0)
        first, second = (np.asarray(c, np.float64) for c in self.colors)
        colours = first[None] * (1.0 - t[:, None]) + second[None] * t[:, None]
        return np.clip(np.round(colours), 0, 255).astype(np.uint8)


@dataclass
class Instance:
    """The visible part of one shape of a scene.

    Attributes:
        category_id: dataset category id.
        mask: ``bool[H, W]`` visible pixels (may be several pieces and have holes).
        visible_fraction: visible pixels / in-image pixels of the whole shape.
        depth: index of the shape in paint order (0 = furthest back).
    """

    category_id: int
    mask: np.ndarray
    visible_fraction: float
    depth: int


@dataclass
class Scene:
    """A rendered scene.

    Attributes:
        image: ``uint8[H, W, 3]`` BGR.
        label_map: ``int32[H, W]`` index into ``shapes`` of the shape seen at each pixel, -1 for
            background.
        shapes: every shape, back to front (including dropped ones).
        instances: the annotated shapes (enough pixels visible), back to front.
    """

    image: np.ndarray
    label_map: np.ndarray
    shapes: List[ShapeSpec]
    instances: List[Instance] = field(default_factory=list)


def _random_color(rng: np.random.Generator) -> Tuple[int, int, int]:
    """Return a random saturated-enough BGR colour."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(90, 255), rng.uniform(70, 255)]]],
                   np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def random_shape(rng: np.random.Generator, center: Tuple[float, float], radius: float,
                 kind: Optional[str] = None) -> ShapeSpec:
    """Draw a random class (unless given), rotation and texture for a shape at ``center``."""
    if kind is None:
        kind = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
    first = _random_color(rng)
    # The second colour is a darker or lighter variant, or another hue.
    if rng.uniform() < 0.5:
        scale = rng.uniform(0.35, 0.7) if rng.uniform() < 0.5 else rng.uniform(1.3, 1.8)
        second = tuple(int(min(255, c * scale)) for c in first)
    else:
        second = _random_color(rng)
    return ShapeSpec(
        kind=kind, center=(float(center[0]), float(center[1])), radius=float(radius),
        angle=float(rng.uniform(0, 360)), aspect=float(rng.uniform(0.4, 0.65)),
        inner=float(rng.uniform(0.4, 0.6)), colors=(first, second),
        pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        frequency=float(rng.uniform(1.0, 3.5)))


def random_shapes(rng: np.random.Generator, height: int, width: int,
                  occlusion: str = 'low') -> List[ShapeSpec]:
    """Place shapes for one scene, back to front.

    ``low``: 3-6 shapes placed so that each overlaps what is already there by at most about 20 %.
    ``high``: 6-12 larger shapes clustered around one point, so most are partly hidden.
    """
    if occlusion not in OCCLUSION_LEVELS:
        raise ValueError(f'occlusion must be one of {OCCLUSION_LEVELS}, got {occlusion!r}')
    side = min(height, width)
    shapes: List[ShapeSpec] = []
    if occlusion == 'low':
        count = int(rng.integers(3, 7))
        union = np.zeros((height, width), bool)
        for _ in range(count):
            for _attempt in range(20):
                radius = rng.uniform(0.07, 0.18) * side
                center = (rng.uniform(radius * 0.5, width - radius * 0.5),
                          rng.uniform(radius * 0.5, height - radius * 0.5))
                shape = random_shape(rng, center, radius)
                mask = shape.mask(height, width)
                area = max(int(mask.sum()), 1)
                if (mask & union).sum() <= 0.2 * area:
                    break
            union |= mask
            shapes.append(shape)
    else:
        count = int(rng.integers(6, 13))
        focus = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height)
        for _ in range(count):
            radius = rng.uniform(0.09, 0.22) * side
            center = (float(np.clip(rng.normal(focus[0], 0.18 * width), 0, width - 1)),
                      float(np.clip(rng.normal(focus[1], 0.18 * height), 0, height - 1)))
            shapes.append(random_shape(rng, center, radius))
    return shapes


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Return a cluttered background: gradient, blotches and distractor strokes.

    Returns:
        ``uint8[H, W, 3]`` BGR.
    """
    first = np.asarray(_random_color(rng), np.float32)
    second = np.asarray(_random_color(rng), np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(theta) * xs / width + np.sin(theta) * ys / height)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    image = first * (1 - t[..., None]) + second * t[..., None]
    # Low-frequency colour blotches.
    cells = int(rng.integers(3, 7))
    blotches = rng.uniform(-50, 50, size=(cells, cells, 3)).astype(np.float32)
    image += cv2.resize(blotches, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image, 0, 255).astype(np.uint8)
    # Distractor strokes (lines, arcs, polylines): clutter that is not an object.
    side = min(height, width)
    for _ in range(int(rng.integers(4, 11))):
        color = _random_color(rng)
        thickness = int(rng.integers(1, max(2, side // 60) + 1))
        kind = int(rng.integers(3))
        if kind == 0:
            p1 = (int(rng.integers(width)), int(rng.integers(height)))
            p2 = (int(rng.integers(width)), int(rng.integers(height)))
            cv2.line(image, p1, p2, color, thickness, cv2.LINE_AA)
        elif kind == 1:
            centre = (int(rng.integers(width)), int(rng.integers(height)))
            axes = (int(rng.integers(5, side // 3 + 6)), int(rng.integers(5, side // 3 + 6)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), start,
                        start + float(rng.uniform(40, 200)), color, thickness, cv2.LINE_AA)
        else:
            points = np.stack([rng.integers(0, width, 4), rng.integers(0, height, 4)], axis=1)
            cv2.polylines(image, [points.astype(np.int32)], False, color, thickness,
                          cv2.LINE_AA)
    return image


def compose_scene(background: np.ndarray, shapes: Sequence[ShapeSpec], *,
                  min_visible_pixels: int = 20, noise_sigma: float = 0.0,
                  rng: Optional[np.random.Generator] = None) -> Scene:
    """Paint ``shapes`` back to front on ``background`` and annotate what stays visible.

    Args:
        background: ``uint8[H, W, 3]`` BGR.
        shapes: back to front; each occludes those before it.
        min_visible_pixels: shapes with fewer visible pixels are not annotated.
        noise_sigma: standard deviation of Gaussian pixel noise added at the end (needs ``rng``).
        rng: generator for the noise.

    Returns:
        The scene; its instances' masks are exactly the pixels painted with each shape's texture.
    """
    if background.ndim != 3 or background.shape[2] != 3 or background.dtype != np.uint8:
        raise ValueError(f'expected a uint8 [H, W, 3] background, got {background.dtype} '
                         f'{background.shape}')
    height, width = background.shape[:2]
    image = background.copy()
    label_map = np.full((height, width), -1, np.int32)
    areas = []
    for index, shape in enumerate(shapes):
        ys, xs = np.nonzero(shape.mask(height, width))
        areas.append(len(ys))
        if len(ys):
            image[ys, xs] = shape.shade(xs, ys)
            label_map[ys, xs] = index
    visible_counts = np.bincount(label_map.ravel() + 1, minlength=len(shapes) + 1)[1:]
    instances = []
    for index, shape in enumerate(shapes):
        visible = int(visible_counts[index])
        if visible < max(min_visible_pixels, 1):
            continue
        instances.append(Instance(category_id=shape.category_id, mask=label_map == index,
                                  visible_fraction=visible / areas[index], depth=index))
    if noise_sigma > 0:
        if rng is None:
            raise ValueError('noise_sigma > 0 needs an rng')
        noise = rng.normal(0.0, noise_sigma, size=image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return Scene(image=image, label_map=label_map, shapes=list(shapes), instances=instances)


def random_scene(rng: np.random.Generator, height: int, width: int, occlusion: str = 'low', *,
                 min_visible_pixels: int = 20) -> Scene:
    """Draw a whole random scene (background, shapes, pixel noise) from ``rng``."""
    background = random_background(rng, height, width)
    shapes = random_shapes(rng, height, width, occlusion)
    return compose_scene(background, shapes, min_visible_pixels=min_visible_pixels,
                         noise_sigma=float(rng.uniform(2.0, 6.0)), rng=rng)
