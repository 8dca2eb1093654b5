"""Mask and box AP of one model at several inference input sizes (the test-time size).

A project model runs at the input size stored in its file (``yolact weights resize`` sets
another). This evaluates it at each size on one dataset, as ``yolact eval`` does (score
threshold 0), to choose a size on a validation split (training/README.md#input-size); mask AP
is also given for each frame shape (width x height) of the dataset.

usage:
  # the bundled model (trained at 192) on the validation split of benchmarks/ablation.py
  python benchmarks/input_size.py --data runs/ablation/data/val --sizes 160 192 224 256 288
"""

import argparse
from pathlib import Path
import sys
import tempfile
from typing import Dict


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--weights', type=Path, help='project .safetensors (default: bundled)')
    parser.add_argument('--data', required=True, help='dataset to evaluate on')
    parser.add_argument('--sizes', type=int, nargs='+', required=True, metavar='S',
                        help='input sizes, multiples of 32')
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args()


def frame_shape(image: dict) -> str:
    """Return a COCO image entry's 'WIDTHxHEIGHT'."""
    return f'{image["width"]}x{image["height"]}'


def mask_ap_by_frame_shape(result, coco) -> Dict[str, float]:
    """Mask AP of an evaluation (``evaluate_segmenter``) on each frame shape, e.g. '320x240'."""
    from yolact_ros.evaluation.coco_eval import evaluate_results

    shapes: Dict[str, list] = {}
    for image_id, image in coco.imgs.items():
        shapes.setdefault(frame_shape(image), []).append(image_id)
    return {shape: evaluate_results(result.results, coco, image_ids=ids).mask['AP']
            for shape, ids in sorted(shapes.items())}


def main() -> int:
    args = parse_args()
    import torch

    from yolact_ros.checkpoint import with_input_size
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.data import CocoDataset, resolve_dataset
    from yolact_ros.evaluation import evaluate_segmenter
    from yolact_ros.inference import Segmenter
    from yolact_ros.weights import demo_weights

    torch.set_num_threads(args.threads)
    weights = args.weights or demo_weights()
    dataset = CocoDataset.from_spec(resolve_dataset(args.data, 'val'), input_size=32)
    print(f'{weights} on {args.data} ({len(dataset)} images), score threshold 0')
    shapes = sorted({frame_shape(image) for image in dataset.coco.imgs.values()})
    print(f'| input size | mask AP | {" | ".join(shapes)} | mask AP50 | box AP | ms / image |')
    print('|' + ' --- |' * (len(shapes) + 5))
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            resized = with_input_size(weights, size, Path(folder) / f'{size}.safetensors')
            segmenter = Segmenter.from_weights(resized, device='cpu', postprocess=(
                PostprocessConfig(score_threshold=0.0)))
            result = evaluate_segmenter(segmenter, dataset)
            milliseconds = 1e3 / result.timing.images_per_second
            by_shape = mask_ap_by_frame_shape(result, dataset.coco)
            print(f'| {size} | {result.mask["AP"]:.3f} | '
                  f'{" | ".join(f"{by_shape[shape]:.3f}" for shape in shapes)} | '
                  f'{result.mask["AP50"]:.3f} | {result.box["AP"]:.3f} | {milliseconds:.1f} |',
                  flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
