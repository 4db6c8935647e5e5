"""The ``dippas`` command line.

Every subcommand lives in its own module of this package and is found at
start-up. A command module defines::

    NAME = "residual"            # the subcommand
    ORDER = 10                   # position in --help
    HELP = "one-line summary"
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

Modules import heavy dependencies (torch, napari) inside ``run`` only, so
``dippas --help`` stays fast. Bad input raises
:class:`dippas.errors.DippasInputError`; :func:`main` prints it as one line
and returns exit code 2. Warnings raised by dippas itself (e.g. a
non-opaque alpha channel dropped) print as one line,
``dippas COMMAND: warning: <message>``, without Python's file and line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
import warnings
from collections.abc import Iterator, Sequence

from ..batch.tiles import TileError
from ..errors import Cancelled, DippasInputError, one_line


def _command_modules() -> list:
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line, with exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _pixel_count(text: str) -> int:
    """argparse type of --max-pixels: a positive number (``3e8`` allowed)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text}")
    return int(value)


def _ours(category: type, filename: str) -> bool:
    """Whether a warning comes from dippas (its class, or a module of the package)."""
    from ..errors import DippasWarning

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return issubclass(category, DippasWarning) or (
        issubclass(category, UserWarning) and os.path.abspath(filename).startswith(package + os.sep))


@contextlib.contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """Print dippas's own warnings as ``dippas COMMAND: warning: message``, one line each."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not _ours(category, filename):
            return previous(message, category, filename, lineno, file, line)
        text = str(message).strip().splitlines()
        print(f"dippas {command}: warning: {text[0] if text else category.__name__}",
              file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command module."""
    from .. import __version__

    parser = _Parser(
        prog="dippas",
        description="Remove the camera sensor fingerprint (PRNU) from photos, "
        "and test PRNU attribution.",
    )
    parser.add_argument("--version", action="version", version=f"dippas {__version__}")
    parser.add_argument("--max-pixels", type=_pixel_count, default=None, metavar="N",
                        help="refuse images and fingerprints of more than N pixels (default "
                        "$DIPPAS_MAX_PIXELS, else 200e6); also for batch's local workers")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dippas`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_pixels is not None:
        from ..io import MAX_PIXELS_ENV

        os.environ[MAX_PIXELS_ENV] = str(args.max_pixels)  # inherited by local Dask workers
    try:
        with _one_line_warnings(args.command):
            return int(args._run(args) or 0)
    except DippasInputError as exc:
        print(f"dippas {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print(f"dippas {args.command}: interrupted", file=sys.stderr)
        return 130
    except TileError as exc:  # a Dask worker's failure, already one line naming the tile
        print(f"dippas {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
