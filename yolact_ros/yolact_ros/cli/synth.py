"""``yolact synth``: write a synthetic COCO dataset, or a tracking sequence, of textured shapes."""

import argparse
from pathlib import Path
from typing import Tuple, Union


def image_size(text: str) -> Union[int, Tuple[int, int]]:
    """Parse ``S`` or ``WxH`` (argparse type)."""
    try:
        if 'x' in text:
            width, height = text.split('x')
            return int(width), int(height)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected S or WIDTHxHEIGHT, got {text!r}') from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand."""
    parser = subparsers.add_parser(
        'synth', help='write a synthetic COCO dataset of occluding textured shapes',
        description='Write DIR/images/*.png, DIR/annotations.json (visible masks as RLE, '
                    'category ids 1, 3, ..., 11) and DIR/dataset.yaml. The output is a function '
                    'of the arguments (byte-identical for a seed). With --sequence: a tracking '
                    'sequence of moving shapes instead, DIR/frames/*.png, DIR/gt.json (per frame: '
                    'track ids, boxes, visible masks as RLE) and DIR/gt.txt (MOTChallenge).')
    parser.add_argument('--out', type=Path, required=True, metavar='DIR',
                        help='output directory')
    parser.add_argument('--images', type=int, default=100, metavar='N',
                        help='number of images (default 100)')
    parser.add_argument('--size', type=image_size, nargs='+', default=None, metavar='S|WxH',
                        help='image side in pixels, or WIDTHxHEIGHT; several sizes alternate '
                        '(e.g. 256 320x240 384x216: square, 4:3 and 16:9) (default 384; 256 with '
                        "--sequence, the demo model's training size)")
    parser.add_argument('--seed', type=int, default=0, metavar='K', help='random seed')
    parser.add_argument('--occlusion', choices=('low', 'high'), default='low',
                        help='low: 3-6 shapes, little overlap; high: 6-12 clustered shapes')
    parser.add_argument('--format', dest='image_format', choices=('png', 'jpg'), default='png',
                        help='image files: png (lossless, default) or jpg (smaller)')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into DIR even if it already holds annotations.json')
    parser.add_argument('--sequence', action='store_true',
                        help='write a tracking sequence: shapes moving, crossing, occluding, '
                        'entering and leaving, with ground-truth track ids')
    parser.add_argument('--frames', type=int, default=300, metavar='N',
                        help='frames of the sequence (default 300: 10 s at 30 Hz)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print a summary; return the exit code."""
    import sys

    from yolact_ros.data.synthetic_dataset import generate_dataset

    if args.sequence:
        return run_sequence(args)
    if (args.out / 'annotations.json').exists() and not args.overwrite:
        print(f'error: {args.out} already holds a dataset; pass --overwrite to replace it',
              file=sys.stderr)
        return 2
    try:
        summary = generate_dataset(
            args.out, num_images=args.images, size=args.size or 384, seed=args.seed,
            occlusion=args.occlusion, image_format=args.image_format,
            progress=args.images >= 20 and sys.stderr.isatty())
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    per_class = ', '.join(f'{name} {count}' for name, count in
                          summary.instances_per_class.items())
    print(f'wrote {summary.num_images} images, {summary.num_instances} instances '
          f'({summary.num_instances / summary.num_images:.1f} per image), mean visible fraction '
          f'{summary.mean_visible_fraction:.3f}')
    print(f'per class: {per_class}')
    print(f'dataset spec: {summary.spec_file}')
    return 0


def run_sequence(args: argparse.Namespace) -> int:
    """Write a tracking sequence and print a summary; return the exit code."""
    import sys

    from yolact_ros.data.synthetic_sequence import write_sequence

    if (args.out / 'gt.json').exists() and not args.overwrite:
        print(f'error: {args.out} already holds a sequence; pass --overwrite to replace it',
              file=sys.stderr)
        return 2
    try:
        if args.size and len(args.size) > 1:
            print(f'error: --sequence takes one --size (S or WxH), got {args.size}',
                  file=sys.stderr)
            return 2
        summary = write_sequence(args.out, num_frames=args.frames,
                                 size=args.size[0] if args.size else 256,
                                 seed=args.seed)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'wrote {summary.frames} frames, {summary.tracks} tracks, {summary.boxes} boxes '
          f'({summary.occluded_boxes} less than 90 % visible), at most {summary.max_visible} '
          'objects in a frame')
    print(f'ground truth: {summary.gt_json} and {summary.gt_txt}')
    return 0
