"""int8 post-training quantisation of the OpenVINO IR with NNCF, calibrated on the user's images.

The calibration images go through the project's own :class:`~yolact_ros.preprocess.Preprocessor`
(what the network sees at inference). NNCF's ``quantize`` inserts int8 fake-quantise nodes on
the convolutions (symmetric weights and activations: the ``PERFORMANCE`` preset, which maps to
VNNI / AMX int8 kernels); OpenVINO then runs them as int8.
"""

from pathlib import Path
from typing import List

import numpy as np

from yolact_ros.config import ModelConfig
from yolact_ros.export.onnx import ExportError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
DEFAULT_CALIBRATION_IMAGES = 300


def import_nncf():
    """Return the ``nncf`` module, or raise :class:`ExportError` saying how to get it."""
    try:
        import nncf
    except ImportError:
        raise ExportError('int8 quantisation needs NNCF: `pip install nncf` (or `pip install '
                          'yolact_ros[export]`)') from None
    return nncf


def calibration_inputs(folder: Path, config: ModelConfig, *,
                       limit: int = DEFAULT_CALIBRATION_IMAGES) -> List[np.ndarray]:
    """Return up to ``limit`` preprocessed images of ``folder`` (searched recursively).

    Returns:
        ``float32[1, 3, S, S]`` arrays, the network's input for each image, in name order.
    """
    import cv2
    import torch

    from yolact_ros.preprocess import Preprocessor

    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f'--calibration: not a folder of images: {folder}')
    files = sorted(p for p in folder.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ExportError(f'--calibration: no images ({", ".join(IMAGE_SUFFIXES)}) in {folder}')
    preprocessor = Preprocessor(config.input_size, config.pixel_mean_bgr, config.pixel_std_bgr,
                                device=torch.device('cpu'), letterbox=config.letterbox)
    inputs = []
    for path in files:
        image = cv2.imread(str(path))
        if image is None:
            raise ExportError(f'--calibration: cannot read image {path}')
        inputs.append(preprocessor([image]).numpy())
    return inputs


def quantize_ir(onnx_path: Path, inputs: List[np.ndarray]):
    """Return the int8 ``openvino.Model`` of a yolact_ros ONNX file, calibrated on ``inputs``."""
    from yolact_ros.export.openvino import import_openvino

    ov = import_openvino()
    nncf = import_nncf()
    model = ov.convert_model(str(onnx_path))
    dataset = nncf.Dataset(inputs)
    return nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.PERFORMANCE,
                         subset_size=len(inputs))
