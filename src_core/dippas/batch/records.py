"""Per-photo completion records in a private state folder: hashes, claims, and the skip rule.

Nothing beside the outputs names their originals: the output folder holds
only the anonymized images. What a rerun needs lives in a **private state
folder** of the batch (mode ``0700``), one per output folder::

    STATE/batch/<16 hex of the output folder's absolute path>/
        output                  the output folder's path (for people browsing STATE)
        records/<name>.json     the record of OUT/<name>: input path and SHA-256,
                                fingerprint, parameters, metrics, timings, worker
        claims/<name>           this batch may write OUT/<name> (written before its task runs)
        runs/<key>/             DIPPAS run folder while that photo is in progress

``STATE`` is ``dippas batch --state DIR``, else :func:`dippas.userdirs.state_dir`
(``$DIPPAS_STATE_DIR``, else the per-user state folder of platformdirs).

A record is written atomically **after** its output image: its presence
marks the photo as finished. A photo is skipped by a rerun when its record
is readable, of this format version, has the same key, and the output
exists with the SHA-256 the record gives. The key is the SHA-256 of the
method, its parameters, the input file's SHA-256 and the fingerprint
file's SHA-256, so a changed photo, fingerprint or parameter makes the
photo run again.

An existing output without a record is replaced only when this batch
claimed it (a task killed between the image and its record), or with
``--force``: a file the batch did not write is never overwritten silently.

Temporary files of the atomic writes are swept by :func:`remove_stale_parts`
(see :func:`dippas.io.sweep_stale_parts`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ..io import sweep_stale_parts
from ..jsonio import jsonable, write_json
from ..userdirs import private_folder, state_dir

#: Format version of the record; a record of another version is redone.
RECORD_VERSION = 1
#: The ``format`` field of a record.
RECORD_FORMAT = "dippas-batch-record"
#: Suffix of a record (after the output's name).
RECORD_SUFFIX = ".json"

__all__ = [
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "batch_state",
    "claim",
    "claim_path",
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


def batch_state(out: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The private state folder of the batch writing into ``out`` (created, mode ``0700``).

    Parameters
    ----------
    out : path
        The output folder (its absolute path names the state folder).
    root : path, optional
        State root (``--state``); default :func:`dippas.userdirs.state_dir`.

    Returns
    -------
    pathlib.Path
    """
    out = Path(os.path.abspath(out))
    digest = hashlib.sha256(os.fsencode(str(out))).hexdigest()[:16]
    base = private_folder(Path(root).expanduser() / "batch") if root is not None else state_dir("batch")
    folder = private_folder(base / digest)
    label = folder / "output"
    if not label.exists():
        write_json(label, {"output": str(out)})
    return folder


def record_path(state: str | os.PathLike, name: str) -> Path:
    """The record of the output named ``name`` (``a/b.png``) in the state folder ``state``."""
    return Path(state) / "records" / f"{name}{RECORD_SUFFIX}"


def claim_path(state: str | os.PathLike, name: str) -> Path:
    """The claim of the output named ``name``: this batch may write it."""
    return Path(state) / "claims" / name


def claim(state: str | os.PathLike, name: str) -> Path:
    """Mark the output ``name`` as this batch's to write (before its task runs)."""
    path = claim_path(state, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
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
    """Delete the temporary files interrupted atomic writes of ``target`` left beside it.

    Those of this version (:func:`dippas.io.sweep_stale_parts`, only when no
    writer holds them) and those of earlier versions
    (``.<file name>.<random>.part<suffix>``).

    Returns
    -------
    list of Path
        The files removed.
    """
    import glob

    t = Path(target)
    removed = sweep_stale_parts(t)
    if not t.parent.is_dir():
        return removed
    for p in t.parent.glob(f".{glob.escape(t.name)}.*.part{glob.escape(t.suffix)}"):
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed
