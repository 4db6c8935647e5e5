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
and returns exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command module."""
    from .. import __version__

    parser = _Parser(
        prog="dippas",
        description="Remove the camera sensor fingerprint (PRNU) from photos, "
        "and test PRNU attribution.",
    )
    parser.add_argument("--version", action="version", version=f"dippas {__version__}")
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
    try:
        return int(args._run(args) or 0)
    except DippasInputError as exc:
        print(f"dippas {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print(f"dippas {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
