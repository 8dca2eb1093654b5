"""Entry point of the ``yolact`` command; each subcommand lives in its own module."""

import argparse
import importlib
import logging
import sys
from typing import List, Optional

from yolact_ros.cli import CommandError

# Each module has register(subparsers) and run(args) -> int; imported lazily so that
# `yolact --help` stays fast and a subcommand's optional dependencies load only when used.
SUBCOMMANDS = ('predict', 'weights', 'synth', 'train', 'eval', 'demo', 'bag', 'export')


def build_parser() -> argparse.ArgumentParser:
    """Build the ``yolact`` parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog='yolact', description='YOLACT instance segmentation: predict, train, evaluate.')
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    subparsers = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f'yolact_ros.cli.{name}')
        except ModuleNotFoundError as error:
            if error.name == f'yolact_ros.cli.{name}':
                continue  # subcommand not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the ``yolact`` command and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    try:
        return int(args.func(args) or 0)
    except CommandError as error:
        print(f'yolact {args.command}: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'yolact {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
