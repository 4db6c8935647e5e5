"""Keys and cached records of the evaluation: what a cached result depends on.

A cached anonymized image is keyed by the method, every parameter, the image
(:func:`image_key`) and the crop; its scores also by the fingerprints, sigma,
the edge denoiser and the audit flag (:func:`score_key`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

#: Version of the record format; part of the score cache key.
RECORD_VERSION = 1


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.\-_]", "_", text)[:80] or "image"


def image_key(path: str | os.PathLike) -> str:
    """Cache name of an image: its stem and the first 10 hex digits of its content's SHA-1."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{safe_name(Path(path).stem)}-{h.hexdigest()[:10]}"


def file_digest(path: str | os.PathLike) -> str:
    """8 hex digits identifying a file by its resolved path, size and modification time."""
    st = Path(path).stat()
    return hashlib.sha1(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:8]


def score_key(fingerprints: Mapping[str, Path], sigma: float, edge_denoiser: str,
              audit: bool = False) -> str:
    """Digest of what the scores depend on besides the image: fingerprints, sigma, edge denoiser, audit."""
    h = hashlib.sha1(f"v{RECORD_VERSION}|{float(sigma)!r}|{edge_denoiser}|{bool(audit)}".encode())
    for dev, p in fingerprints.items():
        st = Path(p).stat()
        h.update(f"|{dev}|{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
