"""``yolact weights``: list the official checkpoints and download them."""

import argparse

from yolact_ros.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``weights list`` and ``weights download NAME``."""
    parser = subparsers.add_parser('weights', help='list or download official checkpoints')
    actions = parser.add_subparsers(dest='action', required=True)
    actions.add_parser('list', help='print the official checkpoints')
    download = actions.add_parser('download', help='fetch a checkpoint into the cache')
    download.add_argument('name', help='checkpoint name or file name (see `yolact weights list`)')
    download.add_argument('--dir', help='download folder (default: the cache)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """List or download."""
    from yolact_ros.weights import cache_dir, download, official_weights, WeightsError

    try:
        if args.action == 'list':
            print(f'{"name":22} {"config":22} {"input":>5} {"mask AP":>7}  url')
            for entry in official_weights():
                print(f'{entry["name"]:22} {entry["config"]:22} {entry["input_size"]:>5} '
                      f'{entry["mask_ap"]:>7}  {entry["url"]}')
            print(f'cache: {cache_dir()}')
            return 0
        print(download(args.name, destination=args.dir))
        return 0
    except WeightsError as error:
        raise CommandError(str(error)) from None
