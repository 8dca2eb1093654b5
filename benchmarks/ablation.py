"""Ablation: does the seed's idea help? Baseline vs +attention vs +contextual loss vs +both.

Every variant is trained identically (same synthetic occlusion-heavy data, iterations, schedule
and seeds; only the switch under test differs) and evaluated on the same held-out set. Printed
per run and as mean +- std over seeds: mask AP, box AP and the mean mask IoU of heavily occluded
instances (ground truths whose ``visible_fraction`` < 0.5; for each, the best IoU of a detected
mask of its class scoring >= 0.3 in its image, 0 when there is none).

usage:
  # everything: data, 4 variants x 2 seeds, evaluation, table + plot into training/
  python benchmarks/ablation.py --out runs/ablation --device cuda --parallel 1
  # (one GPU: one run at a time; eight sharing an H100 got 2 it/s each against 14 alone)
  # rebuild the table and plot from an earlier run's results.json
  python benchmarks/ablation.py --out runs/ablation --report-only
"""

import argparse
from concurrent.futures import ThreadPoolExecutor
import json
from pathlib import Path
import subprocess
import sys
import time
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
README = REPO / 'training' / 'README.md'
PLOT = REPO / 'training' / 'ablation.png'
BEGIN, END = '<!-- ablation:begin -->', '<!-- ablation:end -->'
OCCLUDED_BELOW = 0.5
SCORE_THRESHOLD = 0.3
CONTEXT_WEIGHT = 0.1
VARIANTS = {
    'baseline': ['--contextual-weight', '0'],
    '+attention': ['--attention', '--contextual-weight', '0'],
    '+contextual': ['--contextual-weight', str(CONTEXT_WEIGHT)],
    '+both': ['--attention', '--contextual-weight', str(CONTEXT_WEIGHT)],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path('runs/ablation'))
    parser.add_argument('--train-images', type=int, default=600)
    parser.add_argument('--val-images', type=int, default=100)
    parser.add_argument('--size', type=int, default=256, help='image and input side')
    parser.add_argument('--iterations', type=int, default=2000)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--lr', type=float, default=4e-3, help='lr for a batch of 8')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--train-args', default='',
                        help='more `yolact train` options for every run, e.g. "--no-augment"')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--parallel', type=int, default=1, help='training runs at once')
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--no-readme', action='store_true',
                        help='do not write the table and plot into training/')
    return parser.parse_args()


def make_data(args: argparse.Namespace) -> Dict[str, Path]:
    """Generate (once) the occlusion-heavy training and held-out sets."""
    from yolact_ros.data import generate_dataset

    sets = {'train': (args.train_images, 100), 'val': (args.val_images, 101)}
    paths = {}
    for name, (count, seed) in sets.items():
        path = args.out / 'data' / name
        if not (path / 'dataset.yaml').is_file():
            generate_dataset(path, num_images=count, size=args.size, seed=seed,
                             occlusion='high', progress=True)
        paths[name] = path
    return paths


def train_one(args: argparse.Namespace, data: Path, variant: str, seed: int) -> tuple:
    """Train one variant with one seed (a ``yolact train`` process).

    Returns:
        ``(weights, seconds)``; a run whose weights exist is not trained again.
    """
    import shlex

    run_dir = args.out / 'runs' / f'{variant.strip("+")}_s{seed}'
    weights = run_dir / 'model.safetensors'
    seconds_file = run_dir / 'seconds.txt'
    if weights.is_file() and seconds_file.is_file():
        return weights, float(seconds_file.read_text())
    command = [sys.executable, '-m', 'yolact_ros.cli.main', 'train',
               '--config', 'yolact_resnet18', '--data', str(data), '--init', 'none',
               '--input-size', str(args.size), '--iterations', str(args.iterations),
               '--batch-size', str(args.batch_size), '--lr', str(args.lr),
               '--seed', str(seed), '--device', args.device, '--workers', str(args.workers),
               '--checkpoint-every', str(args.iterations), '--out', str(run_dir),
               *shlex.split(args.train_args), *VARIANTS[variant]]
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(run_dir / 'train.log', 'w') as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise RuntimeError(f'{variant} seed {seed} failed ({code}); see {run_dir}/train.log')
    seconds = time.perf_counter() - started
    seconds_file.write_text(f'{seconds:.1f}')
    print(f'trained {variant} seed {seed} in {seconds:.0f} s', flush=True)
    return weights, seconds


def occluded_mean_iou(dataset, results: List[dict]) -> float:
    """Mean best IoU of the heavily occluded ground truths (see the module docstring)."""
    from pycocotools import mask as mask_utils

    by_image: Dict[tuple, List[dict]] = {}
    for result in results:
        if result['score'] >= SCORE_THRESHOLD:
            key = (result['image_id'], result['category_id'])
            by_image.setdefault(key, []).append(result['segmentation'])
    ious = []
    for ann in dataset.coco.dataset['annotations']:
        if ann.get('iscrowd') or ann['visible_fraction'] >= OCCLUDED_BELOW:
            continue
        detected = by_image.get((ann['image_id'], ann['category_id']), [])
        if not detected:
            ious.append(0.0)
            continue
        truth = dataset.coco.annToRLE(ann)
        overlaps = mask_utils.iou(detected, [truth], [0])
        ious.append(float(overlaps.max()))
    return sum(ious) / len(ious) if ious else float('nan')


def evaluate(weights: Path, val: Path, device: str) -> Dict[str, float]:
    """Box AP, mask AP and occluded-instance IoU of one trained model on the held-out set."""
    from yolact_ros.data import CocoDataset, resolve_dataset
    from yolact_ros.evaluation import evaluate_segmenter
    from yolact_ros.inference import Segmenter

    segmenter = Segmenter.from_weights(weights, device=device)
    config = segmenter.config
    dataset = CocoDataset.from_spec(resolve_dataset(val, 'val'), input_size=config.input_size,
                                    pixel_mean_bgr=config.pixel_mean_bgr,
                                    pixel_std_bgr=config.pixel_std_bgr)
    result = evaluate_segmenter(segmenter, dataset)
    return {'mask_AP': result.mask['AP'], 'box_AP': result.box['AP'],
            'mask_AP50': result.mask['AP50'],
            'occluded_mIoU': occluded_mean_iou(dataset, result.results),
            'occluded_instances': sum(1 for a in dataset.coco.dataset['annotations']
                                      if a['visible_fraction'] < OCCLUDED_BELOW)}


def summarise(runs: List[dict]) -> Dict[str, Dict[str, tuple]]:
    """Mean and standard deviation over seeds of each metric, per variant."""
    import numpy as np

    summary = {}
    for variant in VARIANTS:
        rows = [r for r in runs if r['variant'] == variant]
        summary[variant] = {
            metric: (float(np.mean([r[metric] for r in rows])),
                     float(np.std([r[metric] for r in rows])))
            for metric in ('mask_AP', 'box_AP', 'occluded_mIoU')}
    return summary


def table(summary: Dict[str, Dict[str, tuple]], runs: List[dict]) -> str:
    """Markdown table: mean +- std over seeds, then each seed's mask AP."""
    lines = ['| variant | mask AP | box AP | occluded mIoU | mask AP per seed |',
             '| --- | --- | --- | --- | --- |']
    for variant, metrics in summary.items():
        cells = [f'{mean:.3f} ± {std:.3f}' for mean, std in metrics.values()]
        seeds = ', '.join(f'{r["mask_AP"]:.3f}' for r in runs if r['variant'] == variant)
        lines.append(f'| {variant} | ' + ' | '.join(cells) + f' | {seeds} |')
    return '\n'.join(lines)


def plot(summary: Dict[str, Dict[str, tuple]], runs: List[dict], path: Path) -> None:
    """Bars of the seed means with each seed as a dot, one panel per metric."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    metrics = ('mask_AP', 'box_AP', 'occluded_mIoU')
    figure, axes = plt.subplots(1, len(metrics), figsize=(13, 3.8))
    names = list(summary)
    for axis, metric in zip(axes, metrics):
        means = [summary[v][metric][0] for v in names]
        errors = [summary[v][metric][1] for v in names]
        axis.bar(range(len(names)), means, yerr=errors, capsize=4, color='#8fb3d9')
        for index, variant in enumerate(names):
            values = [r[metric] for r in runs if r['variant'] == variant]
            axis.scatter([index] * len(values), values, color='#1f3b73', s=14, zorder=3)
        axis.set_xticks(range(len(names)), names, rotation=15)
        axis.set_title(metric.replace('_', ' '))
        low = min(r[metric] for r in runs)
        axis.set_ylim(max(0.0, low - 0.1), None)
        axis.grid(axis='y', alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_readme(section: str) -> None:
    """Replace the text between the ablation markers of training/README.md."""
    text = README.read_text(encoding='utf-8')
    if BEGIN not in text or END not in text:
        raise SystemExit(f'{README} lacks the markers {BEGIN} ... {END}')
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f'{head}{BEGIN}\n{section}\n{END}{tail}', encoding='utf-8')


def main() -> int:
    args = parse_args()
    results_file = args.out / 'results.json'
    if args.report_only:
        report = json.loads(results_file.read_text())
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        data = make_data(args)
        jobs = [(variant, seed) for seed in args.seeds for variant in VARIANTS]
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            trained = list(pool.map(lambda job: train_one(args, data['train'], *job), jobs))
        runs = []
        for (variant, seed), (path, seconds) in zip(jobs, trained):
            metrics = evaluate(path, data['val'], args.device)
            runs.append({'variant': variant, 'seed': seed, 'train_seconds': seconds, **metrics})
            print(f'{variant:12} seed {seed}: mask AP {metrics["mask_AP"]:.4f}, box AP '
                  f'{metrics["box_AP"]:.4f}, occluded mIoU {metrics["occluded_mIoU"]:.4f}',
                  flush=True)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    if k not in ('report_only', 'no_readme', 'parallel', 'workers')}
        report = {'settings': settings, 'context_weight': CONTEXT_WEIGHT, 'runs': runs}
        results_file.write_text(json.dumps(report, indent=1))
    summary = summarise(report['runs'])
    markdown = table(summary, report['runs'])
    print(markdown)
    if not args.no_readme:
        plot(summary, report['runs'], PLOT)
        settings = report['settings']
        section = (f'Settings: {settings["train_images"]} training / {settings["val_images"]} '
                   f'held-out images of {settings["size"]} px (`--occlusion high`), '
                   f'`yolact_resnet18` at input {settings["size"]}, {settings["iterations"]} '
                   f'iterations of batch {settings["batch_size"]}, lr {settings["lr"]}, '
                   f'`--init none {settings.get("train_args", "")}`, seeds {settings["seeds"]}, '
                   f'device `{settings["device"]}`; '
                   f'contextual weight {report["context_weight"]}. Mean ± std over seeds.\n\n'
                   f'{markdown}\n\n![ablation](ablation.png)')
        write_readme(section)
        print(f'wrote {README} and {PLOT}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
