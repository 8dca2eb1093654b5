"""The Segmenter: the one object everything uses to run the model (CLI, evaluation, node, bags)."""

import os
import time
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from yolact_ros.checkpoint import load_model
from yolact_ros.config import ModelConfig, PostprocessConfig
from yolact_ros.postprocess import Postprocessor
from yolact_ros.preprocess import Preprocessor, to_bgr8
from yolact_ros.structures import Detections, StageTimes

ImageOrBatch = Union[np.ndarray, Sequence[np.ndarray]]


def resolve_device(device: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:i`` into a device, checking it exists."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f'unknown device {device!r}; use auto, cpu, cuda or cuda:N') from None
    if resolved.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {device!r} requested but CUDA is not available')
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f'device {device!r} requested but only '
                             f'{torch.cuda.device_count()} CUDA device(s) exist')
    elif resolved.type != 'cpu':
        raise ValueError(f'unsupported device {device!r}; use auto, cpu, cuda or cuda:N')
    return resolved


class Segmenter:
    """Run YOLACT on BGR images and return :class:`Detections` in source-image pixels.

    Example::

        segmenter = Segmenter.from_weights('weights/yolact_resnet18_synth.safetensors')
        detections = segmenter(cv2.imread('image.png'))
    """

    def __init__(self, model: nn.Module, config: ModelConfig, *, device: str = 'auto',
                 half: bool = False, postprocess: Optional[PostprocessConfig] = None) -> None:
        self.config = config
        self.device = resolve_device(device)
        if half and self.device.type != 'cuda':
            raise ValueError('half precision (fp16) needs a CUDA device, got '
                             f'{self.device.type}')
        self.half = half
        self.dtype = torch.float16 if half else torch.float32
        self.model = model.eval().to(self.device, self.dtype)
        self._released = False
        self.preprocessor = Preprocessor(config.input_size, config.pixel_mean_bgr,
                                         config.pixel_std_bgr, device=self.device,
                                         dtype=self.dtype)
        self._postprocessor = Postprocessor(postprocess or PostprocessConfig(),
                                            mask_scorer=getattr(self.model, 'maskiou_net', None))

    @classmethod
    def from_weights(cls, weights: Union[str, os.PathLike], *,
                     config: Optional[Union[str, ModelConfig]] = None, device: str = 'auto',
                     half: bool = False,
                     postprocess: Optional[PostprocessConfig] = None) -> 'Segmenter':
        """Load a project ``.safetensors`` or an official upstream ``.pth`` checkpoint."""
        model, model_config = load_model(weights, config)
        return cls(model, model_config, device=device, half=half, postprocess=postprocess)

    @property
    def postprocess(self) -> PostprocessConfig:
        """Detection thresholds in force; assign a new config to change them at runtime."""
        return self._postprocessor.config

    @postprocess.setter
    def postprocess(self, config: PostprocessConfig) -> None:
        self._postprocessor = Postprocessor(
            config, mask_scorer=getattr(self.model, 'maskiou_net', None))

    @property
    def class_names(self) -> List[str]:
        """Names of the model's classes, indexed by contiguous class id."""
        return list(self.config.class_names)

    def __call__(self, images: ImageOrBatch) -> Union[Detections, List[Detections]]:
        """Segment one ``uint8[H, W, 3]`` BGR image, or a list of images (of any sizes).

        Grayscale, BGRA and 16-bit images are converted; an empty or malformed array raises
        ``ValueError``. Returns one :class:`Detections` per image.
        """
        single = isinstance(images, np.ndarray)
        batch = [to_bgr8(image) for image in ([images] if single else images)]
        if not batch:
            raise ValueError('no images given')
        results = self._segment(batch)
        return results[0] if single else results

    @torch.inference_mode()
    def _segment(self, images: List[np.ndarray]) -> List[Detections]:
        if self._released:  # brought back lazily after release()
            self.model.to(self.device)
            self._released = False
        start = time.perf_counter()
        inputs = self.preprocessor(images)
        self._synchronize()
        preprocessed = time.perf_counter()
        outputs = self.model(inputs)
        self._synchronize()
        inferred = time.perf_counter()
        sizes = [image.shape[:2] for image in images]
        per_image = self._postprocessor(
            {key: value.float() for key, value in outputs.items()}, sizes)
        results = [self._to_detections(result, size) for result, size in zip(per_image, sizes)]
        done = time.perf_counter()
        times = StageTimes(preprocess_ms=(preprocessed - start) * 1e3,
                           inference_ms=(inferred - preprocessed) * 1e3,
                           postprocess_ms=(done - inferred) * 1e3)
        for result in results:
            result.times = times
        return results

    def _to_detections(self, result: dict, image_size: tuple) -> Detections:
        class_ids = result['classes'].cpu().numpy().astype(np.int64)
        return Detections(
            boxes=result['boxes'].cpu().numpy().astype(np.float32),
            scores=result['scores'].cpu().numpy().astype(np.float32),
            class_ids=class_ids,
            class_names=[self.config.class_names[i] for i in class_ids],
            category_ids=np.asarray(self.config.category_ids, np.int64)[class_ids],
            masks=result['masks'].cpu().numpy(),
            image_size=tuple(image_size),
            mask_scores=(result['mask_scores'].cpu().numpy().astype(np.float32)
                         if 'mask_scores' in result else None))

    def _synchronize(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def warmup(self, image_size: tuple = (480, 640)) -> None:
        """Run once on a blank image so the first real frame is not slow."""
        self(np.zeros((*image_size, 3), np.uint8))

    def release(self) -> None:
        """Move the model off the GPU and free cached GPU memory; the next call moves it back."""
        if self.device.type == 'cuda':
            self.model.to('cpu')
            self._released = True
            torch.cuda.empty_cache()
