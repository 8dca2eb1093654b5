"""The benchmarked backends of ``speed.py``: names, and the Segmenter each name builds.

A name is a base and options joined by ``-``, e.g. ``torch-fp16-cl`` or ``openvino-int8``.
Bases: ``eager`` (the seed's path: BatchNorm as is, whole-image masks), ``torch`` (today's
default Segmenter), ``onnxruntime``, ``tensorrt``, ``openvino`` (exported networks, window
masks). Options: ``fp16``, ``cl`` (channels-last), ``compile``, ``graphs`` (CUDA graphs),
``full`` / ``windows`` (mask path), ``bf16`` and ``int8`` (OpenVINO: bfloat16 inference; NNCF
int8 quantisation calibrated on ``--calibration DIR``).
"""

import copy
from dataclasses import dataclass, replace
from pathlib import Path
import sys
from typing import NoReturn, Optional


@dataclass(frozen=True)
class Variant:
    """How one benchmarked backend is built."""

    runtime: str = 'torch'  # torch, onnxruntime, tensorrt or openvino
    half: bool = False
    fold_bn: bool = True
    full_upsample: bool = False
    channels_last: bool = False
    compile_model: bool = False
    compile_mode: str = 'default'
    bf16: bool = False
    int8: bool = False


BASES = {'eager': Variant(fold_bn=False, full_upsample=True), 'torch': Variant(),
         'onnxruntime': Variant(runtime='onnxruntime'), 'tensorrt': Variant(runtime='tensorrt'),
         'openvino': Variant(runtime='openvino')}
OPTIONS = {'fp16': {'half': True}, 'cl': {'channels_last': True},
           'compile': {'compile_model': True},
           'graphs': {'compile_model': True, 'compile_mode': 'reduce-overhead'},
           'full': {'full_upsample': True},
           'windows': {'full_upsample': False},
           'bf16': {'bf16': True}, 'int8': {'int8': True}}


def usage_error(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with status 2 (bad input)."""
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(2)


def parse_variant(name: str) -> Variant:
    """Turn ``base[-option...]`` into a :class:`Variant`; unknown parts exit with the list."""
    base, *options = name.split('-')
    if base not in BASES or any(option not in OPTIONS for option in options):
        usage_error(f'unknown backend {name!r}: use one of {", ".join(BASES)} with options '
                    f'{", ".join(OPTIONS)} joined by "-"')
    variant = BASES[base]
    for option in options:
        variant = replace(variant, **OPTIONS[option])
    if variant.runtime != 'torch' and (variant.channels_last or variant.compile_model):
        usage_error(f'{name}: cl and compile apply to eager and torch only')
    if variant.runtime != 'openvino' and (variant.bf16 or variant.int8):
        usage_error(f'{name}: bf16 and int8 apply to openvino only')
    return variant


def make_segmenter(name: str, model, config, *, device: str, threshold: float, workdir: Path,
                   calibration: Optional[str] = None):
    """Build the Segmenter of one variant from the (unmodified) eager model."""
    import torch

    from yolact_ros.config import PostprocessConfig
    from yolact_ros.inference import fold_batchnorm, Segmenter

    variant = parse_variant(name)
    postprocess = PostprocessConfig(candidate_threshold=threshold)
    if variant.runtime == 'torch':
        network = copy.deepcopy(model)
        if variant.fold_bn:
            network = fold_batchnorm(network)
        segmenter = Segmenter(network, config, device=device, half=variant.half,
                              postprocess=postprocess, channels_last=variant.channels_last)
        if variant.compile_model:
            segmenter.model = torch.compile(segmenter.model, mode=variant.compile_mode)
    else:
        backend = exported_network(name, variant, model, config, device=device,
                                   workdir=workdir, calibration=calibration)
        segmenter = Segmenter(backend, config, postprocess=postprocess)
    # The seed's postprocessing, for the baseline (a benchmark may reach inside).
    segmenter._postprocessor.full_upsample = variant.full_upsample
    return segmenter


def exported_network(name: str, variant: Variant, model, config, *, device: str,
                     workdir: Path, calibration: Optional[str]):
    """Export ``model`` to ONNX and open it with the variant's runtime."""
    from yolact_ros.export.onnx import export_onnx

    report = export_onnx(model, config, workdir / f'{name}.onnx', dynamic_batch=True,
                         half=variant.half, device=device)
    print(f'  {name}: {report.summary()}')
    if variant.runtime == 'onnxruntime':
        from yolact_ros.export.backends import OnnxRuntimeBackend

        return OnnxRuntimeBackend(report.path, device=device)
    if variant.runtime == 'openvino':
        from yolact_ros.export.openvino import convert_onnx, OpenVinoBackend

        quantized = None
        if variant.int8:
            from yolact_ros.export.quantize import calibration_inputs, quantize_ir

            if calibration is None:
                usage_error(f'{name}: int8 needs --calibration DIR (images)')
            quantized = quantize_ir(report.path, calibration_inputs(Path(calibration), config))
        xml = convert_onnx(report.path, workdir / f'{name}.xml', model=quantized)
        return OpenVinoBackend(xml, device=device, precision='bf16' if variant.bf16 else 'f32')
    from yolact_ros.export.tensorrt import build_engine, TensorRTBackend

    engine = build_engine(report.path, workdir / f'{name}.engine', half=variant.half)
    return TensorRTBackend(engine, device=device)
