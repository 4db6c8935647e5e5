"""Helpers shared by the CLI commands: progress bars, JSON output, argument types."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from ..jsonio import dumps


def progress_bar(total: int | None, desc: str, unit: str = "it", **kwargs):
    """A tqdm bar on stderr; hidden when stderr is not a terminal and ``quiet``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                leave=True, **kwargs)


def bar_callback(bar) -> Callable[[int, int | None], None]:
    """A ``progress(done, total)`` callback that moves ``bar`` to ``done``."""

    def update(done: int, total: int | None = None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update


def iteration_postfix(bar) -> Callable:
    """An ``on_iteration`` callback that shows PSNR, gamma and saved snapshots on ``bar``."""

    def show(ev) -> None:
        tile = f"{ev.tile_index + 1}/{ev.n_tiles}" if getattr(ev, "n_tiles", 1) > 1 else None
        fields = {"psnr": f"{ev.psnr:.2f}", "gamma": f"{ev.gamma:.2e}", "saved": ev.n_saved}
        if tile:
            fields["tile"] = tile
        bar.set_postfix(fields, refresh=False)

    return show


def print_json(obj) -> None:
    """Print ``obj`` as JSON on stdout (NaN and inf become null)."""
    sys.stdout.write(dumps(obj))
    sys.stdout.write("\n")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return v


def existing_file(text: str) -> Path:
    """argparse type: a path that exists and is a file."""
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, expected a file")
    return p
