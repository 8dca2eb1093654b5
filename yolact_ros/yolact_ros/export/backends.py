"""Runtimes behind the one Segmenter interface, and :func:`load_segmenter`, which picks one.

A backend is called like the model: ``backend(images)`` with ``Tensor[N, 3, S, S]`` on
``backend.device`` in ``backend.dtype`` returns the model's dict (``loc``, ``conf``,
``mask_coef``, ``proto``, ``priors``), so :class:`~yolact_ros.inference.Segmenter` runs any of
them unchanged.

ONNX files, TensorRT engines and OpenVINO IRs made from a checkpoint are cached in
``.yolact_cache/`` beside the checkpoint (or, where that folder is not writable, in
``$YOLACT_CACHE/export``), named after the checkpoint and a hash of its bytes and the export
settings (an IR is named after its ONNX file): a changed checkpoint gets a new
file, an unchanged one is exported once.
"""

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch
from torch import nn, Tensor

from yolact_ros.config import ModelConfig, PostprocessConfig
from yolact_ros.export.onnx import (
    DEFAULT_OPSET, ExportError, INPUT_NAME, OUTPUT_NAMES, priors_for, read_metadata)
from yolact_ros.runtime import configured_threads

LOGGER = logging.getLogger(__name__)
BACKENDS = ('torch', 'onnxruntime', 'tensorrt', 'openvino')
ONNX_SUFFIXES = ('.onnx',)
ENGINE_SUFFIXES = ('.engine', '.plan')
IR_SUFFIXES = ('.xml',)  # OpenVINO IR (its weights in the .bin beside it)
EXPORT_SUFFIXES = ONNX_SUFFIXES + ENGINE_SUFFIXES + IR_SUFFIXES
# Bump when the exported graph changes, so that caches are rebuilt.
CACHE_VERSION = '1'

PathLike = Union[str, os.PathLike]


class ExportedNetwork:
    """What the exported-network backends share: the input check, batching and the priors.

    A subclass opens its file, then calls ``super().__init__`` and implements ``_run`` on one
    chunk of at most ``fixed_batch`` images (any count when ``fixed_batch`` is None).
    """

    def __init__(self, path: PathLike, config: ModelConfig, feature_sizes, *,
                 device: torch.device, dtype: torch.dtype, fixed_batch: Optional[int]) -> None:
        self.path = Path(path)
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype
        self.fixed_batch = fixed_batch
        self.priors = priors_for(config, feature_sizes).to(self.device)
        # YOLACT++'s mask re-scoring head (a torch module on ``device``), if any: the
        # Segmenter's postprocessor runs it; load_segmenter sets it from the checkpoint.
        self.maskiou_net: Optional[nn.Module] = None

    def __call__(self, images: Tensor) -> Dict[str, Tensor]:
        """Run ``Tensor[N, 3, S, S]``; return the model's dict of outputs (with ``priors``)."""
        size = self.config.input_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f'expected images [N, 3, {size}, {size}], got {tuple(images.shape)}')
        images = images.to(self.device, self.dtype).contiguous()
        chunks = images.split(self.fixed_batch) if self.fixed_batch else [images]
        results = [self._run(chunk) for chunk in chunks]
        outputs = {name: torch.cat([result[name] for result in results]) if len(results) > 1
                   else results[0][name] for name in OUTPUT_NAMES}
        outputs['priors'] = self.priors
        return outputs

    def _run(self, images: Tensor) -> Dict[str, Tensor]:
        raise NotImplementedError


class OnnxRuntimeBackend(ExportedNetwork):
    """Run a yolact_ros ONNX file with ONNX Runtime; ``backend(images)`` returns the model's dict.

    On CPU the input is handed over as a NumPy view (no copy). With ``device='cuda'`` (needs the
    onnxruntime-gpu build) input and outputs stay on the GPU: they are bound to torch tensors.
    """

    def __init__(self, path: PathLike, *, device: Union[str, torch.device] = 'cpu',
                 threads: Optional[int] = None) -> None:
        """Open ``path``; ``threads`` sets ONNX Runtime's intra- and inter-op threads.

        Without ``threads``, the count :func:`~yolact_ros.runtime.set_threads` applied, if it was
        called; else ONNX Runtime's default (all cores).
        """
        import onnxruntime

        config, feature_sizes, self.metadata = read_metadata(path)
        device = torch.device(device)
        available = onnxruntime.get_available_providers()
        if device.type == 'cuda':
            if 'CUDAExecutionProvider' not in available:
                raise ExportError(
                    f'ONNX Runtime has no CUDA provider here (it has {", ".join(available)}): '
                    'install onnxruntime-gpu, or run it on the CPU (--device cpu)')
            providers = [('CUDAExecutionProvider', {'device_id': device.index or 0}),
                         'CPUExecutionProvider']
        elif device.type == 'cpu':
            providers = ['CPUExecutionProvider']
        else:
            raise ExportError(f'ONNX Runtime runs on cpu or cuda, not {device!r}')
        options = onnxruntime.SessionOptions()
        threads = threads if threads is not None else configured_threads()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = threads
        if device.type == 'cpu':
            # Idle pool threads would spin for a while after each run, taking the cores the
            # postprocessing (torch, right after) needs: 91 -> 47 ms of it on 2 cores.
            options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        element = self.session.get_inputs()[0].type  # 'tensor(float)' or 'tensor(float16)'
        batch = self.session.get_inputs()[0].shape[0]
        super().__init__(path, config, feature_sizes, device=device,
                         dtype=torch.float16 if element == 'tensor(float16)' else torch.float32,
                         fixed_batch=batch if isinstance(batch, int) else None)

    def _run(self, images: Tensor) -> Dict[str, Tensor]:
        return self._run_cuda(images) if self.device.type == 'cuda' else self._run_cpu(images)

    def _run_cpu(self, images: Tensor) -> Dict[str, Tensor]:
        values = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: images.numpy()})
        return {name: torch.from_numpy(value) for name, value in zip(OUTPUT_NAMES, values)}

    def _run_cuda(self, images: Tensor) -> Dict[str, Tensor]:
        element = np.float16 if self.dtype == torch.float16 else np.float32
        index = self.device.index or 0
        binding = self.session.io_binding()
        binding.bind_input(INPUT_NAME, 'cuda', index, element, tuple(images.shape),
                           images.data_ptr())
        outputs = {}
        for output in self.session.get_outputs():
            # Every dimension but the batch is fixed by the export.
            shape = (images.shape[0],) + tuple(output.shape[1:])
            outputs[output.name] = torch.empty(shape, dtype=self.dtype, device=self.device)
            binding.bind_output(output.name, 'cuda', index, element, shape,
                                outputs[output.name].data_ptr())
        torch.cuda.current_stream(self.device).synchronize()  # the input is written
        self.session.run_with_iobinding(binding)
        return outputs


def file_digest(path: PathLike) -> str:
    """Return the SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir(weights: PathLike) -> Path:
    """Return ``.yolact_cache`` beside ``weights``, or ``$YOLACT_CACHE/export`` if unwritable."""
    from yolact_ros.weights import cache_dir

    beside = Path(weights).resolve().parent / '.yolact_cache'
    try:
        beside.mkdir(exist_ok=True)
    except OSError:
        return cache_dir() / 'export'
    return beside if os.access(beside, os.W_OK) else cache_dir() / 'export'


def cached_onnx(weights: PathLike, *, config: Optional[Union[str, ModelConfig]] = None,
                half: bool = False, device: Union[str, torch.device] = 'cpu',
                cache_dir: Optional[PathLike] = None) -> Path:
    """Return an ONNX file (dynamic batch) of a checkpoint, exporting it on first use.

    Args:
        weights: ``.safetensors`` or upstream ``.pth`` checkpoint.
        config: as for :func:`~yolact_ros.checkpoint.load_model`.
        half: float16 graph (traced on ``device``).
        device: where to trace.
        cache_dir: where to keep the file (default :func:`default_cache_dir`).
    """
    from yolact_ros.checkpoint import load_model
    from yolact_ros.export.onnx import export_onnx

    weights = Path(weights)
    config_key = config.to_dict() if isinstance(config, ModelConfig) else config
    settings = json.dumps({'config': config_key, 'half': half, 'opset': DEFAULT_OPSET,
                           'version': CACHE_VERSION}, sort_keys=True)
    key = hashlib.sha256((file_digest(weights) + settings).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(weights)
    path = folder / f'{weights.stem}-{key}.onnx'
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        model, model_config = load_model(weights, config)
        LOGGER.info('exporting %s to %s (once; cached)', weights, path)
        report = export_onnx(model, model_config, path, dynamic_batch=True, half=half,
                             device=device)
        LOGGER.info('%s', report.summary())
    return path


def cached_engine(onnx_path: PathLike, *, half: bool = False, max_batch: int = 8,
                  device: Union[str, torch.device] = 'cuda') -> Path:
    """Return a TensorRT engine built from ``onnx_path`` on this GPU, building it on first use.

    The engine sits beside the ONNX file, named after it, the GPU and the TensorRT version.
    """
    from yolact_ros.export.tensorrt import build_engine, import_tensorrt

    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    gpu = torch.cuda.get_device_name(device) if torch.cuda.is_available() else 'no-gpu'
    settings = f'{file_digest(onnx_path)} {trt.__version__} {gpu} {half} {max_batch}'
    key = hashlib.sha256(settings.encode()).hexdigest()[:16]
    path = onnx_path.with_name(f'{onnx_path.stem}-{key}.engine')
    if not path.is_file():
        LOGGER.info('building TensorRT engine %s from %s (once; minutes)', path, onnx_path)
        with torch.cuda.device(torch.device(device)):
            build_engine(onnx_path, path, half=half, max_batch=max_batch)
    return path


def cached_ir(onnx_path: PathLike) -> Path:
    """Return the OpenVINO IR of a (cached) ONNX file, converting it on first use."""
    from yolact_ros.export.openvino import convert_onnx

    path = Path(onnx_path).with_suffix('.xml')
    if not (path.is_file() and path.with_suffix('.bin').is_file()):
        LOGGER.info('converting %s to OpenVINO IR %s (once; cached)', onnx_path, path)
        convert_onnx(onnx_path, path)
    return path


def load_segmenter(weights: PathLike, *, backend: str = 'torch',
                   config: Optional[Union[str, ModelConfig]] = None, device: str = 'auto',
                   half: bool = False, postprocess: Optional[PostprocessConfig] = None,
                   cache_dir: Optional[PathLike] = None, threads: Optional[int] = None,
                   bf16: bool = False):
    """Return a :class:`~yolact_ros.inference.Segmenter` running ``weights`` on ``backend``.

    Args:
        weights: a checkpoint (``.safetensors``, upstream ``.pth``): exported and cached as
            needed; or an ``.onnx`` file (``onnxruntime``, ``tensorrt``, ``openvino``); or an
            ``.engine`` / ``.plan`` file with its ``.json`` sidecar (``tensorrt``); or an
            OpenVINO ``.xml`` IR (``openvino``).
        backend: ``torch`` (eager, the default), ``onnxruntime``, ``tensorrt`` or ``openvino``.
        config: as for :func:`~yolact_ros.checkpoint.load_model` (checkpoints only).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (TensorRT: CUDA only).
        half: fp16 (CUDA only): torch runs the model in half; ONNX Runtime and TensorRT run an
            fp16 export.
        postprocess: detection thresholds.
        cache_dir: where exports made on the fly go (default: beside the checkpoint).
        threads: ONNX Runtime intra- and inter-op threads, OpenVINO's threads (default: the
            count :func:`~yolact_ros.runtime.set_threads` applied, else all cores).
        bf16: OpenVINO only: bfloat16 inference (CPUs with AVX512-BF16 or AMX).
    """
    from yolact_ros.inference import resolve_device, Segmenter

    if backend not in BACKENDS:
        raise ValueError(f'unknown backend {backend!r}; expected one of {", ".join(BACKENDS)}')
    weights = Path(weights)
    suffix = weights.suffix.lower()
    if bf16 and backend != 'openvino':
        raise ValueError(f'bf16 applies to the openvino backend only, not {backend}')
    if backend == 'torch':
        if suffix in EXPORT_SUFFIXES:
            raise ValueError(f'{weights} runs with an exported-network backend (onnxruntime, '
                             'tensorrt, openvino), not torch')
        return Segmenter.from_weights(weights, config=config, device=device, half=half,
                                      postprocess=postprocess)
    resolved = resolve_device(device)
    if half and resolved.type != 'cuda':
        raise ValueError(f'half precision (fp16) needs a CUDA device, got {resolved.type}')
    if backend == 'tensorrt' and resolved.type != 'cuda':
        raise ValueError(f'the TensorRT backend needs a CUDA device, got {resolved.type}')
    if suffix in ENGINE_SUFFIXES and backend != 'tensorrt':
        raise ValueError(f'{weights} is a TensorRT engine: use --backend tensorrt')
    if suffix in IR_SUFFIXES and backend != 'openvino':
        raise ValueError(f'{weights} is an OpenVINO IR: use --backend openvino')
    if config is not None and suffix in EXPORT_SUFFIXES:
        raise ValueError(f'{weights} carries its config; --config applies to checkpoints only')
    onnx_path = weights
    if suffix not in EXPORT_SUFFIXES:
        onnx_path = cached_onnx(weights, config=config, half=half, device=resolved,
                                cache_dir=cache_dir)
    if backend == 'onnxruntime':
        network = OnnxRuntimeBackend(onnx_path, device=resolved, threads=threads)
    elif backend == 'openvino':
        from yolact_ros.export.openvino import OpenVinoBackend

        network = OpenVinoBackend(onnx_path if suffix in IR_SUFFIXES else cached_ir(onnx_path),
                                  device=resolved, threads=threads,
                                  precision='bf16' if bf16 else 'f32')
    else:
        from yolact_ros.export.tensorrt import TensorRTBackend

        engine = onnx_path if suffix in ENGINE_SUFFIXES else cached_engine(
            onnx_path, half=half, device=resolved)
        network = TensorRTBackend(engine, device=resolved)
    if network.config.mask_rescoring:
        network.maskiou_net = _mask_scorer(weights, config, network)
    return Segmenter(network, network.config, device=str(resolved), postprocess=postprocess)


def _mask_scorer(weights: Path, config, network) -> Optional[nn.Module]:
    """YOLACT++'s mask re-scoring head, run in torch beside an exported network."""
    from yolact_ros.checkpoint import load_model

    if weights.suffix.lower() in EXPORT_SUFFIXES:
        LOGGER.warning('%s has no mask re-scoring head in it; mask scores are not computed '
                       '(load the checkpoint instead to get them)', weights)
        return None
    model, _ = load_model(weights, config)
    return model.maskiou_net.eval().to(network.device, network.dtype)
