#!/usr/bin/env python3
"""Segmenter latency per stage and end to end, for several backends side by side on one machine.

    python benchmarks/speed.py --config yolact_resnet50 --device cpu --batch 4 --iterations 10
    python benchmarks/speed.py --config yolact_base --device cuda --batch 8 --iterations 50 \
        --backends eager,eager-fp16,torch-fp16-cl

Backends (``--backends``, comma-separated; the first is the baseline of the ratios) are a base
name and options joined by ``-``, e.g. ``torch-fp16-cl``:

- ``eager``: the seed's path: eager torch, BatchNorm as is, every mask upsampled over the
  whole image. ``torch``: today's default Segmenter: BatchNorm folded, each mask upsampled over
  its window only. ``onnxruntime``, ``tensorrt``, ``openvino``: exported networks (window masks).
- options: ``fp16`` (half precision, CUDA), ``cl`` (channels-last weights), ``compile``
  (``torch.compile``), ``graphs`` (``torch.compile`` mode ``reduce-overhead``: CUDA graphs on
  CUDA), ``full`` (whole-image masks), ``windows`` (window masks), ``bf16`` / ``int8``
  (OpenVINO; int8 is calibrated on ``--calibration DIR``). See ``variants.py``.

``--upstream DIR`` (a dbolya/yolact checkout) times upstream's own eval path beside each backend
instead, batch 1, and checks their outputs against upstream's (``upstream_runner.py``).

Every backend runs the same images, interleaved (one call of each in turn, per iteration), so a
load change on a shared machine hits them all alike. Per call the Segmenter's own stage times
are kept (preprocess, network, postprocess); Fast NMS is timed by replaying the postprocessor's
``detect`` on that backend's network outputs, and masks = postprocess - NMS (including the
copy of the results to NumPy). fps = images per second at the p50 latency.

The node's path (``image message in -> messages out``) is the Segmenter's end to end plus the
node's own work, timed on each backend's detections: the ``sensor_msgs/Image`` (rgb8) to BGR
conversion and building ``instances`` (BITMAP_ROI masks) and ``detections``, with rclpy's
message classes where importable, else rosbags', else plain stand-in objects (said in the
output). Publishing (DDS) is not included.

Weights: ``--weights``, else the shared parity checkpoint for ``yolact_resnet50`` when present
(calibrated: 100 detections on its image), else random weights (residual branches
zero-initialised, see :func:`zero_init_residuals`) with NMS candidate threshold 0, which keeps 100
detections (the most the postprocessor returns: its worst case).
"""

import argparse
import os
from pathlib import Path
import platform
import statistics
import tempfile
import time
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from variants import make_segmenter, parse_variant, usage_error

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('YOLACT_SHARED_DIR', REPO_ROOT.parent / 'shared'))
REFERENCE = SHARED / 'reference' / 'upstream'


def load_network(args: argparse.Namespace):
    """Return ``(model, config, image, weights label, NMS candidate threshold)``."""
    import torch

    from yolact_ros.config import get_config

    image = None
    reference = REFERENCE / 'yolact_resnet50_ref.npz'
    if args.image:
        import cv2

        image = cv2.imread(args.image)
        if image is None:
            usage_error(f'--image: cannot read image {args.image}')
    elif reference.is_file():
        image = np.load(reference)['image_bgr']
    weights = resolve_weights(args)
    if weights is not None:
        from yolact_ros.checkpoint import load_model

        model, config = load_model(weights, args.config)
        label, threshold = Path(weights).name, 0.05
    else:
        from yolact_ros.modeling import build_model

        torch.manual_seed(0)
        config = get_config(args.config)
        model, label, threshold = build_model(config).eval(), 'random weights', 0.0
        zero_init_residuals(model)
    if image is None:
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return model, config, image, label, threshold


def resolve_weights(args: argparse.Namespace) -> Optional[str]:
    """Return ``--weights``, else the parity checkpoint for ``yolact_resnet50`` if present."""
    checkpoint = REFERENCE / 'yolact_resnet50_ref_fp16.pth'
    if args.weights is None and args.config == 'yolact_resnet50' and checkpoint.is_file():
        return str(checkpoint)
    return args.weights


def zero_init_residuals(model) -> None:
    """Zero the last BatchNorm scale of every residual branch (torchvision's zero_init_residual).

    A random ResNet-101's activations grow past fp16's range (65504): fp16 then finds no
    detections and NMS and masks have nothing to time. With the residual branches starting at
    zero the random network stays in range; the work per frame is unchanged.
    """
    from torchvision.models.resnet import BasicBlock, Bottleneck

    for block in model.modules():
        if isinstance(block, Bottleneck):
            block.bn3.weight.data.zero_()
        elif isinstance(block, BasicBlock):
            block.bn2.weight.data.zero_()


def synchronize(device: str) -> None:
    """Wait for queued GPU work (a no-op on CPU)."""
    import torch

    if device.startswith('cuda'):
        torch.cuda.synchronize()


def timed(function: Callable, device: str) -> Tuple[float, object]:
    """Return ``(milliseconds, result)`` of one call, GPU work included."""
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3, result


def message_types() -> Tuple[str, object]:
    """Return ``(binding, MessageTypes)``: rclpy's, rosbags', or plain stand-in objects."""
    try:
        from node_overhead import message_types as ros_or_rosbags

        return ros_or_rosbags()
    except ImportError:
        from yolact_ros.ros.messages import MessageTypes

        fields = MessageTypes.__dataclass_fields__
        make = {name: (lambda **kwargs: SimpleNamespace(**kwargs)) for name in fields}
        make.update(u8=np.asarray, u32=np.asarray, f64=np.asarray, level=int)
        return 'stand-in objects (no rclpy, no rosbags)', MessageTypes(**make)


def node_work(types, image: np.ndarray, detections) -> Callable[[], object]:
    """Return the node's own work on one frame: its ``process_frame`` on an rgb8 message.

    The Segmenter is replaced by the ready ``detections``, so what is timed is the node's
    part alone: decoding the message, the class filter and building ``instances`` (BITMAP_ROI)
    and ``detections``.
    """
    from yolact_ros.ros.frame_pipeline import OutputOptions, process_frame
    from yolact_ros.ros.messages import build_header

    height, width = image.shape[:2]
    rgb = np.ascontiguousarray(image[:, :, ::-1]).reshape(-1)  # as an rgb8 camera sends it
    msg = types.Image(header=build_header(types, 1, 'camera'), height=height, width=width,
                      encoding='rgb8', is_bigendian=0, step=width * 3, data=types.u8(rgb))
    options = OutputOptions()  # instances and detections, as while both are subscribed
    return lambda: process_frame(msg, lambda _: detections, types, options)


def agreement(ours, reference) -> str:
    """Describe how ``ours`` detections match ``reference``: class, box +-1 px, mask IoU."""
    unmatched = set(range(len(ours)))
    ious = []
    for index in range(len(reference)):
        candidates = [i for i in unmatched if ours.class_ids[i] == reference.class_ids[index]
                      and np.abs(ours.boxes[i] - reference.boxes[index]).max() <= 1]
        if not candidates:
            continue
        best = min(candidates, key=lambda i: abs(ours.scores[i] - reference.scores[index]))
        unmatched.remove(best)
        union = np.logical_or(ours.masks[best], reference.masks[index]).sum()
        both = np.logical_and(ours.masks[best], reference.masks[index]).sum()
        ious.append(1.0 if union == 0 else both / union)
    iou = f', min mask IoU {min(ious):.4f}' if ious else ''
    return (f'{len(ious)}/{len(reference)} detections match (class, box +-1 px){iou}; '
            f'{len(ours)} found')


def percentile(values: List[float], q: float) -> float:
    """Return the ``q``-th percentile of ``values``, ``q`` in [0, 100]."""
    return float(np.percentile(np.asarray(values), q))


def machine_line(device: str) -> str:
    """Name the machine: CPU model and cores or GPU, library versions, load average."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    where = f'{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ' \
            f'({torch.get_num_threads()} threads)'
    if device.startswith('cuda'):
        where = f'{torch.cuda.get_device_name()} (CUDA {torch.version.cuda}); ' + where
    try:
        import onnxruntime

        where += f', onnxruntime {onnxruntime.__version__}'
    except ImportError:
        pass
    return where


def load_average() -> str:
    """Return the 1-minute load average, or n/a."""
    try:
        return f'{os.getloadavg()[0]:.2f}'
    except OSError:
        return 'n/a'


def run(args: argparse.Namespace) -> None:
    """Build every backend, time them interleaved, print the tables."""
    import torch

    from yolact_ros.postprocess import Postprocessor

    names = [name.strip() for name in args.backends.split(',') if name.strip()]
    for name in names:
        parse_variant(name)
    if args.threads:
        from yolact_ros.runtime import set_threads

        set_threads(args.threads)  # torch, and the exported runtimes' sessions
    model, config, image, label, threshold = load_network(args)
    upstream = None
    if args.upstream:  # before minutes of exports: a bad folder or config fails fast
        from upstream_runner import load_upstream

        upstream = load_upstream(Path(args.upstream), resolve_weights(args), config.name)
    device = args.device
    batches = [1] if upstream is not None else sorted({1, args.batch})
    frames = [image] * max(batches)
    print(f'machine: {machine_line(device)}')
    print(f'model: {config.name} at {config.input_size} px, {label}; image '
          f'{image.shape[1]}x{image.shape[0]}; device {device}; batch sizes {batches}; '
          f'{args.iterations} iterations after {args.warmup} warm-up, interleaved')
    load_before = load_average()
    with tempfile.TemporaryDirectory() as scratch:
        segmenters = {name: make_segmenter(name, model, config, device=device,
                                           threshold=threshold, workdir=Path(scratch),
                                           calibration=args.calibration)
                      for name in names}
        if upstream is not None:
            from upstream_runner import side_by_side

            side_by_side(args, upstream, segmenters, image)
            print(f'load average (1 min): {load_before} before, {load_average()} after')
            return
        replay = {}  # (name, batch) -> network outputs, for timing Fast NMS alone
        for name, segmenter in segmenters.items():
            postprocessor = Postprocessor(segmenter.postprocess)
            for batch in batches:
                with torch.inference_mode():
                    inputs = segmenter.preprocessor(frames[:batch])
                    # clone: CUDA-graph backends overwrite their outputs on the next call
                    outputs = {k: v.float().clone()
                               for k, v in segmenter.model(inputs).items()}
                replay[name, batch] = (postprocessor, outputs)
        times: Dict[Tuple[str, int, str], List[float]] = {}
        results = {}
        from tqdm import tqdm

        for iteration in tqdm(range(args.warmup + args.iterations), desc='iterations',
                              unit='it'):
            for name, segmenter in segmenters.items():
                for batch in batches:
                    elapsed, detections = timed(lambda: segmenter(frames[:batch]), device)
                    postprocessor, outputs = replay[name, batch]
                    with torch.inference_mode():
                        nms_ms, _ = timed(lambda: postprocessor.detect(outputs), device)
                    if iteration < args.warmup:
                        continue
                    stage = detections[0].times
                    for key, value in (('preprocess', stage.preprocess_ms),
                                       ('network', stage.inference_ms),
                                       ('postprocess', stage.postprocess_ms),
                                       ('nms', nms_ms),
                                       ('masks', max(stage.postprocess_ms - nms_ms, 0.0)),
                                       ('total', elapsed)):
                        times.setdefault((name, batch, key), []).append(value)
                    results[name] = detections[0]
        binding, types = message_types()
        node = {name: [timed(node_work(types, image, results[name]), 'cpu')[0]
                       for _ in range(max(args.iterations, 5))] for name in names}
    print(f'load average (1 min): {load_before} before, {load_average()} after')
    print_tables(names, batches, times, node, results, binding)


def print_tables(names, batches, times, node, results, binding) -> None:
    """Print the stage table, the node-path table and the agreement with the baseline."""
    baseline = names[0]

    def p50(name, batch, key):
        return statistics.median(times[name, batch, key])

    print('\n| backend | batch | preprocess | network | NMS | masks | end-to-end p50 / p95 '
          f'(ms) | fps | vs {baseline} |')
    print('|---|---|---|---|---|---|---|---|---|')
    for batch in batches:
        for name in names:
            total = times[name, batch, 'total']
            speedup = p50(baseline, batch, 'total') / p50(name, batch, 'total')
            print(f'| {name} | {batch} | {p50(name, batch, "preprocess"):.1f} | '
                  f'{p50(name, batch, "network"):.1f} | {p50(name, batch, "nms"):.1f} | '
                  f'{p50(name, batch, "masks"):.1f} | {statistics.median(total):.1f} / '
                  f'{percentile(total, 95):.1f} | {1e3 * batch / statistics.median(total):.1f}'
                  f' | {speedup:.2f}x |')
    print(f'\nnode path, batch 1 (image message in -> instances + detections out; {binding}):')
    print('| backend | node overhead p50 / p95 (ms) | node end-to-end p50 (ms) | fps |')
    print('|---|---|---|---|')
    for name in names:
        overhead = statistics.median(node[name])
        end_to_end = p50(name, 1, 'total') + overhead
        print(f'| {name} | {overhead:.1f} / {percentile(node[name], 95):.1f} | '
              f'{end_to_end:.1f} | {1e3 / end_to_end:.1f} |')
    print(f'\nagreement with {baseline} (first image):')
    for name in names[1:]:
        print(f'  {name}: {agreement(results[name], results[baseline])}')


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='yolact_resnet50', help='model config name')
    parser.add_argument('--weights', help='checkpoint (default: see the module docstring)')
    parser.add_argument('--image', help='BGR image file (default: the parity image, else '
                        '640x480 noise)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--backends', default='eager,torch,onnxruntime',
                        help='comma-separated, the first is the baseline (see above)')
    parser.add_argument('--batch', type=int, default=4, help='the larger batch size N')
    parser.add_argument('--iterations', type=int, default=10, help='timed calls per backend')
    parser.add_argument('--warmup', type=int, default=2, help='untimed calls first')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--calibration', metavar='DIR', help='images to calibrate the int8 '
                        'backends on (e.g. `yolact synth` output)')
    parser.add_argument('--upstream', metavar='DIR', help='a dbolya/yolact checkout: time its '
                        'eval path beside each backend instead (batch 1; upstream_runner.py)')
    run(parser.parse_args(argv))


if __name__ == '__main__':
    main()
