"""Options and helpers shared by the subcommands that run the model."""

import argparse

from yolact_ros.cli import CommandError


def add_model_arguments(parser: argparse.ArgumentParser, *, weights_required: bool = True
                        ) -> None:
    """Add --weights, --config, --device, --half, --backend and the detection thresholds."""
    parser.add_argument('--weights', required=weights_required,
                        help='.safetensors (project) or upstream .pth checkpoint; or an .onnx '
                        'file / TensorRT .engine for --backend onnxruntime / tensorrt')
    parser.add_argument('--config', help='config name (default: read from / inferred for '
                        'the weights file)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--half', action='store_true', help='fp16 inference (CUDA only)')
    parser.add_argument('--backend', choices=('torch', 'onnxruntime', 'tensorrt'),
                        default='torch',
                        help='runtime: torch (eager, default), onnxruntime or tensorrt (CUDA); '
                        'a checkpoint is exported once into .yolact_cache/ beside it')
    parser.add_argument('--score-threshold', type=float, default=None,
                        help='drop detections scoring below this (default 0.05)')
    parser.add_argument('--max-detections', type=int, default=None,
                        help='detections kept per image (default 100)')
    parser.add_argument('--nms-iou', type=float, default=None,
                        help='Fast NMS IoU threshold (default 0.5)')


def build_segmenter(args: argparse.Namespace):
    """Build a Segmenter from the options of :func:`add_model_arguments`."""
    from dataclasses import replace

    from yolact_ros.checkpoint import CheckpointError
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.export.backends import load_segmenter

    try:
        postprocess = PostprocessConfig()
        overrides = {'score_threshold': args.score_threshold,
                     'max_detections': args.max_detections, 'nms_iou': args.nms_iou}
        postprocess = replace(postprocess, **{k: v for k, v in overrides.items()
                                              if v is not None})
        return load_segmenter(args.weights, backend=getattr(args, 'backend', 'torch'),
                              config=args.config, device=args.device, half=args.half,
                              postprocess=postprocess)
    except (CheckpointError, ValueError) as error:
        raise CommandError(str(error)) from None
