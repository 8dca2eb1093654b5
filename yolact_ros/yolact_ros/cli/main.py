"""Entry point of the ``yolact`` command; each subcommand lives in its own module."""

import argparse
import importlib
import logging
import re
import sys
import traceback
from typing import List, Optional

from yolact_ros.cli import CommandError

# Each module has register(subparsers) and run(args) -> int; imported lazily so that
# `yolact --help` stays fast and a subcommand's optional dependencies load only when used.
SUBCOMMANDS = ('predict', 'weights', 'synth', 'train', 'eval', 'demo', 'bag', 'export')
FALLBACK_VERSION = '0.1.0'  # setup.py's, for a source tree that is not installed


def package_version() -> str:
    """Return the installed distribution's version (package metadata), else setup.py's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version('yolact_ros')
    except PackageNotFoundError:
        return FALLBACK_VERSION


def build_parser() -> argparse.ArgumentParser:
    """Build the ``yolact`` parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog='yolact', description='YOLACT instance segmentation: predict, train, evaluate.')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {package_version()}')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='debug logging, and the traceback of an error')
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


def one_line(message: str) -> str:
    """Join a message's lines into one (an error is one line on stderr)."""
    return re.sub(r'\s*\n\s*', ' ', str(message).strip())


def main(argv: Optional[List[str]] = None) -> int:
    """Run the ``yolact`` command and return its exit code.

    Errors a user can cause (a :class:`CommandError`, or an ``OSError`` such as a full disk or
    a folder that cannot be written) print one line on stderr and return 2; ``--verbose``
    adds the traceback.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    try:
        return int(args.func(args) or 0)
    except (CommandError, OSError) as error:
        if args.verbose:
            error.__suppress_context__ = False  # show the cause that `from None` hid
            traceback.print_exception(type(error), error, error.__traceback__)
        print(f'yolact {args.command}: error: {one_line(error)}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'yolact {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
