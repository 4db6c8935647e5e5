"""JSON in one place: a cleaner for NumPy and non-finite values, an atomic writer, a checked reader.

Every JSON file the project writes (``params.json``, batch records, reports,
evaluation caches) and every ``--json`` print goes through :func:`jsonable`,
so NaN and infinities become ``null`` and NumPy scalars plain numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

from .errors import DippasInputError

__all__ = ["jsonable", "dumps", "write_json", "read_json"]


def jsonable(obj):
    """``obj`` as plain JSON values.

    NumPy scalars and 0-d arrays become Python numbers, arrays and tuples lists,
    dataclasses dicts, paths strings, and NaN and infinities ``None``.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy arrays and scalars
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def dumps(obj, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``jsonable(obj)`` (never bare ``NaN`` or ``Infinity``)."""
    return json.dumps(jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as strict, indented JSON, atomically."""
    from .io import atomic_write

    text = dumps(obj) + "\n"

    def writer(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, writer)


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object, as :class:`DippasInputError` when it is missing or bad."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DippasInputError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise DippasInputError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DippasInputError(f"{path}: expected a JSON object")
    return data
