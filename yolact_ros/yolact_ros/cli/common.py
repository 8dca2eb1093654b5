"""Options and helpers shared by the subcommands that run the model."""

import argparse
import logging
from pathlib import Path
from typing import Optional

from yolact_ros.cli import CommandError

LOGGER = logging.getLogger(__name__)
WEIGHTS_HELP = ('.safetensors (project) or upstream .pth checkpoint, .onnx file, TensorRT '
                '.engine / .plan or OpenVINO .xml (default: the bundled demo model, synthetic '
                'shapes)')


def add_model_arguments(parser: argparse.ArgumentParser, *, score_threshold: float = 0.3
                        ) -> None:
    """Add --weights, --config, --device, --half, --backend, --threads and the thresholds.

    ``score_threshold`` is the command's default final score threshold: the node's 0.3 for
    commands that show detections, upstream's 0 for evaluation (mAP needs the low scores).
    """
    parser.add_argument('--weights', default=None, metavar='FILE', help=WEIGHTS_HELP)
    parser.add_argument('--config', help='config name (default: read from / inferred for '
                        'the weights file)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--half', action='store_true', help='fp16 inference (CUDA only)')
    parser.add_argument('--backend', choices=('torch', 'onnxruntime', 'tensorrt', 'openvino'),
                        default=None,
                        help='runtime (default: from the weights file: .onnx onnxruntime, '
                        '.engine / .plan tensorrt, .xml openvino, a checkpoint torch); a '
                        'checkpoint run with another backend is exported once into '
                        '.yolact_cache/ beside it')
    parser.add_argument('--bf16', action='store_true',
                        help='bfloat16 inference (openvino backend, CPUs with AVX512-BF16 or '
                        'AMX)')
    add_threads_argument(parser)
    parser.add_argument('--score-threshold', type=float, default=score_threshold,
                        help='keep detections scoring above this (default %(default)s); '
                        'candidates for NMS need a score above --candidate-threshold')
    parser.add_argument('--candidate-threshold', type=float, default=None,
                        help='score a prior needs to enter Fast NMS (default 0.05, as upstream)')
    parser.add_argument('--max-detections', type=int, default=None,
                        help='detections kept per image (default 100)')
    parser.add_argument('--nms-iou', type=float, default=None,
                        help='Fast NMS IoU threshold (default 0.5)')


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads N`` (CPU threads of torch and ONNX Runtime; 0 = the project default)."""
    parser.add_argument('--threads', type=int, default=0, metavar='N',
                        help='CPU threads for inference (default 0: the project default)')


def apply_threads(threads: int) -> int:
    """Set the CPU threads before a model is built; return the number in effect."""
    from yolact_ros.runtime import set_threads

    try:
        return set_threads(threads)
    except ValueError as error:
        raise CommandError(f'--threads: {error}') from None


def bundled_weights() -> Path:
    """Return the bundled demo model's path, or raise :class:`CommandError` if it is missing."""
    from yolact_ros.weights import demo_weights, WeightsError

    try:
        path = demo_weights()
    except WeightsError as error:
        raise CommandError(f'cannot locate the bundled demo model: {error}') from None
    if not path.is_file():
        raise CommandError(f'the bundled demo model {path} is missing; pass --weights FILE '
                           '(.safetensors, upstream .pth, .onnx or .engine)')
    return path


def resolve_weights(weights: Optional[str]) -> Path:
    """Return the weights file to run: ``weights``, or the bundled demo model if it is None."""
    if weights is None:
        return bundled_weights()
    path = Path(weights)
    if not path.exists():
        raise CommandError(f'weights file not found: {path}')
    if not path.is_file():
        raise CommandError(f'{path}: not a weights file (a folder?)')
    return path


def is_bundled(weights: Path) -> bool:
    """Return whether ``weights`` is the bundled demo model (given by name or by default)."""
    from yolact_ros.weights import demo_weights, WeightsError

    try:
        return weights.resolve() == demo_weights().resolve()
    except WeightsError:
        return False


def announce_bundled(segmenter) -> None:
    """Log the one line that says the bundled demo model runs, and what it detects."""
    names = ', '.join(segmenter.class_names)
    LOGGER.info('no --weights given: running the bundled demo model %s (%s at %d px, trained on '
                'synthetic shapes: %s); pass --weights FILE for another model',
                bundled_weights(), segmenter.config.name, segmenter.config.input_size, names)


def resolve_backend(weights: Path, backend: Optional[str]) -> str:
    """Return ``backend``, or the one the weights file's type calls for when it is None."""
    from yolact_ros.export.backends import ENGINE_SUFFIXES, IR_SUFFIXES, ONNX_SUFFIXES

    if backend is not None:
        return backend
    suffix = weights.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return 'onnxruntime'
    if suffix in ENGINE_SUFFIXES:
        return 'tensorrt'
    if suffix in IR_SUFFIXES:
        return 'openvino'
    return 'torch'


def check_config(name: Optional[str]) -> None:
    """Raise :class:`CommandError` for an unknown ``--config`` name, listing the known ones."""
    from yolact_ros.config import CONFIGS

    if name is not None and name not in CONFIGS:
        raise CommandError(f'--config: unknown config {name!r}; known configs: '
                           f'{", ".join(sorted(CONFIGS))}')


def build_segmenter(args: argparse.Namespace, weights: Path):
    """Build a Segmenter for ``weights`` from the options of :func:`add_model_arguments`."""
    from dataclasses import replace

    from yolact_ros.checkpoint import CheckpointError
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.export.backends import load_segmenter

    check_config(args.config)
    threads = apply_threads(args.threads)
    backend = resolve_backend(weights, args.backend)
    try:
        postprocess = PostprocessConfig()
        overrides = {'score_threshold': args.score_threshold,
                     'candidate_threshold': args.candidate_threshold,
                     'max_detections': args.max_detections, 'nms_iou': args.nms_iou}
        postprocess = replace(postprocess, **{k: v for k, v in overrides.items()
                                              if v is not None})
        segmenter = load_segmenter(weights, backend=backend, config=args.config,
                                   device=args.device, half=args.half,
                                   postprocess=postprocess, threads=threads,
                                   bf16=args.bf16)
    except (CheckpointError, ValueError) as error:
        raise CommandError(str(error)) from None
    if args.weights is None:
        announce_bundled(segmenter)
    return segmenter
