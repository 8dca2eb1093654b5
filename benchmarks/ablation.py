"""Ablation: does the modified YOLACT help? Plain vs +attention vs +contextual vs both, with seeds.

Every run is the demo model's recipe (training/README.md: ResNet-18 at 160 px from random
weights, 3000 iterations, letterboxed camera-shaped synthetic scenes); only the switch under
test and the seed differ. Each network is evaluated on held-out sets that chose nothing: square
256 px scenes (low occlusion), 640x480 and 640x360 camera frames, and square scenes with heavy
occlusion, where the AP of the instances more than 40 % occluded is also computed (the other
instances become ignore regions, as COCO's crowds). Validation mask AP during training (the
curves) shows whether the schedule has plateaued.

Runs resume: a stopped run (Ctrl-C, a closed session) continues from its last checkpoint the
next time; finished runs and evaluations are kept. Runs in parallel share the CPU: use one thread
each (``--threads 1``) and as many at once as cores.

usage:
  # everything: data, the runs, evaluation, table + curves into training/ (~1 h per run per core)
  python benchmarks/ablation.py --parallel 2
  # some runs only (VARIANT:SEED), e.g. on another machine sharing runs/ablation
  python benchmarks/ablation.py --runs both:1 baseline:1 --no-readme
  # the table and curves from the runs finished so far, with a reference row: the previous
  # demo model (plain, square-trained), from git history
  git show 11db791:weights/yolact_resnet18_synth.safetensors > runs/previous_demo.safetensors
  python benchmarks/ablation.py --report-only --reference runs/previous_demo.safetensors
"""

import argparse
from concurrent.futures import ThreadPoolExecutor
import os
from pathlib import Path
import re
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

from ablation_report import evaluate_run, evaluate_weights, interleaved_ms, report

REPO = Path(__file__).resolve().parents[1]
CONTEXT_WEIGHT = 0.1
VARIANTS = {
    'baseline': ['--contextual-weight', '0'],
    'attention': ['--attention', '--contextual-weight', '0'],
    'contextual': ['--contextual-weight', str(CONTEXT_WEIGHT)],
    'both': ['--attention', '--contextual-weight', str(CONTEXT_WEIGHT)],
}
DEFAULT_RUNS = ('baseline:0', 'both:0', 'baseline:1', 'both:1', 'baseline:2', 'both:2',
                'attention:0', 'contextual:0')
# The demo recipe (training/README.md), for every run.
RECIPE = ['--config', 'yolact_resnet18', '--init', 'none', '--input-size', '160',
          '--augment', 'light', '--lr', '8e-3', '--clip-grad', '10', '--letterbox',
          '--lr-steps', '0.7', '0.9', '--iterations', '3000', '--batch-size', '8',
          '--val-every', '500', '--val-max-images', '100', '--checkpoint-every', '500',
          '--workers', '1']
CAMERA_SIZES = ['256', '320x240', '384x216']  # square, 4:3, 16:9
DATA = {  # name: (images, sizes, seed, occlusion); training and validation sets
    'train': (4000, CAMERA_SIZES, 10, 'low'),
    'val': (99, CAMERA_SIZES, 1, 'low'),
}
HELDOUT = {  # never used to choose anything
    'square': (200, ['256'], 2, 'low'),
    '640x480': (200, ['640x480'], 2, 'low'),
    '640x360': (200, ['640x360'], 2, 'low'),
    'occluded': (200, ['256'], 3, 'high'),
}


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every study script shares: how to run the training, whether to report."""
    parser.add_argument('--parallel', type=int, default=1, help='training runs at once')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: the report from the finished runs')
    parser.add_argument('--no-readme', action='store_true',
                        help='print the table only; do not write training/README.md and plots')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=REPO / 'runs' / 'ablation')
    parser.add_argument('--runs', nargs='+', default=list(DEFAULT_RUNS), metavar='VARIANT:SEED',
                        help=f'runs to train and evaluate; variants: {", ".join(VARIANTS)}')
    parser.add_argument('--reference', type=Path, metavar='WEIGHTS',
                        help='also evaluate these weights on the held-out sets (a table row)')
    add_run_arguments(parser)
    args = parser.parse_args()
    runs = []
    for text in args.runs:
        variant, _, seed = text.partition(':')
        if variant not in VARIANTS or not seed.isdigit():
            parser.error(f'--runs: expected VARIANT:SEED with VARIANT one of '
                         f'{", ".join(VARIANTS)}, got {text!r}')
        runs.append((variant, int(seed)))
    args.runs = runs
    return args


def make_sets(out: Path) -> Dict[str, Path]:
    """Write (once) the training, validation and held-out sets with ``yolact synth``."""
    paths = {}
    for name, (images, sizes, seed, occlusion) in {**DATA, **HELDOUT}.items():
        path = out / 'data' / name
        if not (path / 'dataset.yaml').is_file():
            subprocess.run([sys.executable, '-m', 'yolact_ros.cli.main', 'synth', '--out',
                            str(path), '--images', str(images), '--size', *sizes, '--seed',
                            str(seed), '--occlusion', occlusion, '--overwrite'], check=True)
        paths[name] = path
    return paths


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / 'runs' / f'{variant}_s{seed}'


def latest_checkpoint(directory: Path) -> Optional[Path]:
    checkpoints = sorted((directory / 'checkpoints').glob('*.pt'),
                         key=lambda path: int(re.findall(r'\d+', path.stem)[-1]))
    return checkpoints[-1] if checkpoints else None


def train(args: argparse.Namespace, sets: Dict[str, Path], directory: Path,
          switches: List[str], seed: int) -> Path:
    """Train one run of the recipe plus ``switches`` to the end (resuming it); return its weights.

    ``args`` gives ``device`` and ``threads``.
    """
    label = f'{directory.name} (seed {seed})'
    weights = directory / 'model.safetensors'
    if weights.is_file():
        return weights
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = latest_checkpoint(directory)
    command = [sys.executable, '-m', 'yolact_ros.cli.main', 'train']
    if checkpoint is not None:
        command += ['--resume', str(checkpoint)]
    else:
        command += [*RECIPE, '--data', str(sets['train']), '--val-data', str(sets['val']),
                    '--seed', str(seed), '--device', args.device, '--out', str(directory),
                    *switches]
    environment = {**os.environ, 'OMP_NUM_THREADS': str(args.threads)}
    print(f'{label}: {"resuming " + checkpoint.name if checkpoint else "started"}'
          f' (log: {directory / "train.log"})', flush=True)
    with open(directory / 'train.log', 'a') as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    if code != 0 or not weights.is_file():
        raise RuntimeError(f'{label} stopped ({code}); see {directory}/train.log')
    print(f'{label}: trained', flush=True)
    return weights


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = make_sets(args.out)
    if not args.report_only:
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            list(pool.map(lambda run: train(args, sets, run_dir(args.out, *run),
                                            VARIANTS[run[0]], run[1]), args.runs))
    finished: List[Tuple[str, int, Path]] = [
        (variant, seed, run_dir(args.out, variant, seed)) for variant in VARIANTS
        for seed in range(100)
        if (run_dir(args.out, variant, seed) / 'model.safetensors').is_file()]
    heldout = {name: sets[name] for name in HELDOUT}
    results = [evaluate_run(directory, heldout, variant, seed)
               for variant, seed, directory in finished]
    # Inference time: one network per variant (the weights differ, the work does not) and the
    # reference, timed in turns.
    timed = {result['variant']: Path(result['directory']) / 'model.safetensors'
             for result in results}
    reference = None
    if args.reference is not None:  # e.g. the model users ran before, on the same sets
        reference = {'name': args.reference.name, 'heldout': evaluate_weights(
            args.reference, heldout, args.out / f'{args.reference.stem}_heldout.json')}
        timed['reference'] = args.reference
    milliseconds = interleaved_ms(timed)
    for result in results:
        result['ms_per_frame'] = milliseconds[result['variant']]
    if reference is not None:
        reference['ms_per_frame'] = milliseconds['reference']
    report(results, args.out, readme=not args.no_readme, reference=reference,
           settings={'recipe': ' '.join(RECIPE), 'context_weight': CONTEXT_WEIGHT,
                     'data': DATA, 'heldout': HELDOUT, 'threads': args.threads,
                     'device': args.device})
    return 0


if __name__ == '__main__':
    sys.exit(main())
