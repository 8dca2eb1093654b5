"""``yolact export``: the network to ONNX, TorchScript, OpenVINO or TensorRT, parity-checked."""

import argparse
import logging
import os
from pathlib import Path
from typing import Optional

from yolact_ros.cli import CommandError
from yolact_ros.cli.common import check_config, is_bundled, resolve_weights

SUFFIXES = {'onnx': '.onnx', 'torchscript': '.pt', 'engine': '.engine', 'openvino': '.xml'}
# Exports of the bundled model go here (relative to the working directory), not into weights/.
BUNDLED_EXPORT_DIR = Path('exports')


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        'export', help='export the network to ONNX, TorchScript, OpenVINO or TensorRT',
        description='Write the network (raw outputs loc, conf, mask_coef, proto; Fast NMS and '
                    'masks stay in Python) with its config in the file, and print the max abs '
                    'error of the exported network against eager torch.')
    parser.add_argument('--weights', default=None, metavar='FILE',
                        help='.safetensors (project) or upstream .pth checkpoint (default: the '
                        'bundled demo model)')
    parser.add_argument('--config', help='config name (default: read from / inferred for '
                        'the weights file)')
    parser.add_argument('--format', dest='export_format', choices=tuple(SUFFIXES),
                        default='onnx', help='onnx (default), torchscript, openvino (IR: .xml '
                        '+ .bin, from the ONNX file written beside it) or engine (TensorRT, '
                        'built for this GPU)')
    parser.add_argument('--output', default=None, metavar='PATH',
                        help='destination file, or a folder (existing, or ending in /) to '
                        'write it in under the default name (default: beside the weights, '
                        'named after them, .onnx / .pt / .xml / .engine; for the bundled demo '
                        'model, in ./exports/)')
    parser.add_argument('--int8', action='store_true',
                        help='openvino: int8 post-training quantisation (NNCF), calibrated on '
                        '--calibration')
    parser.add_argument('--calibration', type=Path, default=None, metavar='DIR',
                        help='folder of calibration images (searched recursively) for --int8')
    parser.add_argument('--calibration-images', type=int, default=300, metavar='N',
                        help='calibration images used, at most (default %(default)s)')
    parser.add_argument('--half', action='store_true',
                        help='float16 network (needs CUDA)')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='free batch dimension (ONNX, engine; default: batch 1)')
    parser.add_argument('--max-batch', type=int, default=8,
                        help='largest batch of a dynamic-batch engine (default 8)')
    parser.add_argument('--opset', type=int, default=None,
                        help='ONNX opset (default 17)')
    parser.add_argument('--device', default='auto', help='where to trace: auto, cpu, cuda')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export and print where the file went and its parity with eager torch."""
    from yolact_ros.checkpoint import CheckpointError, load_model
    from yolact_ros.export.onnx import DEFAULT_OPSET, export_onnx
    from yolact_ros.inference import resolve_device

    weights = resolve_weights(args.weights)
    check_config(args.config)
    if args.int8 and (args.export_format != 'openvino' or args.calibration is None):
        raise CommandError('--int8 needs --format openvino and --calibration DIR (images)')
    if args.calibration_images < 1:
        raise CommandError(f'--calibration-images must be >= 1, got {args.calibration_images}')
    output = output_path(args.output, weights, args.export_format, int8=args.int8)
    if args.weights is None:
        logging.getLogger(__name__).info('no --weights given: exporting the bundled demo '
                                         'model %s', weights)
    try:
        if args.export_format == 'engine':
            from yolact_ros.export.tensorrt import import_tensorrt

            import_tensorrt()  # before minutes of export: says how to get it
        if args.export_format == 'openvino':
            from yolact_ros.export.openvino import import_openvino

            import_openvino()
        device = resolve_device(args.device)
        if args.half and device.type != 'cuda':
            raise CommandError(f'--half needs a CUDA device, got {device.type}')
        if args.export_format == 'engine' and device.type != 'cuda':
            raise CommandError('--format engine builds for the GPU it runs on: no CUDA device '
                               'here')
        model, config = load_model(weights, args.config)
        opset = args.opset or DEFAULT_OPSET
        if args.export_format == 'torchscript':
            from yolact_ros.export.torchscript import export_torchscript

            report = export_torchscript(model, config, output, half=args.half, device=device)
            print(report.summary())
            return 0
        onnx_path = output if args.export_format == 'onnx' else output.with_suffix('.onnx')
        report = export_onnx(model, config, onnx_path, opset=opset,
                             dynamic_batch=args.dynamic_batch, half=args.half, device=device)
        print(report.summary())
        if args.export_format == 'openvino':
            export_ir(args, model, onnx_path, output)
        if args.export_format == 'engine':
            from yolact_ros.export.tensorrt import build_engine, engine_parity, sidecar_path

            engine = build_engine(onnx_path, output, max_batch=args.max_batch)
            errors = engine_parity(engine, model, device)
            parity = ', '.join(f'{name} {error:.2e}' for name, error in errors.items())
            print(f'wrote {engine} (TensorRT, {"fp16" if args.half else "fp32"}) and '
                  f'{sidecar_path(engine)}; max abs error vs eager torch: {parity}')
        return 0
    except (CheckpointError, ValueError) as error:
        raise CommandError(str(error)) from None


def export_ir(args: argparse.Namespace, model, onnx_path: Path, output: Path) -> None:
    """Convert the ONNX file to an OpenVINO IR (int8 with --int8) and print its parity."""
    from yolact_ros.export.onnx import read_metadata
    from yolact_ros.export.openvino import convert_onnx, ir_parity

    quantized = None
    if args.int8:
        from yolact_ros.export.quantize import calibration_inputs, quantize_ir

        inputs = calibration_inputs(args.calibration, read_metadata(onnx_path)[0],
                                    limit=args.calibration_images)
        quantized = quantize_ir(onnx_path, inputs)
    convert_onnx(onnx_path, output, model=quantized)
    errors = ir_parity(output, model)
    parity = ', '.join(f'{name} {error:.2e}' for name, error in errors.items())
    precision = f'int8, calibrated on {len(inputs)} images' if args.int8 else 'fp32'
    print(f'wrote {output} and {output.with_suffix(".bin")} (OpenVINO IR, {precision}); max '
          f'abs error vs eager torch: {parity}')


def output_path(output: Optional[str], weights: Path, export_format: str, *,
                int8: bool = False) -> Path:
    """Return the file to write, having created its folder.

    That is ``output``; the default name inside it if it is a folder (existing, or written with
    a trailing slash); :func:`default_output` without it.
    """
    default = default_output(weights, export_format, int8=int8)
    if output is None:
        path = default
    elif output.endswith(('/', os.sep)) or Path(output).is_dir():
        path = Path(output) / default.name
    else:
        path = Path(output)
    if export_format == 'openvino' and path.suffix.lower() != '.xml':
        raise CommandError(f'--output {output}: an OpenVINO IR is written as NAME.xml and '
                           'NAME.bin: give a .xml file or a folder')
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f'--output {path}: cannot create its folder ({error.strerror})')
    return path


def default_output(weights: Path, export_format: str, *, int8: bool = False) -> Path:
    """Return where an export goes without --output: beside the weights, or ./exports/."""
    stem = weights.stem + ('_int8' if int8 else '')
    name = stem + SUFFIXES[export_format]
    if is_bundled(weights):  # the repository's (or the install's) weights/ folder
        return BUNDLED_EXPORT_DIR / name
    return weights.with_name(name)
