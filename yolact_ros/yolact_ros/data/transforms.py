"""Upstream YOLACT's SSD augmentation and input transform, on numpy/cv2 BGR images.

A :class:`Sample` holds an image with its instances (boxes in *pixels*, x1 y1 x2 y2, and masks
in the image frame). Every transform is a callable ``(sample, rng) -> sample`` drawing its
randomness only from the ``numpy.random.Generator`` it is given, so a data-loader worker (or a
resumed run) that seeds the generator the same way gets the same augmentation.

Pipeline (:class:`SSDAugmentation`, as upstream v1.2): photometric distortion, expand, random
sample crop, mirror, resize to ``S x S`` (dropping boxes of ``<= 4`` px). :func:`to_network_input`
then normalises exactly as the network expects.
"""

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

# cv2.resize handles at most this many channels at once.
_MAX_RESIZE_CHANNELS = 128


@dataclass
class Sample:
    """An image and its instances, in the image's pixel frame.

    Attributes:
        image: ``float32[H, W, 3]`` BGR, values nominally in [0, 255].
        masks: ``uint8[G, H, W]`` binary instance masks.
        boxes: ``float32[G, 4]`` x1, y1, x2, y2 in pixels (pixel edges: a one-pixel mask at
            column ``c`` spans ``c`` to ``c + 1``).
        labels: ``int64[G]`` 0-based class labels.
        crowd: ``bool[G]`` whether each instance is a crowd region (``iscrowd``).
    """

    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    crowd: np.ndarray

    def __post_init__(self) -> None:
        count = self.boxes.shape[0]
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f'expected image [H, W, 3], got {self.image.shape}')
        if self.boxes.shape != (count, 4):
            raise ValueError(f'expected boxes [G, 4], got {self.boxes.shape}')
        if self.masks.shape != (count,) + self.image.shape[:2]:
            raise ValueError(f'expected masks [{count}, H, W] for image {self.image.shape}, got '
                             f'{self.masks.shape}')
        if self.labels.shape != (count,) or self.crowd.shape != (count,):
            raise ValueError(f'expected labels and crowd [{count}], got {self.labels.shape} and '
                             f'{self.crowd.shape}')

    @property
    def height(self) -> int:
        """Image height H."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width W."""
        return int(self.image.shape[1])

    def select(self, keep: np.ndarray) -> 'Sample':
        """Return the sample with only the instances where ``keep`` (``bool[G]``) is true."""
        return Sample(self.image, self.masks[keep], self.boxes[keep], self.labels[keep],
                      self.crowd[keep])


Transform = Callable[[Sample, np.random.Generator], Sample]


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample


class PhotometricDistort:
    """Upstream's photometric distortion, each step with probability 0.5.

    Brightness (+-32), then either contrast (x0.5-1.5) before the HSV steps or after them,
    saturation (x0.5-1.5), hue (+-18 degrees). Upstream's channel shuffle is disabled there too.
    Unlike upstream, values are clipped to [0, 255] before the HSV conversion and at the end.
    """

    def __init__(self, brightness: float = 32.0, contrast: Tuple[float, float] = (0.5, 1.5),
                 saturation: Tuple[float, float] = (0.5, 1.5), hue: float = 18.0) -> None:
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue

    def _contrast(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.integers(2):
            image = image * np.float32(rng.uniform(*self.contrast))
        return image

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        image = sample.image.astype(np.float32, copy=True)
        if rng.integers(2):
            image += np.float32(rng.uniform(-self.brightness, self.brightness))
        contrast_first = bool(rng.integers(2))
        if contrast_first:
            image = self._contrast(image, rng)
        hsv = cv2.cvtColor(np.clip(image, 0, 255), cv2.COLOR_BGR2HSV)  # H in [0, 360)
        if rng.integers(2):
            hsv[:, :, 1] *= np.float32(rng.uniform(*self.saturation))
        if rng.integers(2):
            hue = hsv[:, :, 0] + np.float32(rng.uniform(-self.hue, self.hue))
            hsv[:, :, 0] = np.mod(hue, 360.0)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        if not contrast_first:
            image = self._contrast(image, rng)
        return Sample(np.clip(image, 0, 255).astype(np.float32), sample.masks, sample.boxes,
                      sample.labels, sample.crowd)


class Expand:
    """With probability ``p``, place the image at a random spot of a canvas up to 4x as large.

    The canvas is filled with the pixel mean (zero after normalisation), masks with 0.
    """

    def __init__(self, mean_bgr: Sequence[float], max_ratio: float = 4.0, p: float = 0.5) -> None:
        self.mean_bgr = np.asarray(mean_bgr, np.float32)
        self.max_ratio = max_ratio
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.uniform() >= self.p:
            return sample
        height, width = sample.height, sample.width
        ratio = rng.uniform(1.0, self.max_ratio)
        left = int(rng.uniform(0, width * ratio - width))
        top = int(rng.uniform(0, height * ratio - height))
        canvas_h = max(int(height * ratio), top + height)
        canvas_w = max(int(width * ratio), left + width)
        image = np.empty((canvas_h, canvas_w, 3), np.float32)
        image[:] = self.mean_bgr
        image[top:top + height, left:left + width] = sample.image
        masks = np.zeros((sample.masks.shape[0], canvas_h, canvas_w), np.uint8)
        masks[:, top:top + height, left:left + width] = sample.masks
        boxes = sample.boxes + np.array([left, top, left, top], np.float32)
        return Sample(image, masks, boxes, sample.labels, sample.crowd)


class RandomSampleCrop:
    """Upstream's (SSD's) random sample crop.

    Repeatedly picks one of six modes; ``None`` keeps the whole image, the others try 50 random
    patches (sides 0.3-1 of the image, aspect 0.5-2). A patch is taken when at least one non-crowd
    box has its centre strictly inside; boxes whose centre is inside are kept and clipped to it,
    the others dropped. Upstream's per-mode IoU constraints are inert (its condition can never
    hold; fixing it halved mAP upstream), so, as there, they are not applied.
    """

    num_modes = 6  # None, IoU 0.1, 0.3, 0.7, 0.9, unconstrained

    def __init__(self, min_scale: float = 0.3, trials: int = 50) -> None:
        self.min_scale = min_scale
        self.trials = trials

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if not (~sample.crowd).any():
            return sample  # nothing a crop could be required to keep
        height, width = sample.height, sample.width
        centers = (sample.boxes[:, :2] + sample.boxes[:, 2:]) / 2.0
        while True:
            if rng.integers(self.num_modes) == 0:
                return sample
            for _ in range(self.trials):
                w = rng.uniform(self.min_scale * width, width)
                h = rng.uniform(self.min_scale * height, height)
                if h / w < 0.5 or h / w > 2:
                    continue
                left = rng.uniform(0, width - w)
                top = rng.uniform(0, height - h)
                x1, y1, x2, y2 = int(left), int(top), int(left + w), int(top + h)
                keep = ((x1 < centers[:, 0]) & (y1 < centers[:, 1])
                        & (x2 > centers[:, 0]) & (y2 > centers[:, 1]))
                if not (keep & ~sample.crowd).any():
                    continue
                boxes = sample.boxes[keep].copy()
                boxes[:, :2] = np.maximum(boxes[:, :2], (x1, y1)) - (x1, y1)
                boxes[:, 2:] = np.minimum(boxes[:, 2:], (x2, y2)) - (x1, y1)
                return Sample(np.ascontiguousarray(sample.image[y1:y2, x1:x2]),
                              np.ascontiguousarray(sample.masks[keep, y1:y2, x1:x2]),
                              boxes.astype(np.float32), sample.labels[keep],
                              sample.crowd[keep])


class RandomMirror:
    """With probability ``p``, flip left-right."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.uniform() >= self.p:
            return sample
        boxes = sample.boxes.copy()
        boxes[:, 0] = sample.width - sample.boxes[:, 2]
        boxes[:, 2] = sample.width - sample.boxes[:, 0]
        return Sample(np.ascontiguousarray(sample.image[:, ::-1]),
                      np.ascontiguousarray(sample.masks[:, :, ::-1]), boxes, sample.labels,
                      sample.crowd)


def resize_masks(masks: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize binary masks bilinearly and threshold at 0.5.

    Args:
        masks: ``uint8[G, H, W]`` with values 0/1.
        size: output ``(height, width)``.

    Returns:
        ``uint8[G, height, width]``.
    """
    height, width = size
    out = np.empty((masks.shape[0], height, width), np.uint8)
    for start in range(0, masks.shape[0], _MAX_RESIZE_CHANNELS):
        chunk = masks[start:start + _MAX_RESIZE_CHANNELS]
        # (g, H, W) -> (H, W, g): cv2 treats instances as channels.
        resized = cv2.resize(np.ascontiguousarray(chunk.transpose(1, 2, 0)), (width, height),
                             interpolation=cv2.INTER_LINEAR)
        out[start:start + chunk.shape[0]] = resized.reshape(height, width, -1).transpose(2, 0, 1)
    return out


def _drop_small(sample: Sample, min_box_size: Optional[float]) -> Sample:
    """Drop boxes whose width or height is ``<= min_box_size`` pixels (None drops nothing)."""
    if min_box_size is None:
        return sample
    sides = sample.boxes[:, 2:] - sample.boxes[:, :2]
    return sample.select((sides > min_box_size).all(axis=1))


class Resize:
    """Resize to ``size x size`` (aspect not kept, as upstream) and drop tiny boxes.

    Boxes whose width or height is ``<= min_box_size`` pixels after resizing are dropped (upstream
    intends 4 px at 550; its code compares pixels with 4/550). ``min_box_size=None`` drops nothing.
    """

    def __init__(self, size: int, min_box_size: Optional[float] = 4.0) -> None:
        if size < 1:
            raise ValueError(f'size must be >= 1, got {size}')
        self.size = size
        self.min_box_size = min_box_size

    def __call__(self, sample: Sample, rng: Optional[np.random.Generator] = None) -> Sample:
        scale = np.array([self.size / sample.width, self.size / sample.height] * 2, np.float32)
        image = cv2.resize(sample.image, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        resized = Sample(image, resize_masks(sample.masks, (self.size, self.size)),
                         sample.boxes * scale, sample.labels, sample.crowd)
        return _drop_small(resized, self.min_box_size)


class Letterbox:
    """Scale to fit ``size x size`` keeping the aspect; pad bottom/right with the mean colour.

    The inverse of what :class:`~yolact_ros.preprocess.Preprocessor` does with ``letterbox``
    (same placement, same ``(h, w)``); masks are padded with 0. Tiny boxes are dropped as by
    :class:`Resize`.
    """

    def __init__(self, size: int, pixel_mean_bgr: Sequence[float],
                 min_box_size: Optional[float] = 4.0) -> None:
        if size < 1:
            raise ValueError(f'size must be >= 1, got {size}')
        self.size = size
        self.mean = np.asarray(pixel_mean_bgr, np.float32)
        self.min_box_size = min_box_size

    def __call__(self, sample: Sample, rng: Optional[np.random.Generator] = None) -> Sample:
        from yolact_ros.preprocess import letterbox_shape

        height, width = letterbox_shape(sample.height, sample.width, self.size)
        scale = np.array([width / sample.width, height / sample.height] * 2, np.float32)
        image = np.empty((self.size, self.size, 3), np.float32)
        image[:] = self.mean
        image[:height, :width] = cv2.resize(sample.image, (width, height),
                                            interpolation=cv2.INTER_LINEAR)
        masks = np.zeros((sample.masks.shape[0], self.size, self.size), np.uint8)
        masks[:, :height, :width] = resize_masks(sample.masks, (height, width))
        resized = Sample(image, masks, sample.boxes * scale, sample.labels, sample.crowd)
        return _drop_small(resized, self.min_box_size)


def fit_to_input(size: int, pixel_mean_bgr: Sequence[float], *, letterbox: bool,
                 min_box_size: Optional[float] = 4.0) -> Transform:
    """Return the last step of every pipeline: :class:`Letterbox` or upstream's :class:`Resize`."""
    if letterbox:
        return Letterbox(size, pixel_mean_bgr, min_box_size)
    return Resize(size, min_box_size)


class SSDAugmentation(Compose):
    """Upstream's training augmentation, ending at ``input_size x input_size`` pixels.

    ``letterbox`` ends it with :class:`Letterbox` instead of upstream's squashing
    :class:`Resize`.
    """

    def __init__(self, input_size: int, pixel_mean_bgr: Sequence[float], *,
                 photometric: bool = True, expand: bool = True, crop: bool = True,
                 mirror: bool = True, min_box_size: Optional[float] = 4.0,
                 letterbox: bool = False) -> None:
        steps = []
        if photometric:
            steps.append(PhotometricDistort())
        if expand:
            steps.append(Expand(pixel_mean_bgr))
        if crop:
            steps.append(RandomSampleCrop())
        if mirror:
            steps.append(RandomMirror())
        steps.append(fit_to_input(input_size, pixel_mean_bgr, letterbox=letterbox,
                                  min_box_size=min_box_size))
        super().__init__(steps)
        self.input_size = input_size


def to_network_input(image_bgr: np.ndarray, pixel_mean_bgr: Sequence[float],
                     pixel_std_bgr: Sequence[float]) -> torch.Tensor:
    """Normalise as the network expects: ``(x - mean) / std`` in BGR, then BGR -> RGB.

    Args:
        image_bgr: ``float32[H, W, 3]`` or ``uint8[H, W, 3]`` BGR, already at the input size.

    Returns:
        ``float32[3, H, W]`` RGB.
    """
    mean = np.asarray(pixel_mean_bgr, np.float32)
    std = np.asarray(pixel_std_bgr, np.float32)
    normalised = (image_bgr.astype(np.float32) - mean) / std
    # (H, W, BGR) -> (RGB, H, W)
    return torch.from_numpy(np.ascontiguousarray(normalised[:, :, ::-1].transpose(2, 0, 1)))
