"""Input checks and the network's input transform (upstream's ``FastBaseTransform``)."""

from typing import Sequence

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


class Preprocessor:
    """Resize to the square input, normalise in BGR, swap to RGB — on the model's device."""

    def __init__(self, input_size: int, mean_bgr: Sequence[float], std_bgr: Sequence[float],
                 *, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.input_size = input_size
        self.device = device
        self.dtype = dtype
        self.mean = torch.tensor(mean_bgr, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std_bgr, device=device).view(1, 3, 1, 1)

    def __call__(self, images: Sequence[np.ndarray]) -> Tensor:
        """Turn ``uint8[H, W, 3]`` BGR images (any sizes) into ``Tensor[N, 3, S, S]`` RGB."""
        batch = []
        for image in images:
            pixels = torch.from_numpy(image).to(self.device, non_blocking=True)
            pixels = pixels.permute(2, 0, 1)[None].float()  # (H, W, 3) -> (1, 3, H, W)
            batch.append(F.interpolate(pixels, size=(self.input_size, self.input_size),
                                       mode='bilinear', align_corners=False))
        normalised = (torch.cat(batch) - self.mean) / self.std
        return normalised[:, (2, 1, 0)].contiguous().to(self.dtype)  # BGR -> RGB
