"""Result types shared by the Segmenter and everything that consumes it (CLI, node, bag tool)."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class StageTimes:
    """Wall-clock milliseconds spent in each stage for one call of the Segmenter."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Sum of the three stages."""
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


@dataclass(frozen=True)
class WindowedMasks:
    """One image's binary instance masks, each kept as the window of the image holding its pixels.

    Mask ``i`` is ``bool[H, W]``: ``windows[i]`` placed with its top-left pixel at
    ``origins[i]``, false everywhere else. A window may be larger than its mask's tight box (the
    postprocessor's upsampling windows); an empty mask may have a ``0 x 0`` window. Keeping
    windows instead of ``bool[D, H, W]`` saves the copy of full-image masks off the GPU and the
    scans of them (30 MB per 640x480 frame with 100 detections).

    Attributes:
        image_size: ``(H, W)``.
        origins: ``int64[D, 2]`` (y, x) of each window's top-left pixel.
        windows: ``D`` arrays ``bool[h_i, w_i]``, each inside the image at its origin.
    """

    image_size: Tuple[int, int]
    origins: np.ndarray
    windows: Tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        """Check that every window lies inside the image."""
        height, width = self.image_size
        if self.origins.shape != (len(self.windows), 2):
            raise ValueError(f'expected origins [{len(self.windows)}, 2] for '
                             f'{len(self.windows)} windows, got {list(self.origins.shape)}')
        for index, (window, (top, left)) in enumerate(zip(self.windows, self.origins)):
            if window.ndim != 2 or top < 0 or left < 0 or top + window.shape[0] > height \
                    or left + window.shape[1] > width:
                raise ValueError(f'mask window {index} of shape {list(window.shape)} at (y, x) '
                                 f'({top}, {left}) is not inside the image {height}x{width}')

    @classmethod
    def from_dense(cls, masks: np.ndarray) -> 'WindowedMasks':
        """Wrap ``bool[D, H, W]`` full-image masks (each window is the whole image)."""
        if masks.ndim != 3:
            raise ValueError(f'expected masks [D, H, W], got shape {list(masks.shape)}')
        masks = masks.astype(bool, copy=False)
        return cls(tuple(masks.shape[1:]), np.zeros((len(masks), 2), np.int64), tuple(masks))

    @classmethod
    def empty(cls, image_size: Tuple[int, int]) -> 'WindowedMasks':
        """Return no masks for an image of ``image_size`` (H, W)."""
        return cls(tuple(image_size), np.zeros((0, 2), np.int64), ())

    def __len__(self) -> int:
        return len(self.windows)

    def slices(self, index: int) -> Tuple[slice, slice]:
        """Return the rows and columns of the image that window ``index`` covers."""
        top, left = (int(v) for v in self.origins[index])
        height, width = self.windows[index].shape
        return slice(top, top + height), slice(left, left + width)

    def full(self, index: int) -> np.ndarray:
        """Return mask ``index`` as ``bool[H, W]``."""
        mask = np.zeros(self.image_size, bool)
        mask[self.slices(index)] = self.windows[index]
        return mask

    def to_dense(self) -> np.ndarray:
        """Return every mask as ``bool[D, H, W]``."""
        dense = np.zeros((len(self), *self.image_size), bool)
        for index, window in enumerate(self.windows):
            dense[index][self.slices(index)] = window
        return dense

    def select(self, indices: Sequence[int]) -> 'WindowedMasks':
        """Return the masks at ``indices``, in that order."""
        indices = [int(i) for i in indices]
        return WindowedMasks(self.image_size, self.origins[indices].reshape(-1, 2),
                             tuple(self.windows[i] for i in indices))


@dataclass
class Detections:
    """Detections of one image, sorted by descending score, in source-image pixels.

    Attributes:
        boxes: ``float32[D, 4]`` x1, y1, x2, y2 in source pixels (integers, as upstream).
        scores: ``float32[D]`` box (class) scores.
        class_ids: ``int64[D]`` contiguous 0-based class indices.
        class_names: ``D`` names, one per detection.
        category_ids: ``int64[D]`` dataset category ids (COCO ids for COCO models).
        mask_windows: the binary masks, as windows (see :class:`WindowedMasks`); ``masks``
            gives them as full images.
        image_size: ``(H, W)`` of the source image.
        mask_scores: ``float32[D]`` mask-quality scores (YOLACT++), else ``None``.
        times: how long each stage took (for a batch, the batch's times).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: List[str]
    category_ids: np.ndarray
    mask_windows: WindowedMasks
    image_size: tuple
    mask_scores: Optional[np.ndarray] = None
    times: StageTimes = field(default_factory=StageTimes)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @cached_property
    def masks(self) -> np.ndarray:
        """Return the full-resolution masks ``bool[D, H, W]`` (built on first use, then kept)."""
        return self.mask_windows.to_dense()

    @classmethod
    def empty(cls, image_size: tuple) -> 'Detections':
        """Return a result with no detections for an image of ``image_size`` (H, W)."""
        height, width = image_size
        return cls(
            boxes=np.zeros((0, 4), np.float32), scores=np.zeros((0,), np.float32),
            class_ids=np.zeros((0,), np.int64), class_names=[],
            category_ids=np.zeros((0,), np.int64),
            mask_windows=WindowedMasks.empty((height, width)), image_size=(height, width))

    def select(self, indices: Sequence[int]) -> 'Detections':
        """Return the detections at ``indices`` (in that order), with the same times."""
        index = np.asarray(indices, np.int64).reshape(-1)
        return Detections(
            boxes=self.boxes[index], scores=self.scores[index], class_ids=self.class_ids[index],
            class_names=[self.class_names[i] for i in index],
            category_ids=self.category_ids[index],
            mask_windows=self.mask_windows.select(index), image_size=self.image_size,
            mask_scores=None if self.mask_scores is None else self.mask_scores[index],
            times=self.times)
