"""``yolact weights``: list, download official checkpoints, set a model's input size."""

import argparse
from typing import Dict, List

from yolact_ros.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``weights list``, ``weights download NAME`` and ``weights resize FILE``."""
    parser = subparsers.add_parser(
        'weights', help="list or download official checkpoints; set a model's input size")
    actions = parser.add_subparsers(dest='action', required=True)
    actions.add_parser('list', help='print the bundled model and the official checkpoints: '
                       'mask AP, latency measured by this project, URL')
    download = actions.add_parser('download', help='fetch a checkpoint into the cache')
    download.add_argument('name', help='checkpoint name or file name (see `yolact weights list`)')
    download.add_argument('--dir', help='download folder (default: the cache)')
    resize = actions.add_parser(
        'resize', help='copy a project .safetensors model, set to run at another input size')
    resize.add_argument('file', help='project .safetensors weights')
    resize.add_argument('--input-size', type=int, required=True, metavar='S',
                        help='network input side for inference, a multiple of 32 (the '
                             'tensors are unchanged)')
    resize.add_argument('--output', required=True, help='the copy to write (.safetensors)')
    parser.set_defaults(func=run)


def format_table(bundled: Dict, official: List[Dict]) -> List[str]:
    """Return the lines of ``yolact weights list``: the bundled model first, then footnotes."""
    machines: List[str] = []
    rows = []
    for entry in [bundled] + official:
        latency = '-'
        if entry.get('latency'):
            first = entry['latency'][0]
            if first['on'] not in machines:
                machines.append(first['on'])
            latency = f'{first["ms"]:g} ms [{machines.index(first["on"]) + 1}]'
        where = (f'{entry["path"]} (bundled, the default)' if entry is bundled
                 else entry['url'])
        mask_ap = f'{entry["mask_ap"]}' + ('*' if entry is bundled else ' ')
        rows.append(f'{entry["name"]:22} {entry["config"]:22} {entry["input_size"]:>5} '
                    f'{mask_ap:>8}  {latency:13} {where}')
    lines = [f'{"name":22} {"config":22} {"input":>5} {"mask AP":>8}  {"latency":13} weights']
    lines += rows
    lines.append('mask AP: COCO test-dev mask mAP published by upstream; '
                 f'* {bundled["mask_ap_on"]}')
    lines.append('latency: end to end per frame (preprocess, network, NMS, masks), measured by '
                 'this project on:')
    lines += [f'  [{index}] {machine}' for index, machine in enumerate(machines, 1)]
    return lines


def run(args: argparse.Namespace) -> int:
    """List, download or resize."""
    from yolact_ros.checkpoint import CheckpointError, with_input_size
    from yolact_ros.weights import (
        bundled_entry, cache_dir, download, official_weights, WeightsError)

    try:
        if args.action == 'resize':
            print(with_input_size(args.file, args.input_size, args.output))
            return 0
        if args.action == 'list':
            for line in format_table(bundled_entry(), official_weights()):
                print(line)
            print(f'downloads go to: {cache_dir()} (`yolact weights download NAME`)')
            return 0
        print(download(args.name, destination=args.dir))
        return 0
    except (CheckpointError, WeightsError) as error:
        raise CommandError(str(error)) from None
