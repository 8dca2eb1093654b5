"""Contextual loss sweep: its weight and bandwidth, chosen on the validation split only.

Every point is the shipped model's recipe (``both`` in ``ablation.py``: channel attention and the
contextual loss, the demo recipe, seed 0) with one setting moved: the weight (0.03, 0.3) or the
kernel bandwidth h (0.05, 0.2). The centre (weight 0.1, h 0.1) is the ablation's three ``both``
runs, whose seed spread is the yardstick for the differences. The score is the last validation
mask AP on the validation split the runs validate on (99 camera-shaped images); no held-out set
is looked at, so the ablation's held-out figures stay unbiased.

Runs resume and run in parallel as in ``ablation.py`` (and share its data and centre runs).

usage:
  python benchmarks/contextual_sweep.py --parallel 2 --threads 1   # ~50-65 min a run a core
  python benchmarks/contextual_sweep.py --report-only              # table and plot so far
"""

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import sys
from typing import List, Tuple

from ablation import add_run_arguments, CONTEXT_WEIGHT, make_sets, run_dir, train
from ablation_report import README, validation_curve, write_readme
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PLOT = REPO / 'training' / 'contextual_sweep.png'
BEGIN, END = '<!-- sweep:begin -->', '<!-- sweep:end -->'
BANDWIDTH = 0.1  # LossConfig.context_bandwidth
POINTS = {  # name: (weight, bandwidth); seed 0
    'w0.03': (0.03, BANDWIDTH), 'w0.3': (0.3, BANDWIDTH),
    'h0.05': (CONTEXT_WEIGHT, 0.05), 'h0.2': (CONTEXT_WEIGHT, 0.2),
}
CENTRE_SEEDS = (0, 1, 2)  # the ablation's ``both`` runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=REPO / 'runs' / 'ablation',
                        help="the ablation's folder (data, centre runs); points go in OUT/sweep")
    parser.add_argument('--points', nargs='+', choices=list(POINTS), default=list(POINTS))
    add_run_arguments(parser)
    return parser.parse_args()


def switches(weight: float, bandwidth: float) -> List[str]:
    return ['--attention', '--contextual-weight', str(weight),
            '--contextual-bandwidth', str(bandwidth)]


def final_validation(directory: Path) -> Tuple[int, float]:
    """Return (iteration, mask AP) of the run's last validation; (0, nan) before any."""
    curve = validation_curve(directory)
    return max(curve.items()) if curve else (0, float('nan'))


def rows(out: Path) -> List[dict]:
    """One row per finished point, plus the centre (mean ± std over the ``both`` seeds)."""
    centre = [final_validation(run_dir(out, 'both', seed))[1] for seed in CENTRE_SEEDS
              if (run_dir(out, 'both', seed) / 'model.safetensors').is_file()]
    table = [{'name': 'centre (both)', 'weight': CONTEXT_WEIGHT, 'bandwidth': BANDWIDTH,
              'seeds': CENTRE_SEEDS[:len(centre)], 'mask_AP': centre}] if centre else []
    for name, (weight, bandwidth) in POINTS.items():
        directory = out / 'sweep' / f'{name}_s0'
        if (directory / 'model.safetensors').is_file():
            table.append({'name': name, 'weight': weight, 'bandwidth': bandwidth, 'seeds': (0,),
                          'mask_AP': [final_validation(directory)[1]]})
    return table


def markdown(table: List[dict]) -> str:
    lines = ['| point | contextual weight | bandwidth h | seeds | validation mask AP | '
             'minus centre mean, in centre std |', '|' + ' --- |' * 6]
    centre = table[0]['mask_AP'] if table and table[0]['name'].startswith('centre') else []
    mean = np.mean(centre) if centre else float('nan')
    std = np.std(centre, ddof=1) if len(centre) > 1 else float('nan')
    for row in table:
        values = row['mask_AP']
        cell = (f'{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} '
                f'({", ".join(f"{value:.3f}" for value in values)})' if len(values) > 1
                else f'{values[0]:.3f}')
        gap = '-' if row is table[0] else f'{(values[0] - mean) / std:+.1f}'
        lines.append(f'| {row["name"]} | {row["weight"]} | {row["bandwidth"]} | '
                     f'{", ".join(map(str, row["seeds"]))} | {cell} | {gap} |')
    return '\n'.join(lines)


def plot(table: List[dict], path: Path) -> None:
    """Plot the validation mask AP against the weight (left) and the bandwidth (right)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, key, label in ((axes[0], 'weight', 'contextual weight (h = 0.1)'),
                             (axes[1], 'bandwidth', f'bandwidth h (weight {CONTEXT_WEIGHT})')):
        other = 'bandwidth' if key == 'weight' else 'weight'
        centre = table[0]
        points = [row for row in table if row[other] == centre[other]]
        points.sort(key=lambda row: row[key])
        axis.plot([row[key] for row in points], [np.mean(row['mask_AP']) for row in points],
                  marker='o')
        axis.errorbar([centre[key]], [np.mean(centre['mask_AP'])],
                      yerr=[np.std(centre['mask_AP'], ddof=1)], fmt='s', capsize=4,
                      label=f'centre: mean ± std of {len(centre["mask_AP"])} seeds')
        axis.scatter([centre[key]] * len(centre['mask_AP']), centre['mask_AP'], s=10,
                     color='black', zorder=3)
        axis.set(xscale='log', xlabel=label, title=f'sweep of the {key}')
        axis.set_xticks([row[key] for row in points], [f'{row[key]:g}' for row in points])
        axis.minorticks_off()
        axis.grid(alpha=0.3)
    axes[0].set_ylabel('validation mask AP (99 images)')
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> int:
    args = parse_args()
    sets = make_sets(args.out)
    if not args.report_only:
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            list(pool.map(lambda name: train(args, sets, args.out / 'sweep' / f'{name}_s0',
                                             switches(*POINTS[name]), 0), args.points))
    table = rows(args.out)
    text = markdown(table)
    print(text)
    if not args.no_readme and table:
        plot(table, PLOT)
        write_readme(f'{text}\n\n![contextual sweep]({PLOT.name})', BEGIN, END)
        print(f'wrote {README} and {PLOT}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
