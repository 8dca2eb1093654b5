"""TensorRT: build an engine from the exported ONNX file, and run it like the model.

Needs the ``tensorrt`` Python package (TensorRT 8.6 or 10.x) and a CUDA GPU; both are imported
only here, when used. An engine is specific to the GPU model and the TensorRT version that built
it, so engines are built where they run (``yolact export --format engine`` on the robot, or on
the fly by ``load_segmenter(..., backend='tensorrt')``, which caches them).

The engine file gets a sidecar ``<engine>.json`` with the ONNX file's yolact_ros metadata (config,
level sizes), so an engine says what model it is, as the other formats do.
"""

import json
import logging
from pathlib import Path
import time
from typing import Dict, Optional, Union

import torch
from torch import nn, Tensor

from yolact_ros.checkpoint import atomic_write_bytes
from yolact_ros.export.onnx import (
    config_from_metadata, example_input, ExportError, INPUT_NAME, max_abs_error, OUTPUT_NAMES,
    priors_for, read_metadata)

LOGGER = logging.getLogger(__name__)
DEFAULT_WORKSPACE_GIB = 4.0


def import_tensorrt():
    """Return the ``tensorrt`` module, or raise :class:`ExportError` saying how to get it."""
    try:
        import tensorrt
    except ImportError:
        raise ExportError(
            'TensorRT is not installed: `pip install tensorrt` (needs an NVIDIA GPU and driver); '
            'without it, run the ONNX file with onnxruntime or the checkpoint with torch'
            ) from None
    return tensorrt


def sidecar_path(engine_path: Union[str, Path]) -> Path:
    """Return where the metadata of an engine file is kept: ``<engine>.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + '.json')


def build_engine(onnx_path: Union[str, Path], engine_path: Union[str, Path], *,
                 half: bool = False, max_batch: int = 8,
                 workspace_gib: float = DEFAULT_WORKSPACE_GIB) -> Path:
    """Build a TensorRT engine from a yolact_ros ONNX file (what ``trtexec --onnx`` does).

    An fp16 ONNX file (``export_onnx(..., half=True)``) gives an fp16 engine on every TensorRT
    version (built strongly typed). ``half`` with an fp32 file lets TensorRT pick fp16 kernels
    itself, which only TensorRT 10 and older can (11 removed weak typing).

    Args:
        onnx_path: file written by :func:`~yolact_ros.export.onnx.export_onnx`.
        engine_path: destination (written atomically), plus its ``.json`` sidecar.
        half: fp16 kernels for an fp32 ONNX file (TensorRT <= 10).
        max_batch: largest batch the engine accepts when the ONNX batch dimension is dynamic
            (optimised for batch 1).
        workspace_gib: scratch GPU memory the builder may use.
    """
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise ExportError('building a TensorRT engine needs a CUDA GPU; none is available')
    _, _, metadata = read_metadata(onnx_path)
    fp16_file = metadata.get('precision') == 'fp16'
    if half and not fp16_file and not hasattr(trt.BuilderFlag, 'FP16'):
        raise ExportError(f'TensorRT {trt.__version__} builds fp16 engines only from fp16 ONNX '
                          f'files; {onnx_path} is fp32: export it with --half')
    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    # 8.x needs EXPLICIT_BATCH (10 ignores it, 11 dropped it); fp16 files are built strongly
    # typed so the file's types are the engine's (11 is always strongly typed).
    names = ['EXPLICIT_BATCH'] + (['STRONGLY_TYPED'] if fp16_file else [])
    for name in names:
        flag = getattr(trt.NetworkDefinitionCreationFlag, name, None)
        if flag is not None:
            flags |= 1 << int(flag)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f'TensorRT cannot parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
    if half and not fp16_file:
        config.set_flag(trt.BuilderFlag.FP16)
    images = network.get_input(0)
    shape = tuple(images.shape)  # (N, 3, S, S), N = -1 when dynamic
    if shape[0] == -1:
        profile = builder.create_optimization_profile()
        profile.set_shape(images.name, (1,) + shape[1:], (1,) + shape[1:],
                          (max_batch,) + shape[1:])
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f'TensorRT failed to build an engine from {onnx_path} (see its log '
                          'above)')
    engine_path = atomic_write_bytes(engine_path, bytes(serialized))
    metadata = dict(metadata, precision='fp16' if half or fp16_file else 'fp32',
                    tensorrt_version=trt.__version__,
                    gpu=torch.cuda.get_device_name(), max_batch=str(max_batch))
    atomic_write_bytes(sidecar_path(engine_path), json.dumps(metadata, indent=1).encode())
    LOGGER.info('built TensorRT engine %s in %.0f s', engine_path, time.perf_counter() - start)
    return engine_path


class TensorRTBackend:
    """Run a TensorRT engine on CUDA tensors; ``backend(images)`` returns the model's dict.

    Input and outputs stay on the GPU (the engine reads and writes torch tensors in place, on
    torch's current stream). Batches larger than the engine's maximum are run in chunks.
    """

    def __init__(self, engine_path: Union[str, Path], *,
                 device: Union[str, torch.device] = 'cuda') -> None:
        trt = import_tensorrt()
        self.device = torch.device(device)
        if self.device.type != 'cuda' or not torch.cuda.is_available():
            raise ExportError(f'the TensorRT backend needs a CUDA device, got {device!r} '
                              f'(CUDA available: {torch.cuda.is_available()})')
        engine_path = Path(engine_path)
        sidecar = sidecar_path(engine_path)
        if not engine_path.is_file() or not sidecar.is_file():
            raise ExportError(f'TensorRT engine {engine_path} or its metadata {sidecar} is '
                              'missing; build it with `yolact export --format engine`')
        metadata = json.loads(sidecar.read_text())
        self.config, feature_sizes, self.metadata = config_from_metadata(metadata, sidecar)
        self._logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(self.device):
            runtime = trt.Runtime(self._logger)
            self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
            if self.engine is None:
                raise ExportError(
                    f'TensorRT cannot load {engine_path} (built by TensorRT '
                    f'{metadata.get("tensorrt_version")} on {metadata.get("gpu")}; this is '
                    f'TensorRT {trt.__version__} on {torch.cuda.get_device_name(self.device)}): '
                    'rebuild it here')
            self.context = self.engine.create_execution_context()
        self._torch_dtype = {trt.float32: torch.float32, trt.float16: torch.float16}
        self.dtype = self._torch_dtype[self.engine.get_tensor_dtype(INPUT_NAME)]
        self.max_batch = int(metadata.get('max_batch', 1))
        if self.engine.get_tensor_shape(INPUT_NAME)[0] != -1:
            self.max_batch = int(self.engine.get_tensor_shape(INPUT_NAME)[0])
        self.priors = priors_for(self.config, feature_sizes).to(self.device)
        # YOLACT++'s mask re-scoring head (a torch module on ``device``), if any: the
        # Segmenter's postprocessor runs it; load_segmenter sets it from the checkpoint.
        self.maskiou_net: Optional[nn.Module] = None

    def __call__(self, images: Tensor) -> Dict[str, Tensor]:
        """Run ``Tensor[N, 3, S, S]`` (on this backend's device); return the model's outputs."""
        size = self.config.input_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f'expected images [N, 3, {size}, {size}], got {tuple(images.shape)}')
        chunks = [self._run(chunk.to(self.device, self.dtype).contiguous())
                  for chunk in images.split(self.max_batch)]
        outputs = {name: torch.cat([chunk[name] for chunk in chunks]) for name in OUTPUT_NAMES}
        outputs['priors'] = self.priors
        return outputs

    def _run(self, images: Tensor) -> Dict[str, Tensor]:
        context = self.context
        context.set_input_shape(INPUT_NAME, tuple(images.shape))
        context.set_tensor_address(INPUT_NAME, images.data_ptr())
        outputs = {}
        for name in OUTPUT_NAMES:
            dtype = self._torch_dtype[self.engine.get_tensor_dtype(name)]
            outputs[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype,
                                        device=self.device)
            context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError('TensorRT failed to run the engine (see its log above)')
        return outputs


def engine_parity(engine_path: Union[str, Path], model: nn.Module,
                  device: Union[str, torch.device] = 'cuda') -> Dict[str, float]:
    """Return the max abs error per output of an engine against eager ``model`` (moved to GPU).

    Both run the fixed example input, the model in the engine's input precision.
    """
    backend = TensorRTBackend(engine_path, device=device)
    images = example_input(backend.config, device=backend.device, dtype=backend.dtype)
    with torch.no_grad():
        ours = backend(images)
        reference = model.eval().to(backend.device, backend.dtype)(images)
    return {name: max_abs_error(ours[name], reference[name]) for name in OUTPUT_NAMES}
