"""Evaluation, table and curves of ``ablation.py`` (importable on its own for other reports).

Each trained network is evaluated once per held-out set (cached in its run directory as
``heldout.json``, redone when the weights are newer); the report groups runs by variant.
"""

import contextlib
import copy
import io
import json
from pathlib import Path
import re
from typing import Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
README = REPO / 'training' / 'README.md'
PLOT = REPO / 'training' / 'ablation.png'
BEGIN, END = '<!-- ablation:begin -->', '<!-- ablation:end -->'
OCCLUDED_BELOW = 0.6  # visible fraction: "more than 40 % occluded"
CACHE = 'heldout.json'
COLUMNS = (('square', 'mask_AP', 'square mask AP'), ('square', 'box_AP', 'square box AP'),
           ('640x480', 'mask_AP', '640x480 mask AP'), ('640x360', 'mask_AP', '640x360 mask AP'),
           ('occluded', 'mask_AP', 'high-occlusion mask AP'),
           ('occluded', 'occluded_mask_AP', '>40 % occluded mask AP'))


def occluded_ap(result, coco) -> float:
    """Mask AP on the ground truths more than 40 % occluded; the others are ignore regions.

    A detection of a less occluded object matches its (crowd-flagged) region and is neither a
    true nor a false positive, so the figure is about the occluded objects only.
    """
    from yolact_ros.evaluation.coco_eval import evaluate_results

    occluded = copy.deepcopy(coco)
    for annotation in occluded.dataset['annotations']:
        if annotation['visible_fraction'] >= OCCLUDED_BELOW:
            annotation['iscrowd'] = 1
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        occluded.createIndex()
    return evaluate_results(result.results, occluded, image_ids=result.image_ids).mask['AP']


def evaluate_weights(weights: Path, sets: Dict[str, Path], cache: Path) -> Dict[str, dict]:
    """Mask and box AP (score threshold 0, as ``yolact eval``) and speed on each held-out set."""
    if cache.is_file() and cache.stat().st_mtime > weights.stat().st_mtime:
        return json.loads(cache.read_text())
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.data import CocoDataset, resolve_dataset
    from yolact_ros.evaluation import evaluate_segmenter
    from yolact_ros.inference import Segmenter

    segmenter = Segmenter.from_weights(weights, device='cpu',
                                       postprocess=PostprocessConfig(score_threshold=0.0))
    metrics = {}
    for name, path in sets.items():
        dataset = CocoDataset.from_spec(resolve_dataset(path, 'val'), input_size=32)
        result = evaluate_segmenter(segmenter, dataset)
        metrics[name] = {'mask_AP': result.mask['AP'], 'mask_AP50': result.mask['AP50'],
                         'box_AP': result.box['AP'],
                         'images_per_second': result.timing.images_per_second}
        if name == 'occluded':
            metrics[name]['occluded_mask_AP'] = occluded_ap(result, dataset.coco)
            metrics[name]['occluded_instances'] = sum(
                1 for a in dataset.coco.dataset['annotations']
                if a['visible_fraction'] < OCCLUDED_BELOW)
        print(f'{weights}: {name} mask AP {result.mask["AP"]:.3f}', flush=True)
    cache.write_text(json.dumps(metrics, indent=1))
    return metrics


def seconds_per_iteration(log: Path) -> Optional[float]:
    """Training seconds per iteration from the run's tqdm lines (resumed sessions summed)."""
    if not log.is_file():
        return None
    text = log.read_text(errors='replace')
    seconds = iterations = 0.0
    # Each session's bar: "i/N [mm:ss<...": its last entry gives its iterations and time.
    for session in re.split(r'INFO yolact_ros\.engine\.trainer: .*training images', text)[1:]:
        marks = re.findall(r'(\d+)/\d+ \[(?:(\d+):)?(\d+):(\d+)<', session)
        if len(marks) >= 2:
            first, last = marks[0], marks[-1]
            elapsed = [int(h or 0) * 3600 + int(m) * 60 + int(s) for _, h, m, s in (first, last)]
            seconds += elapsed[1] - elapsed[0]
            iterations += int(last[0]) - int(first[0])
    return seconds / iterations if iterations else None


def validation_curve(directory: Path) -> Dict[int, float]:
    """Return the validation mask AP by iteration (``val.csv``)."""
    import csv

    path = directory / 'val.csv'
    if not path.is_file():
        return {}
    with open(path, newline='') as stream:
        return {int(row['iteration']): float(row['mask_AP']) for row in csv.DictReader(stream)}


def evaluate_run(directory: Path, sets: Dict[str, Path], variant: str, seed: int) -> dict:
    """Everything the report needs about one finished run."""
    return {'variant': variant, 'seed': seed, 'directory': str(directory),
            'heldout': evaluate_weights(directory / 'model.safetensors', sets,
                                        directory / CACHE),
            'seconds_per_iteration': seconds_per_iteration(directory / 'train.log'),
            'validation': validation_curve(directory)}


def interleaved_ms(weights: Dict[str, Path], repeats: int = 30) -> Dict[str, float]:
    """Return the median ms per 640x480 frame of each network, timed in turns on one frame.

    In turns, every network sees the same load of a shared machine.
    """
    import time

    from yolact_ros.data.synthetic import random_scene
    from yolact_ros.inference import Segmenter

    frame = random_scene(np.random.default_rng(0), 480, 640).image
    segmenters = {name: Segmenter.from_weights(path, device='cpu')
                  for name, path in weights.items()}
    times: Dict[str, List[float]] = {name: [] for name in weights}
    for _ in range(repeats + 2):  # the first two turns warm up
        for name, segmenter in segmenters.items():
            start = time.perf_counter()
            segmenter(frame)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(values[2:])) for name, values in times.items()}


def _cell(values: List[float]) -> str:
    if len(values) == 1:
        return f'{values[0]:.3f}'
    return f'{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}'


def table(results: List[dict], reference: Optional[dict] = None) -> str:
    """Markdown: one row per variant, mean ± sample std over seeds (n in the row)."""
    header = ['variant', 'seeds', *(label for _, _, label in COLUMNS), 's / iteration',
              'ms / 640x480 frame']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    rows = {}
    for result in results:
        rows.setdefault(result['variant'], []).append(result)
    if reference is not None:
        rows[f'reference: {reference["name"]}'] = [reference]
    for variant, runs in rows.items():
        cells = [_cell([run['heldout'][name][metric] for run in runs])
                 for name, metric, _ in COLUMNS]
        times = [run['seconds_per_iteration'] for run in runs if run.get('seconds_per_iteration')]
        speed = [run['ms_per_frame'] for run in runs if run.get('ms_per_frame')]
        seeds = ', '.join(str(run['seed']) for run in runs) if 'seed' in runs[0] else '-'
        cells += [f'{np.mean(times):.2f}' if times else '-',
                  f'{np.mean(speed):.1f}' if speed else '-']
        lines.append(f'| {variant} | {seeds} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(results: List[dict], path: Path) -> None:
    """Plot the validation curves (left) and each held-out metric per run (right)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(r['variant'] for r in results))  # the table's order
    colours = dict(zip(variants, ('#1f77b4', '#d62728', '#2ca02c', '#9467bd')))
    figure, (curves, bars) = plt.subplots(1, 2, figsize=(14, 4.5),
                                          gridspec_kw={'width_ratios': [1, 1.6]})
    for result in results:
        points = sorted(result['validation'].items())
        if points:
            curves.plot(*zip(*points), marker='o', color=colours[result['variant']], alpha=0.8,
                        label=f'{result["variant"]} seed {result["seed"]}')
    curves.set(xlabel='iteration', ylabel='validation mask AP', title='validation (99 images)')
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7)
    width = 0.8 / max(1, len(variants))
    for index, variant in enumerate(variants):
        runs = [r for r in results if r['variant'] == variant]
        for column, (name, metric, _) in enumerate(COLUMNS):
            values = [run['heldout'][name][metric] for run in runs]
            x = column + (index - (len(variants) - 1) / 2) * width
            bars.bar(x, np.mean(values), width, color=colours[variant],
                     label=variant if column == 0 else None, alpha=0.6)
            bars.scatter([x] * len(values), values, color='black', s=10, zorder=3)
    bars.set_xticks(range(len(COLUMNS)), [label for _, _, label in COLUMNS], rotation=15,
                    fontsize=8)
    bars.set(ylabel='AP', title='held-out sets (bars: mean over seeds; dots: seeds)')
    bars.grid(axis='y', alpha=0.3)
    bars.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_readme(section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between the markers ``begin`` and ``end`` of training/README.md."""
    text = README.read_text(encoding='utf-8')
    if begin not in text or end not in text:
        raise SystemExit(f'{README} lacks the markers {begin} ... {end}')
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f'{head}{begin}\n{section}\n{end}{tail}', encoding='utf-8')


def report(results: List[dict], out: Path, *, readme: bool, settings: dict,
           reference: Optional[dict] = None) -> str:
    """Print the table; save ``results.json`` and, unless told not to, the README section."""
    (out / 'results.json').write_text(json.dumps(
        {'settings': settings, 'runs': results, 'reference': reference}, indent=1))
    markdown = table(results, reference)
    print(markdown)
    if readme and results:
        plot(results, PLOT)
        write_readme_section(markdown, settings)
        print(f'wrote {README} and {PLOT}')
    return markdown


def write_readme_section(markdown: str, settings: dict) -> None:
    write_readme(f'Recipe of every run: `yolact train {settings["recipe"]}` plus the variant\'s '
                 f'switches (contextual weight {settings["context_weight"]}); '
                 f'{settings["threads"]} torch thread(s) per run on `{settings["device"]}`. '
                 'Mean ± sample standard deviation over the seeds listed.\n\n'
                 f'{markdown}\n\n![ablation](ablation.png)')
