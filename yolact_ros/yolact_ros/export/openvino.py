"""OpenVINO: the ONNX export converted to an IR (``.xml`` + ``.bin``), and a backend that runs it.

The IR keeps the ONNX file's yolact_ros metadata (config, level sizes, opset, precision) in its
``rt_info`` under ``yolact_ros``, so an ``.xml`` file is self-describing like an ``.onnx`` one.
An int8 IR is made by NNCF's post-training quantisation (:mod:`yolact_ros.export.quantize`).

On the CPU the inference precision is always set: ``f32`` by default (OpenVINO's own default is
bf16 on CPUs with AVX512-BF16 or AMX, which moves scores by ~1e-2), ``bf16`` when asked.
"""

from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch
from torch import Tensor

from yolact_ros.export.backends import ExportedNetwork, PathLike
from yolact_ros.export.onnx import (
    config_from_metadata, ExportError, INPUT_NAME, OUTPUT_NAMES, read_metadata)

RT_INFO_KEY = 'yolact_ros'
PRECISIONS = ('f32', 'bf16')


def import_openvino():
    """Return the ``openvino`` module, or raise :class:`ExportError` saying how to get it."""
    try:
        import openvino
    except ImportError:
        raise ExportError('OpenVINO is not installed: `pip install openvino` (or `pip install '
                          'yolact_ros[export]`); without it, use --backend onnxruntime or '
                          'torch') from None
    return openvino


def convert_onnx(onnx_path: PathLike, xml_path: PathLike, *, model=None) -> Path:
    """Write the IR of a yolact_ros ONNX file to ``xml_path`` with its metadata; return the path.

    ``model``: an ``openvino.Model`` made from that file (e.g. quantised) to write instead.
    """
    ov = import_openvino()
    _, _, metadata = read_metadata(onnx_path)
    model = model if model is not None else ov.convert_model(str(onnx_path))
    for key, value in metadata.items():
        model.set_rt_info(value, [RT_INFO_KEY, key])
    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return xml_path


def read_ir_metadata(xml_path: PathLike):
    """Return ``(openvino.Model, config, level sizes, metadata)`` of a yolact_ros IR."""
    ov = import_openvino()
    xml_path = Path(xml_path)
    if not xml_path.is_file() or not xml_path.with_suffix('.bin').is_file():
        raise ExportError(f'OpenVINO IR not found: {xml_path} and its .bin must both exist')
    try:
        model = ov.Core().read_model(str(xml_path))
    except RuntimeError as error:
        raise ExportError(f'cannot read OpenVINO IR {xml_path}: '
                          f'{str(error).strip().splitlines()[0][:200]}') from error
    metadata = {}
    if model.has_rt_info([RT_INFO_KEY]):
        metadata = {key: model.get_rt_info([RT_INFO_KEY, key]).astype(str)
                    for key in model.get_rt_info([RT_INFO_KEY]).value}
    config, sizes, metadata = config_from_metadata(metadata, xml_path)
    return model, config, sizes, metadata


class OpenVinoBackend(ExportedNetwork):
    """Run a yolact_ros OpenVINO IR on the CPU; ``backend(images)`` returns the model's dict."""

    def __init__(self, path: PathLike, *, device: Union[str, torch.device] = 'cpu',
                 threads: Optional[int] = None, precision: str = 'f32') -> None:
        """Compile ``path`` for the CPU.

        Args:
            path: the ``.xml`` file (its ``.bin`` beside it).
            device: ``cpu`` (OpenVINO's GPU plugin is for Intel GPUs, not used here).
            threads: inference threads (default: the count
                :func:`~yolact_ros.runtime.set_threads` applied, else OpenVINO's).
            precision: ``f32`` or ``bf16`` (needs a CPU with bf16: AVX512-BF16 or AMX).
        """
        from yolact_ros.runtime import configured_threads

        ov = import_openvino()
        if torch.device(device).type != 'cpu':
            raise ExportError(f'the OpenVINO backend runs on the CPU here, not {device!r}')
        if precision not in PRECISIONS:
            raise ExportError(f'OpenVINO precision must be one of {PRECISIONS}, got '
                              f'{precision!r}')
        core = ov.Core()
        if precision == 'bf16' and 'BF16' not in core.get_property(
                'CPU', 'OPTIMIZATION_CAPABILITIES'):
            raise ExportError('bf16 inference needs a CPU with AVX512-BF16 or AMX; this one '
                              'has neither (use f32)')
        model, config, feature_sizes, self.metadata = read_ir_metadata(path)
        threads = threads if threads is not None else configured_threads()
        properties = {'INFERENCE_PRECISION_HINT': precision, 'PERFORMANCE_HINT': 'LATENCY'}
        if threads is not None:
            properties['INFERENCE_NUM_THREADS'] = threads
        self.compiled = core.compile_model(model, 'CPU', properties)
        self.precision = precision
        batch = model.input(INPUT_NAME).get_partial_shape()[0]
        super().__init__(path, config, feature_sizes, device='cpu', dtype=torch.float32,
                         fixed_batch=batch.get_length() if batch.is_static else None)

    def _run(self, images: Tensor) -> Dict[str, Tensor]:
        results = self.compiled({INPUT_NAME: images.numpy()})
        return {name: torch.from_numpy(np.asarray(results[self.compiled.output(name)]))
                for name in OUTPUT_NAMES}


def ir_parity(xml_path: PathLike, model: torch.nn.Module, *,
              precision: str = 'f32') -> Dict[str, float]:
    """Run the IR and eager ``model`` on the fixed example input; return max abs error each."""
    from yolact_ros.export.onnx import example_input, max_abs_error

    backend = OpenVinoBackend(xml_path, precision=precision)
    images = example_input(backend.config)
    ours = backend(images)
    with torch.no_grad():
        reference = model.eval()(images)
    return {name: max_abs_error(ours[name], reference[name]) for name in OUTPUT_NAMES}
