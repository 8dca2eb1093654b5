"""Training input size: the shipped recipe trained at 192 px against 160, on the validation split.

At 160 px a letterboxed 4:3 frame fills 160x120 of the input and a 16:9 frame 160x90, so camera
frames give each object fewer pixels than squares do, and their mask AP lags (training/README.md
#input-size). Running the 160 px model at 192 helps camera frames but makes squares'
objects larger than any it was trained on; this trains the recipe at 192 instead. Candidates: the
ablation's ``both`` recipe (attention, contextual weight 0.1, seed 0) and the sweep's weight 0.3,
each at 160 (runs already made by ``ablation.py`` and ``contextual_sweep.py``) and at 192 (trained
here). Each is scored on the validation split (99 images, a third each square, 4:3 and 16:9), by
frame shape; the best overall validation mask AP is the one to ship. No held-out set is looked at.

usage:
  python benchmarks/training_size.py --parallel 2 --threads 1   # ~71 min a 192 px run a core
  python benchmarks/training_size.py --report-only              # table of the finished runs
"""

import argparse
from concurrent.futures import ThreadPoolExecutor
import json
from pathlib import Path
import sys
from typing import Dict, List

from ablation import add_run_arguments, make_sets, run_dir, train
from ablation_report import interleaved_ms, write_readme
from input_size import mask_ap_by_frame_shape

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = '<!-- training-size:begin -->', '<!-- training-size:end -->'
TRAINED_HERE = {'s192_w0.1': (192, 0.1), 's192_w0.3': (192, 0.3)}  # name: (input size, weight)
SHAPES = {'256x256': 'square', '320x240': '4:3', '384x216': '16:9'}  # validation frames
CACHE = 'validation_by_shape.json'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=REPO / 'runs' / 'ablation',
                        help="the ablation's folder (data, 160 px runs); runs go in OUT/sweep")
    add_run_arguments(parser)
    return parser.parse_args()


def candidates(out: Path) -> Dict[str, dict]:
    """Name -> run folder, training input size and contextual weight (seed 0 each)."""
    runs = {'160, weight 0.1': (run_dir(out, 'both', 0), 160, 0.1),
            '160, weight 0.3': (out / 'sweep' / 'w0.3_s0', 160, 0.3)}
    runs.update({f'{size}, weight {weight}': (out / 'sweep' / f'{name}_s0', size, weight)
                 for name, (size, weight) in TRAINED_HERE.items()})
    return {name: {'directory': directory, 'input_size': size, 'weight': weight}
            for name, (directory, size, weight) in runs.items()}


def validation_by_shape(weights: Path, data: Path) -> Dict[str, float]:
    """Mask AP on the whole validation split and on each frame shape; box AP on the whole."""
    cache = weights.parent / CACHE
    if cache.is_file() and cache.stat().st_mtime > weights.stat().st_mtime:
        return json.loads(cache.read_text())
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.data import CocoDataset, resolve_dataset
    from yolact_ros.evaluation import evaluate_segmenter
    from yolact_ros.inference import Segmenter

    segmenter = Segmenter.from_weights(weights, device='cpu',
                                       postprocess=PostprocessConfig(score_threshold=0.0))
    dataset = CocoDataset.from_spec(resolve_dataset(data, 'val'), input_size=32)
    result = evaluate_segmenter(segmenter, dataset)
    by_shape = mask_ap_by_frame_shape(result, dataset.coco)
    scores = {'all': result.mask['AP'], 'box_all': result.box['AP'],
              **{name: by_shape[shape] for shape, name in SHAPES.items()}}
    cache.write_text(json.dumps(scores, indent=1))
    return scores


def markdown(table: Dict[str, dict]) -> str:
    lines = ['| training input size, contextual weight | validation mask AP | squares | 4:3 | '
             '16:9 | box AP | ms per 640x480 frame |', '|' + ' --- |' * 7]
    for name, row in table.items():
        scores = row['scores']
        lines.append(f'| {name} | {scores["all"]:.3f} | {scores["square"]:.3f} | '
                     f'{scores["4:3"]:.3f} | {scores["16:9"]:.3f} | {scores["box_all"]:.3f} | '
                     f'{row["ms"]:.1f} |')
    best = max(table, key=lambda name: table[name]['scores']['all'])
    lines.append(f'\nBest validation mask AP: {best}.')
    return '\n'.join(lines)


def main() -> int:
    args = parse_args()
    sets = make_sets(args.out)
    runs = candidates(args.out)
    if not args.report_only:
        todo: List[str] = [f'{size}, weight {weight}' for size, weight in TRAINED_HERE.values()]
        switches = {name: ['--attention', '--contextual-weight', str(runs[name]['weight']),
                           '--input-size', str(runs[name]['input_size'])] for name in todo}
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            list(pool.map(lambda name: train(args, sets, runs[name]['directory'],
                                             switches[name], 0), todo))
    finished = {name: run for name, run in runs.items()
                if (run['directory'] / 'model.safetensors').is_file()}
    if not finished:
        print('no finished run yet')
        return 0
    milliseconds = interleaved_ms({name: run['directory'] / 'model.safetensors'
                                   for name, run in finished.items()})
    table = {name: {'scores': validation_by_shape(run['directory'] / 'model.safetensors',
                                                  sets['val']), 'ms': milliseconds[name]}
             for name, run in finished.items()}
    text = markdown(table)
    print(text)
    if not args.no_readme:
        write_readme(text, BEGIN, END)
        print(f'wrote {REPO / "training" / "README.md"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
