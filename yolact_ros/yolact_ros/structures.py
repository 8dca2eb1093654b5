"""Result types shared by the Segmenter and everything that consumes it (CLI, node, bag tool)."""

from dataclasses import dataclass, field
from typing import List, Optional

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


@dataclass
class Detections:
    """Detections of one image, sorted by descending score, in source-image pixels.

    Attributes:
        boxes: ``float32[D, 4]`` x1, y1, x2, y2 in source pixels (integers, as upstream).
        scores: ``float32[D]`` box (class) scores.
        class_ids: ``int64[D]`` contiguous 0-based class indices.
        class_names: ``D`` names, one per detection.
        category_ids: ``int64[D]`` dataset category ids (COCO ids for COCO models).
        masks: ``bool[D, H, W]`` full-resolution binary masks.
        image_size: ``(H, W)`` of the source image.
        mask_scores: ``float32[D]`` mask-quality scores (YOLACT++), else ``None``.
        times: how long each stage took (for a batch, the batch's times).
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: List[str]
    category_ids: np.ndarray
    masks: np.ndarray
    image_size: tuple
    mask_scores: Optional[np.ndarray] = None
    times: StageTimes = field(default_factory=StageTimes)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, image_size: tuple) -> 'Detections':
        """Return a result with no detections for an image of ``image_size`` (H, W)."""
        height, width = image_size
        return cls(
            boxes=np.zeros((0, 4), np.float32), scores=np.zeros((0,), np.float32),
            class_ids=np.zeros((0,), np.int64), class_names=[],
            category_ids=np.zeros((0,), np.int64),
            masks=np.zeros((0, height, width), bool), image_size=(height, width))
