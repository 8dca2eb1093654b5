"""The network to ONNX: named input and outputs, config and opset in the metadata, parity check.

The graph takes ``images`` ``float[N, 3, S, S]`` (normalised RGB, what
:class:`~yolact_ros.preprocess.Preprocessor` makes) and returns ``loc`` ``[N, P, 4]``, ``conf``
``[N, P, K+1]``, ``mask_coef`` ``[N, P, M]`` and ``proto`` ``[N, Hp, Wp, M]``. The priors are not
in the graph: they depend only on the config and the pyramid's level sizes, both stored in the
file's metadata, and :func:`priors_for` rebuilds them with the model's own code.

Fast NMS stays outside the graph: its candidate count is data-dependent, and the traced graph
bakes the counts of the example input in (ONNX Runtime then fails on an image with fewer
candidates), besides fixing the thresholds the node changes at runtime.
"""

import copy
from dataclasses import dataclass
import io
import json
from pathlib import Path
import time
from typing import Dict, List, Optional, Tuple, Union
import warnings

import torch
from torch import nn, Tensor

from yolact_ros.checkpoint import atomic_write_bytes, FORMAT_NAME
from yolact_ros.config import ModelConfig

INPUT_NAME = 'images'
OUTPUT_NAMES = ('loc', 'conf', 'mask_coef', 'proto')
DEFAULT_OPSET = 17


class ExportError(ValueError):
    """A model cannot be exported, or an exported file cannot be used; the message says why."""


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how closely the exported network matches eager torch."""

    path: Path
    opset: Optional[int]
    max_abs_error: Dict[str, float]
    seconds: float
    # Why the parity check did not run, if it did not.
    unchecked: str = ''

    def summary(self) -> str:
        """Return one line for the command line: file, opset, parity per output."""
        parity = ', '.join(f'{name} {error:.2e}' for name, error in self.max_abs_error.items())
        opset = f', opset {self.opset}' if self.opset is not None else ''
        return (f'wrote {self.path} ({self.path.stat().st_size / 2**20:.1f} MiB{opset}) in '
                f'{self.seconds:.1f} s; max abs error vs eager torch: '
                f'{parity or "not checked: " + (self.unchecked or "not asked")}')


class NetworkOutputs(nn.Module):
    """The model with its dict of outputs as a tuple in :data:`OUTPUT_NAMES` order.

    Tracers (ONNX, TorchScript) need tuples; the priors are left out (see the module docstring).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return ``(loc, conf, mask_coef, proto)`` for ``Tensor[N, 3, S, S]``."""
        outputs = self.model(images)
        return tuple(outputs[name] for name in OUTPUT_NAMES)


def check_exportable(config: ModelConfig) -> None:
    """Raise :class:`ExportError` for networks the exporters cannot express."""
    if config.deformable_layers:
        raise ExportError(f'{config.name}: deformable convolutions (YOLACT++) have no ONNX or '
                          'TensorRT export in torchvision; run it with the torch backend')


def level_sizes(model: nn.Module, images: Tensor) -> List[Tuple[int, int]]:
    """Return the ``(H, W)`` of each pyramid level the model predicts from for ``images``."""
    sizes: List[Tuple[int, int]] = []

    def record(module: nn.Module, inputs, outputs: List[Tensor]) -> None:
        sizes[:] = [(int(level.shape[2]), int(level.shape[3])) for level in outputs]

    handle = model.fpn.register_forward_hook(record)
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    return sizes


def priors_for(config: ModelConfig, feature_sizes: List[Tuple[int, int]]) -> Tensor:
    """Return ``Tensor[P, 4]`` priors of ``config`` for these level sizes, as the model makes them.

    The network is built on the meta device (no weights are allocated) only to ask it.
    """
    from yolact_ros.modeling import build_model

    with torch.device('meta'):
        skeleton = build_model(config)
    return skeleton.priors([tuple(size) for size in feature_sizes], torch.device('cpu'))


def example_input(config: ModelConfig, batch_size: int = 1, *,
                  device: Union[str, torch.device] = 'cpu',
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """Return a fixed ``Tensor[N, 3, S, S]`` (standard normal, seed 0), like normalised images."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, config.input_size, config.input_size,
                         generator=generator)
    return images.to(device, dtype)


def export_onnx(model: nn.Module, config: ModelConfig, path: Union[str, Path], *,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = False, half: bool = False,
                device: Union[str, torch.device] = 'cpu', check: bool = True) -> ExportReport:
    """Write the network as ONNX and compare it with eager torch on a fixed input.

    Args:
        model: the network (not modified; a copy is exported).
        config: its config, stored in the metadata with the level sizes and the opset.
        path: destination ``.onnx`` file (written atomically).
        opset: ONNX opset.
        dynamic_batch: leave the batch dimension free (else it is 1).
        half: export in float16 (for GPU runtimes; needs ``device`` CUDA to trace fast).
        device: where to trace.
        check: run the file with ONNX Runtime and record the max abs error per output.

    Returns:
        The :class:`ExportReport`.
    """
    import onnx

    check_exportable(config)
    start = time.perf_counter()
    dtype = torch.float16 if half else torch.float32
    network = copy.deepcopy(model).eval().to(device, dtype)
    images = example_input(config, device=device, dtype=dtype)
    feature_sizes = level_sizes(network, images)
    wrapper = NetworkOutputs(network).eval()
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {name: {0: 'batch'} for name in (INPUT_NAME,) + OUTPUT_NAMES}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter's deprecation notice and the tracer's int(shape) notes (the level
        # sizes are static for a fixed input size) are not actionable here.
        warnings.simplefilter('ignore')
        with torch.no_grad():
            torch.onnx.export(wrapper, (images,), buffer, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              dynamic_axes=dynamic_axes, do_constant_folding=True)
    graph = onnx.load_from_string(buffer.getvalue())
    metadata = {
        'format': FORMAT_NAME, 'config': json.dumps(config.to_dict()),
        'feature_sizes': json.dumps(feature_sizes), 'opset': str(opset),
        'precision': 'fp16' if half else 'fp32', 'dynamic_batch': str(dynamic_batch).lower(),
        'exporter': f'torch {torch.__version__} (TorchScript-based ONNX exporter)',
    }
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(graph)
    path = atomic_write_bytes(path, graph.SerializeToString())
    errors, unchecked = {}, ''
    if check:
        try:
            errors = onnx_parity(path, network, images)
        except ExportError as error:  # e.g. an fp16 file where ONNX Runtime has no GPU
            unchecked = str(error)
    return ExportReport(path=path, opset=opset, max_abs_error=errors,
                        seconds=time.perf_counter() - start, unchecked=unchecked)


def read_metadata(path: Union[str, Path]) -> Tuple[ModelConfig, List[Tuple[int, int]], dict]:
    """Return ``(config, level sizes, all metadata)`` stored in a yolact_ros ONNX file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ExportError(f'ONNX file not found: {path}')
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and friends for corrupt files
        raise ExportError(f'cannot read ONNX file {path}: {error}') from error
    return config_from_metadata({p.key: p.value for p in graph.metadata_props}, path)


def config_from_metadata(metadata: Dict[str, str], source: Union[str, Path]
                         ) -> Tuple[ModelConfig, List[Tuple[int, int]], dict]:
    """Parse the metadata :func:`export_onnx` writes; errors name ``source`` and the field."""
    if metadata.get('format') != FORMAT_NAME:
        raise ExportError(f'{source} was not exported by yolact_ros (metadata format is '
                          f'{metadata.get("format")!r}); export it with `yolact export`')
    try:
        config = ModelConfig.from_dict(json.loads(metadata['config']))
        sizes = [tuple(size) for size in json.loads(metadata['feature_sizes'])]
    except (KeyError, ValueError, TypeError) as error:
        raise ExportError(f'{source}: bad yolact_ros metadata: {error}') from error
    return config, sizes, metadata


def onnx_parity(path: Path, network: nn.Module, images: Tensor) -> Dict[str, float]:
    """Run the ONNX file with ONNX Runtime on ``images``; return max abs error per output."""
    import onnxruntime

    providers = ['CPUExecutionProvider']
    if images.is_cuda and 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        providers.insert(0, 'CUDAExecutionProvider')
    try:
        session = onnxruntime.InferenceSession(str(path), providers=providers)
        ours = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images.cpu().numpy()})
    except Exception as error:  # e.g. fp16 kernels missing from the CPU provider
        reason = str(error).strip().splitlines()[0][:200]
        raise ExportError(f'ONNX Runtime ({", ".join(providers)}) cannot run {path.name}: '
                          f'{reason}') from error
    with torch.no_grad():
        reference = network(images)
    return {name: max_abs_error(torch.from_numpy(value), reference[name])
            for name, value in zip(OUTPUT_NAMES, ours)}


def max_abs_error(ours: Tensor, reference: Tensor) -> float:
    """Return the largest absolute difference of two tensors of one shape, in float32."""
    if ours.shape != reference.shape:
        raise ExportError(f'exported output has shape {tuple(ours.shape)}, eager torch '
                          f'{tuple(reference.shape)}')
    return float((ours.float().cpu() - reference.float().cpu()).abs().max())
