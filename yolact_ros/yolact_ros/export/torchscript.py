"""The network as a traced TorchScript module, for C++ (libtorch) deployments.

``torch.jit.load(path)(images)`` returns ``(loc, conf, mask_coef, proto)`` like the ONNX graph;
the same yolact_ros metadata as the ONNX file (config, level sizes for the priors) is stored in
the archive as ``extra/yolact_ros.json``.
"""

import copy
import json
from pathlib import Path
import tempfile
import time
from typing import Union
import warnings

import torch
from torch import nn

from yolact_ros.checkpoint import atomic_write_bytes, FORMAT_NAME
from yolact_ros.config import ModelConfig
from yolact_ros.export.onnx import (
    check_exportable, example_input, ExportReport, level_sizes, max_abs_error, NetworkOutputs,
    OUTPUT_NAMES)

METADATA_NAME = 'yolact_ros.json'


def export_torchscript(model: nn.Module, config: ModelConfig, path: Union[str, Path], *,
                       half: bool = False, device: Union[str, torch.device] = 'cpu',
                       check: bool = True) -> ExportReport:
    """Trace the network at batch 1 and save it; compare the saved module with eager torch.

    Args:
        model: the network (not modified; a copy is traced).
        config: its config (stored in the archive).
        path: destination ``.pt`` file (written atomically).
        half: trace in float16 (needs ``device`` CUDA: CPU fp16 convolutions are very slow).
        device: where to trace; the module runs on that device type.
        check: reload the file and record the max abs error per output.
    """
    check_exportable(config)
    if half and torch.device(device).type != 'cuda':
        raise ValueError(f'half precision TorchScript needs a CUDA device, got {device!r}')
    start = time.perf_counter()
    dtype = torch.float16 if half else torch.float32
    network = copy.deepcopy(model).eval().to(device, dtype)
    images = example_input(config, device=device, dtype=dtype)
    metadata = {'format': FORMAT_NAME, 'config': config.to_dict(),
                'feature_sizes': level_sizes(network, images),
                'precision': 'fp16' if half else 'fp32', 'torch_version': torch.__version__}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # tracer notes on int(shape): static for a fixed size
        traced = torch.jit.trace(NetworkOutputs(network).eval(), (images,))
    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        # torch.jit.save / load announce TorchScript's deprecation: asked for, so not news.
        warnings.simplefilter('ignore', FutureWarning)
        scratch_file = Path(scratch) / 'module.pt'
        torch.jit.save(traced, str(scratch_file),
                       _extra_files={METADATA_NAME: json.dumps(metadata)})
        path = atomic_write_bytes(path, scratch_file.read_bytes())
        loaded = torch.jit.load(str(path), map_location=device) if check else None
    errors = {}
    if loaded is not None:
        with torch.no_grad():
            ours = loaded(images)
            reference = network(images)
        errors = {name: max_abs_error(value, reference[name])
                  for name, value in zip(OUTPUT_NAMES, ours)}
    return ExportReport(path=path, opset=None, max_abs_error=errors,
                        seconds=time.perf_counter() - start)
