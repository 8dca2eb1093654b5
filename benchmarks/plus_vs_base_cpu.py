#!/usr/bin/env python3
"""CPU milliseconds per image: YOLACT++ (yolact_plus_resnet50) vs YOLACT (yolact_resnet50).

Runs the Segmenter (preprocess, network, postprocess with mask re-scoring for ++) on one
480x640 image at 550x550, batch 1, fp32, after two warm-up calls, and prints the median and the
spread of ``--runs`` calls per model and stage, the torch thread count and the load average
(other processes on the machine slow every figure down: run it on a quiet machine). The weights
are the shared parity checkpoints when present (calibrated, so detections are realistic: 100
per image), else random.

    python benchmarks/plus_vs_base_cpu.py              # 10 runs each
    python benchmarks/plus_vs_base_cpu.py --runs 20 --threads 2 --plot plus_vs_base.png
"""

import argparse
import os
from pathlib import Path
import statistics
import time

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('YOLACT_SHARED_DIR', REPO_ROOT.parent / 'shared'))
REFERENCE = SHARED / 'reference' / 'upstream'
MODELS = (('yolact_resnet50', 'yolact_resnet50_ref'),
          ('yolact_plus_resnet50', 'yolact_plus_resnet50_ref'))


def build_segmenter(config_name: str, reference: str):
    """Return ``(segmenter, image, weights label)``: shared reference weights, else random."""
    import torch

    from yolact_ros.config import get_config
    from yolact_ros.inference import Segmenter
    from yolact_ros.modeling import build_model

    checkpoint = REFERENCE / f'{reference}_fp16.pth'
    arrays = REFERENCE / f'{reference}.npz'
    if checkpoint.is_file() and arrays.is_file():
        image = np.load(arrays)['image_bgr']
        return Segmenter.from_weights(checkpoint, device='cpu'), image, checkpoint.name
    torch.manual_seed(0)
    config = get_config(config_name)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return Segmenter(build_model(config), config, device='cpu'), image, 'random weights'


def time_segmenter(segmenter, image: np.ndarray, runs: int) -> dict:
    """Return per-stage lists of milliseconds over ``runs`` calls (after two warm-up calls)."""
    for _ in range(2):
        segmenter(image)
    stages = {'preprocess': [], 'network': [], 'postprocess': [], 'total': [], 'detections': []}
    from tqdm import tqdm

    for _ in tqdm(range(runs), desc=segmenter.config.name, unit='run', leave=False):
        start = time.perf_counter()
        detections = segmenter(image)
        stages['total'].append((time.perf_counter() - start) * 1e3)
        stages['preprocess'].append(detections.times.preprocess_ms)
        stages['network'].append(detections.times.inference_ms)
        stages['postprocess'].append(detections.times.postprocess_ms)
        stages['detections'].append(len(detections))
    return stages


def plot(results: dict, path: Path) -> None:
    """Save stacked bars of the median stage times of each model."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    names = list(results)
    bottom = np.zeros(len(names))
    for stage in ('preprocess', 'network', 'postprocess'):
        values = np.array([statistics.median(results[name][stage]) for name in names])
        axis.bar(names, values, bottom=bottom, label=stage)
        bottom += values
    for index, total in enumerate(bottom):
        axis.text(index, total, f'{total:.0f} ms', ha='center', va='bottom')
    axis.set_ylim(0, bottom.max() * 1.2)
    axis.set_ylabel('CPU ms per image (median)')
    axis.set_title('550x550, batch 1, fp32')
    axis.legend(loc='upper left')
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f'plot: {path}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10, help='timed calls per model (>= 10)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: as torch chooses)')
    parser.add_argument('--plot', type=Path, default=None, help='save a bar chart here')
    args = parser.parse_args()
    if args.runs < 10:
        parser.error(f'--runs must be >= 10, got {args.runs}')

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = {}
    for config_name, reference in MODELS:
        segmenter, image, label = build_segmenter(config_name, reference)
        results[config_name] = time_segmenter(segmenter, image, args.runs)
        print(f'{config_name}: {label}, {results[config_name]["detections"][-1]} detections')
    load_after = os.getloadavg()

    print(f'\nCPU, torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f} before, '
          f'{load_after[0]:.2f} after; median (min-max) of {args.runs} runs, ms per image')
    print(f'{"model":<22}{"preprocess":>16}{"network":>20}{"postprocess":>18}{"total":>20}')
    for name, stages in results.items():
        cells = [f'{statistics.median(stages[s]):.1f} ({min(stages[s]):.0f}-{max(stages[s]):.0f})'
                 for s in ('preprocess', 'network', 'postprocess', 'total')]
        print(f'{name:<22}{cells[0]:>16}{cells[1]:>20}{cells[2]:>18}{cells[3]:>20}')
    base, plus = (statistics.median(results[name]['total']) for name, _ in MODELS)
    print(f'yolact_plus_resnet50 / yolact_resnet50: {plus / base:.2f}x')
    if args.plot:
        plot(results, args.plot)


if __name__ == '__main__':
    main()
