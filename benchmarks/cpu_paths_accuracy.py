#!/usr/bin/env python3
"""Accuracy cost of each CPU path (ONNX Runtime, OpenVINO f32 / bf16 / int8) against fp32 torch.

    python benchmarks/cpu_paths_accuracy.py --weights weights/yolact_resnet18_synth.safetensors \
        --images data/synth_test/images --int8 exports/yolact_resnet18_synth_int8.xml

Every path runs the same images; each detection of fp32 torch is paired with one of the path's
of the same class (box IoU >= 0.5, closest score first). Printed per path: detections matched,
extra ones (the path's, unpaired), the largest box and score differences of the pairs, and their
mean and smallest mask IoU. Timings are not measured here (see ``speed.py``).
"""

import argparse
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np


def pair(ours, reference) -> List[tuple]:
    """Return ``(ours index, reference index)`` pairs: same class, box IoU >= 0.5."""
    import torch

    from yolact_ros.ops.boxes import pairwise_iou

    if not len(ours) or not len(reference):
        return []
    iou = pairwise_iou(torch.as_tensor(reference.boxes, dtype=torch.float32),
                       torch.as_tensor(ours.boxes, dtype=torch.float32)).numpy()
    free, pairs = set(range(len(ours))), []
    for index in range(len(reference)):
        candidates = [i for i in free if ours.class_ids[i] == reference.class_ids[index]
                      and iou[index, i] >= 0.5]
        if candidates:
            best = min(candidates, key=lambda i: abs(ours.scores[i] - reference.scores[index]))
            free.remove(best)
            pairs.append((best, index))
    return pairs


def compare(ours, reference, totals: Dict[str, list]) -> None:
    """Add one image's pairs of ``ours`` with ``reference`` to ``totals``."""
    pairs = pair(ours, reference)
    totals['reference'].append(len(reference))
    totals['extra'].append(len(ours) - len(pairs))
    for mine, theirs in pairs:
        a, b = ours.masks[mine], reference.masks[theirs]
        union = np.logical_or(a, b).sum()
        totals['iou'].append(1.0 if union == 0 else np.logical_and(a, b).sum() / union)
        totals['box'].append(float(np.abs(ours.boxes[mine] - reference.boxes[theirs]).max()))
        totals['score'].append(float(abs(ours.scores[mine] - reference.scores[theirs])))


def build_paths(args: argparse.Namespace) -> Dict[str, object]:
    """Return the Segmenters to compare, fp32 torch first."""
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.export.backends import load_segmenter

    postprocess = PostprocessConfig(score_threshold=args.score_threshold)
    common = {'device': 'cpu', 'postprocess': postprocess}
    paths = {'torch (fp32)': load_segmenter(args.weights, **common),
             'onnxruntime': load_segmenter(args.weights, backend='onnxruntime', **common),
             'openvino': load_segmenter(args.weights, backend='openvino', **common),
             'openvino-bf16': load_segmenter(args.weights, backend='openvino', bf16=True,
                                             **common)}
    if args.int8:
        paths['openvino-int8'] = load_segmenter(args.int8, backend='openvino', **common)
    return paths


def run(args: argparse.Namespace) -> None:
    """Run every path on every image and print the table."""
    import cv2

    from yolact_ros.export.quantize import IMAGE_SUFFIXES
    from yolact_ros.runtime import set_threads

    set_threads(args.threads)
    files = sorted(p for p in Path(args.images).rglob('*')
                   if p.suffix.lower() in IMAGE_SUFFIXES)[:args.max_images]
    if not files:
        raise SystemExit(f'--images: no images in {args.images}')
    paths = build_paths(args)
    reference_name = next(iter(paths))
    totals = {name: {key: [] for key in ('reference', 'extra', 'iou', 'box', 'score')}
              for name in paths}
    for path in files:
        image = cv2.imread(str(path))
        results = {name: segmenter(image) for name, segmenter in paths.items()}
        for name in paths:
            compare(results[name], results[reference_name], totals[name])
    print(f'{len(files)} images of {args.images}; score threshold {args.score_threshold}; '
          f'pairs: same class, box IoU >= 0.5')
    print('| path | matched / fp32 detections | extra | max box diff (px) | max score diff | '
          'mask IoU mean / min |')
    print('|---|---|---|---|---|---|')
    for name, total in totals.items():
        ious = total['iou'] or [float('nan')]
        print(f'| {name} | {len(total["iou"])} / {sum(total["reference"])} | '
              f'{sum(total["extra"])} | {max(total["box"], default=0):.0f} | '
              f'{max(total["score"], default=0):.4f} | {np.mean(ious):.4f} / '
              f'{np.min(ious):.4f} |')


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--weights', required=True, help='checkpoint (.safetensors or .pth)')
    parser.add_argument('--images', required=True, help='folder of images (recursive)')
    parser.add_argument('--int8', help='int8 OpenVINO IR of the same weights (yolact export '
                        '--format openvino --int8)')
    parser.add_argument('--score-threshold', type=float, default=0.3,
                        help='final score threshold (default 0.3, the CLI default)')
    parser.add_argument('--max-images', type=int, default=200, help='images used, at most')
    parser.add_argument('--threads', type=int, default=0, help='CPU threads (0: default)')
    run(parser.parse_args(argv))


if __name__ == '__main__':
    main()
