"""The Segmenter: the one object everything uses to run the model (CLI, evaluation, node, bags).

It runs an eager torch model or any backend called like one (ONNX Runtime, TensorRT: see
``yolact_ros.export.backends.load_segmenter``, which builds a Segmenter for a backend by name).
"""

import logging
import os
import time
from typing import Dict, List, Optional, Protocol, Sequence, Union

import numpy as np
import torch
from torch import nn, Tensor

from yolact_ros.checkpoint import load_model
from yolact_ros.config import ModelConfig, PostprocessConfig
from yolact_ros.postprocess import Postprocessor, to_windowed_masks
from yolact_ros.preprocess import Preprocessor, to_bgr8
from yolact_ros.structures import Detections, StageTimes

ImageOrBatch = Union[np.ndarray, Sequence[np.ndarray]]
LOGGER = logging.getLogger(__name__)


class InferenceBackend(Protocol):
    """A runtime called like the model (see ``yolact_ros.export.backends``).

    ``backend(images)`` takes ``Tensor[N, 3, S, S]`` on ``device`` in ``dtype`` and returns the
    model's dict: ``loc``, ``conf``, ``mask_coef``, ``proto`` and ``priors``.
    """

    device: torch.device
    dtype: torch.dtype

    def __call__(self, images: Tensor) -> Dict[str, Tensor]:
        """Run the network."""


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold the backbone's eval-mode BatchNorms into the convolutions before them.

    Uses ``torch.fx``'s conv-BN fusion on the backbone (the only part with BatchNorm), which
    fuses exactly the conv -> BN edges of the traced graph. Outputs equal the unfolded model's
    up to float rounding (about 1e-5 of their scale). A backbone fx cannot trace is left as is.

    Returns:
        ``model`` (changed in place) in eval mode.
    """
    from torch.fx.experimental.optimization import fuse

    model.eval()
    try:
        model.backbone = fuse(model.backbone)
    except Exception as error:  # fx raises many types on untraceable code
        LOGGER.debug('BatchNorm not folded (backbone not traceable by torch.fx): %s', error)
    return model


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

    def __init__(self, model: Union[nn.Module, InferenceBackend], config: ModelConfig, *,
                 device: str = 'auto', half: bool = False,
                 postprocess: Optional[PostprocessConfig] = None,
                 channels_last: bool = False) -> None:
        """Run ``model``: an ``nn.Module`` (moved to ``device``, fp16 with ``half``) or a backend.

        A backend brings its own device and precision; ``device``, if not ``auto``, must match
        it. ``channels_last`` stores a module's weights NHWC (faster convolutions on some CPUs
        and on GPUs with fp16).
        """
        self.config = config
        if isinstance(model, nn.Module):
            self.device = resolve_device(device)
            if half and self.device.type != 'cuda':
                raise ValueError('half precision (fp16) needs a CUDA device, got '
                                 f'{self.device.type}')
            self.dtype = torch.float16 if half else torch.float32
            memory_format = torch.channels_last if channels_last else torch.preserve_format
            self.model = model.eval().to(self.device, self.dtype, memory_format=memory_format)
        else:
            self.device, self.dtype = model.device, model.dtype
            if device != 'auto' and resolve_device(device) != self.device:
                raise ValueError(f'device {device!r} requested but the backend runs on '
                                 f'{self.device}')
            self.model = model
        self.half = self.dtype == torch.float16
        self._released = False
        self.preprocessor = Preprocessor(config.input_size, config.pixel_mean_bgr,
                                         config.pixel_std_bgr, device=self.device,
                                         dtype=self.dtype, letterbox=config.letterbox)
        self._postprocessor = Postprocessor(postprocess or PostprocessConfig(),
                                            mask_scorer=getattr(self.model, 'maskiou_net', None))

    @classmethod
    def from_weights(cls, weights: Union[str, os.PathLike], *,
                     config: Optional[Union[str, ModelConfig]] = None, device: str = 'auto',
                     half: bool = False, postprocess: Optional[PostprocessConfig] = None,
                     fold_bn: bool = True, channels_last: bool = False,
                     compile_model: bool = False) -> 'Segmenter':
        """Load a project ``.safetensors`` or an official upstream ``.pth`` checkpoint.

        ``fold_bn`` folds BatchNorm into the convolutions (:func:`fold_batchnorm`);
        ``channels_last`` see :class:`Segmenter`; ``compile_model`` wraps the network in
        ``torch.compile`` (slow first calls, one per new batch size). All keep the results
        (to float rounding).
        """
        model, model_config = load_model(weights, config)
        if fold_bn:
            model = fold_batchnorm(model)
        segmenter = cls(model, model_config, device=device, half=half, postprocess=postprocess,
                        channels_last=channels_last)
        if compile_model:
            segmenter.model = torch.compile(segmenter.model)
        return segmenter

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
            self.model.to(self.device)  # only modules are released
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
            {key: value.float() for key, value in outputs.items()}, sizes,
            self.preprocessor.content_fractions(sizes))
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
            mask_windows=to_windowed_masks(result['mask_windows'], len(class_ids), image_size),
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
        """Move the model off the GPU and free cached GPU memory; the next call moves it back.

        Backends keep their memory (an engine cannot be moved).
        """
        if self.device.type == 'cuda' and isinstance(self.model, nn.Module):
            self.model.to('cpu')
            self._released = True
            torch.cuda.empty_cache()
