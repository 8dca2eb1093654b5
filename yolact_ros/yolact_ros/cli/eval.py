"""``yolact eval``: COCO box and mask AP of a model, or of an existing results file."""

import argparse
import json
from pathlib import Path
import sys

from yolact_ros.cli import CommandError
from yolact_ros.cli.common import add_model_arguments, build_segmenter, resolve_weights

DESCRIPTION = '''\
Evaluate with pycocotools COCOeval (bbox and segm) and print AP, AP50, AP75 and AP for small,
medium and large objects, plus a per-class table. Writes DIR/results.json (COCO results, as
`yolact predict` writes them), DIR/metrics.json and DIR/pr_curves.png.

Without --weights or --results, evaluates the bundled demo model (synthetic shapes).
With --results FILE, evaluates an existing COCO results file instead of running a model. Results
that carry a file_name (as `yolact predict`'s predictions.json, whose image_id counts the images
it read from 0) are matched to the dataset's images by file name; otherwise their image_id must be
the dataset's.

examples:
  # the bundled demo model on 20 held-out synthetic images
  yolact synth --out /tmp/synth_val --images 20 --seed 1
  yolact eval --data /tmp/synth_val
  # the same numbers from `yolact predict`'s JSON (written to ./predictions)
  yolact predict /tmp/synth_val/images --score-threshold 0
  yolact eval --results predictions/predictions.json --data /tmp/synth_val
'''


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        'eval', help='COCO box and mask AP of a model or a results file',
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', required=True,
                        help='dataset YAML, directory holding dataset.yaml, or coco2017')
    parser.add_argument('--split', default='val',
                        help='split of a dataset with splits (default val)')
    parser.add_argument('--results', type=Path, metavar='FILE',
                        help='evaluate this COCO results JSON instead of running --weights')
    # Upstream's mAP settings: NMS candidates above 0.05, no final threshold (mAP integrates
    # over every score, so a higher one only lowers it).
    add_model_arguments(parser, score_threshold=0.0)
    parser.add_argument('--max-images', type=int, default=None, metavar='N',
                        help='evaluate the first N images only')
    parser.add_argument('--output', type=Path, default=Path('evaluation'), metavar='DIR',
                        help='folder for results.json, metrics.json, pr_curves.png '
                             '(default ./evaluation)')
    parser.add_argument('--benchmark', action='store_true',
                        help='warm up first and report images/s and per-stage milliseconds')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the tables and write the files; return the exit code."""
    from yolact_ros.evaluation import format_metrics, format_per_class_table, plot_pr_curves

    if args.weights is not None and args.results is not None:
        raise CommandError('give one of --weights (run a model) and --results (evaluate a '
                           'results file), not both')
    if args.max_images is not None and args.max_images < 1:
        raise CommandError(f'--max-images must be >= 1, got {args.max_images}')
    if args.results is not None and args.benchmark:
        raise CommandError('--benchmark needs --weights: there is no model to time')
    spec = _resolve(args.data, args.split)
    if args.results is not None:
        result, source = _evaluate_file(args, spec), str(args.results)
    else:
        weights = resolve_weights(args.weights)
        result, source = _evaluate_model(args, spec, weights), str(weights)

    args.output.mkdir(parents=True, exist_ok=True)
    written = []
    if args.results is None:
        written.append(_write_json(args.output / 'results.json', result.results))
    written.append(_write_json(args.output / 'metrics.json',
                               dict(result.to_dict(), source=source, data=spec.name)))
    written.append(plot_pr_curves(result, args.output / 'pr_curves.png',
                                  title=f'{Path(source).name} on {spec.name}'))
    thresholds = ''
    if args.results is None:
        candidate = 0.05 if args.candidate_threshold is None else args.candidate_threshold
        thresholds = (f' (NMS candidates > {candidate:g}, final score > '
                      f'{args.score_threshold:g}; upstream mAP uses 0.05 and 0)')
    print(f'{spec.name}: {len(result.image_ids)} images, {len(result.results)} detections '
          f'from {source}{thresholds}')
    print(format_metrics(result))
    print()
    print(format_per_class_table(result))
    if args.benchmark:
        timing = result.timing
        print(f'\nspeed: {timing.images_per_second:.2f} images/s (Segmenter: preprocess '
              f'{timing.preprocess_ms:.1f} ms, inference {timing.inference_ms:.1f} ms, '
              f'postprocess {timing.postprocess_ms:.1f} ms per image), '
              f'{timing.end_to_end_images_per_second:.2f} images/s with image reading and '
              'encoding')
    print('\nwrote ' + ', '.join(str(path) for path in written))
    return 0


def _resolve(data: str, split: str):
    from yolact_ros.data.spec import resolve_dataset

    try:
        return resolve_dataset(data, split=split)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None


def _load_dataset(spec, *, input_size: int, check_files: bool):
    from yolact_ros.data.coco import CocoDataset

    try:
        return CocoDataset.from_spec(spec, input_size=input_size, check_files=check_files)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None


def _evaluate_model(args: argparse.Namespace, spec, weights: Path):
    from yolact_ros.evaluation import evaluate_segmenter

    # The annotations first: a dataset that does not parse fails before the model loads. The
    # Segmenter preprocesses the images itself, so the dataset's input size is not used.
    dataset = _load_dataset(spec, input_size=32, check_files=True)
    segmenter = build_segmenter(args, weights)
    if args.benchmark:  # first calls are slow (allocation, cuDNN autotuning)
        for _ in range(2):
            segmenter(dataset.load_image(0))
    try:
        return evaluate_segmenter(segmenter, dataset, max_images=args.max_images,
                                  progress=sys.stderr.isatty())
    except (OSError, ValueError) as error:
        raise CommandError(f'{weights} on {spec.name}: {error}') from None


def _evaluate_file(args: argparse.Namespace, spec):
    from yolact_ros.evaluation import evaluate_results, match_image_ids

    path = args.results
    if not path.is_file():
        raise CommandError(f'results file not found: {path}')
    try:
        with open(path, 'rb') as stream:
            results = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CommandError(f'{path}: not a readable JSON file: {error}') from None
    if not isinstance(results, list):
        raise CommandError(f'{path}: expected a JSON list of COCO results, got '
                           f'{type(results).__name__}')
    # Only the annotations are read: the input size is not used and image files need not exist.
    dataset = _load_dataset(spec, input_size=32, check_files=False)
    image_ids = dataset.image_ids[:args.max_images]
    try:
        results, remapped = match_image_ids(results, dataset.coco)
        if remapped:
            print(f'{path}: image ids taken from the dataset by file_name', file=sys.stderr)
        return evaluate_results(results, dataset.coco, image_ids=image_ids)
    except ValueError as error:
        raise CommandError(f'{path}: {error}') from None


def _write_json(path: Path, value: object) -> Path:
    with open(path, 'w', encoding='utf-8') as stream:
        json.dump(value, stream)
    return path
