"""Per-photo completion records: hashes, the record file, and the skip rule.

Every output image ``OUT/<name>.png`` has a record ``OUT/<name>.json``,
written atomically **after** the image: its presence marks the photo as
finished. A photo is skipped by a rerun when its record is readable, of
this format version, has the same key, and the output exists with the
SHA-256 the record gives. The key is the SHA-256 of the method, its
parameters, the input file's SHA-256 and the fingerprint file's SHA-256,
so a changed photo, fingerprint or parameter makes the photo run again.

Temporary files of the atomic writes are ``.<file name>.<random>.part<suffix>``
beside their target; a worker killed mid-write can leave one, which
:func:`remove_stale_parts` deletes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ..jsonio import jsonable, write_json

#: Format version of the record; a record of another version is redone.
RECORD_VERSION = 1
#: The ``format`` field of a record.
RECORD_FORMAT = "dippas-batch-record"
#: Suffix of the record beside its output image.
RECORD_SUFFIX = ".json"

__all__ = [
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "jsonable",
    "read_record",
    "record_path",
    "redo_reason",
    "remove_stale_parts",
    "sha256_file",
    "task_key",
    "write_record",
]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def task_key(method: str, params: Mapping, input_sha256: str, fingerprint_sha256: str | None) -> str:
    """The identity of one photo's work: SHA-256 of method, parameters and file hashes.

    Parameters
    ----------
    method : str
    params : mapping
        JSON-serializable parameters that determine the output and the metrics.
    input_sha256 : str
    fingerprint_sha256 : str or None

    Returns
    -------
    str
        64 hex digits.
    """
    doc = {"v": RECORD_VERSION, "method": method, "params": jsonable(params),
           "input": input_sha256, "fingerprint": fingerprint_sha256}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def record_path(output: str | os.PathLike) -> Path:
    """The record beside an output image: same name, suffix ``.json``."""
    return Path(output).with_suffix(RECORD_SUFFIX)


def read_record(path: str | os.PathLike) -> dict | None:
    """The record at ``path``, or None when missing, unreadable or of another format."""
    try:
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("format") != RECORD_FORMAT:
        return None
    return rec


def write_record(path: str | os.PathLike, record: Mapping) -> Path:
    """Write ``record`` as JSON, atomically (the last write of a photo)."""
    return write_json(path, record)


def redo_reason(record: Mapping | None, output: str | os.PathLike, key: str,
                input_sha256: str | None = None, params: Mapping | None = None) -> str | None:
    """Why a photo must be (re)done, or None when its record says it is finished.

    Parameters
    ----------
    record : mapping or None
        From :func:`read_record`.
    output : path
        The output image.
    key : str
        :func:`task_key` of the work asked now.
    input_sha256, params : optional
        Only to name the reason precisely.

    Returns
    -------
    str or None
        ``'new'``, ``'record from another version'``, ``'input changed'``,
        ``'fingerprint or parameters changed'``, ``'output missing'``,
        ``'output changed'``; None: finished, skip.
    """
    if record is None:
        return "new" if not Path(output).exists() else "record missing"
    if record.get("version") != RECORD_VERSION:
        return "record from another version"
    if record.get("key") != key:
        if input_sha256 is not None and record.get("input", {}).get("sha256") != input_sha256:
            return "input changed"
        return "fingerprint or parameters changed"
    out = Path(output)
    if not out.is_file():
        return "output missing"
    expected = record.get("output", {})
    if out.stat().st_size != expected.get("size") or sha256_file(out) != expected.get("sha256"):
        return "output changed"
    return None


def remove_stale_parts(target: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted atomic write of ``target`` left beside it.

    Returns
    -------
    list of Path
        The files removed.
    """
    t = Path(target)
    removed = []
    if not t.parent.is_dir():
        return removed
    for p in t.parent.glob(f".{glob_escape(t.name)}.*.part{glob_escape(t.suffix)}"):
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed


def glob_escape(text: str) -> str:
    """``text`` with the glob wildcards ``*?[`` escaped."""
    import glob

    return glob.escape(text)
