"""Input checks and the network's input transform (upstream's ``FastBaseTransform``).

Two input geometries: upstream's squash (every image resized to ``S x S``) and, for models
trained with it, a letterbox (scaled to fit ``S x S`` keeping the aspect, the image at the
top-left, the rest the mean colour). Postprocessing maps detections back through the image's
*content fraction*: the part of the input, ``(h / S, w / S)``, that holds the image.
"""

from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
import torch.nn.functional as F


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a ``uint8[H, W, 3]`` BGR array, converting what can be converted.

    Grayscale (``[H, W]`` or ``[H, W, 1]``) is replicated, BGRA drops alpha, 16-bit keeps its
    high byte. Anything else is a ``ValueError`` that says what was given.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f'expected a numpy image array, got {type(image).__name__}')
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f'expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], '
                         f'got shape {image.shape}')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f'image is empty: shape {image.shape}')
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f'expected uint8 or uint16 pixels, got {image.dtype}')
    channels = image.shape[2]
    if channels == 1:
        image = np.repeat(image, 3, axis=2)
    elif channels == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def letterbox_shape(height: int, width: int, side: int) -> Tuple[int, int]:
    """Return ``(h, w)`` of a ``height x width`` image scaled to fit ``side x side``."""
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


class Preprocessor:
    """Resize to the square input, normalise in BGR, swap to RGB — on the model's device."""

    def __init__(self, input_size: int, mean_bgr: Sequence[float], std_bgr: Sequence[float],
                 *, device: torch.device, dtype: torch.dtype = torch.float32,
                 letterbox: bool = False) -> None:
        self.input_size = input_size
        self.device = device
        self.dtype = dtype
        self.letterbox = letterbox
        self.mean = torch.tensor(mean_bgr, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std_bgr, device=device).view(1, 3, 1, 1)

    def resized_shape(self, height: int, width: int) -> Tuple[int, int]:
        """Where a ``height x width`` image lands in the input: ``(h, w)`` pixels."""
        if self.letterbox:
            return letterbox_shape(height, width, self.input_size)
        return self.input_size, self.input_size

    def content_fractions(self, sizes: Sequence[Tuple[int, int]]) -> List[Tuple[float, float]]:
        """``(h / S, w / S)`` of each image's part of the input (``(1, 1)`` when squashed)."""
        side = self.input_size
        return [(h / side, w / side) for h, w in (self.resized_shape(*size) for size in sizes)]

    def __call__(self, images: Sequence[np.ndarray]) -> Tensor:
        """Turn ``uint8[H, W, 3]`` BGR images (any sizes) into ``Tensor[N, 3, S, S]`` RGB."""
        side = self.input_size
        batch = []
        for image in images:
            pixels = torch.from_numpy(image).to(self.device, non_blocking=True)
            pixels = pixels.permute(2, 0, 1)[None].float()  # (H, W, 3) -> (1, 3, H, W)
            height, width = self.resized_shape(*image.shape[:2])
            resized = F.interpolate(pixels, size=(height, width), mode='bilinear',
                                    align_corners=False)
            normalised = (resized - self.mean) / self.std
            if (height, width) != (side, side):
                # Zero after normalising is the mean colour: (1, 3, h, w) -> (1, 3, S, S).
                normalised = F.pad(normalised, (0, side - width, 0, side - height))
            batch.append(normalised)
        return torch.cat(batch)[:, (2, 1, 0)].contiguous().to(self.dtype)  # BGR -> RGB
