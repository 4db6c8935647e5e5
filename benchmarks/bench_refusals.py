"""How fast, and in how little memory, bad input is refused (issue 15).

For each decompression bomb (a small file whose header claims a huge image)
a fresh process reads it with :func:`dippas.io.load_image` or
:func:`dippas.io.load_fingerprint`, and prints the wall time to the refusal
and the peak RSS growth; then ``dippas`` is run against an unwritable
output (``/proc/x.png``) for the commands that compute, with the wall time
of the whole command (interpreter start included) to its one-line refusal.

Usage::

    python benchmarks/bench_refusals.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _craft import jpeg_with_size, npy_bomb, png_bomb, tiff_bomb  # noqa: E402

PROBE = """
import json, resource, sys, time
from dippas.io import load_fingerprint, load_image
from dippas.errors import DippasInputError
path, kind = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
try:
    (load_fingerprint if kind == "fingerprint" else load_image)(path)
    outcome = "read"
except DippasInputError as exc:
    outcome = str(exc).split(": ", 1)[-1]
seconds = time.perf_counter() - t0
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"seconds": seconds, "rss_mib": grown / 1024, "outcome": outcome}))
"""


def _bombs(d: Path) -> list[tuple[str, Path, str]]:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, format="JPEG")
    jpeg = d / "bomb.jpg"
    jpeg.write_bytes(jpeg_with_size(buf.getvalue(), 60000, 60000))
    return [
        ("16-bit RGB PNG 15000x15000 (pypng)", png_bomb(d / "a.png", 15000, 15000, 16, 2), "image"),
        ("16-bit RGB PNG 12000x12000, 1/3 of its data",
         png_bomb(d / "b.png", 12000, 12000, 16, 2, rows=4000), "image"),
        ("8-bit RGB PNG 20000x20000 (Pillow)", png_bomb(d / "c.png", 20000, 20000, 8, 2), "image"),
        ("deflate TIFF 20000x20000", tiff_bomb(d / "d.tif", 20000, 20000), "image"),
        ("JPEG 60000x60000", jpeg, "image"),
        (".npy float32 50000x50000", npy_bomb(d / "k.npy", (50000, 50000)), "fingerprint"),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print(f"{'file':46s} {'size':>8s} {'seconds':>8s} {'RSS MiB':>8s}  outcome")
        for label, path, kind in _bombs(d):
            res = subprocess.run([sys.executable, "-c", PROBE, str(path), kind],
                                 capture_output=True, text=True, check=True)
            r = json.loads(res.stdout)
            print(f"{label:46s} {path.stat().st_size / 1024:6.0f} KB {r['seconds']:8.3f} "
                  f"{r['rss_mib']:8.1f}  {r['outcome']}")
        from skimage import data

        from dippas.io import save_image

        photo = d / "photo.png"
        save_image(photo, data.astronaut()[:256, :256])
        commands = {
            "residual": ["residual", photo, "-o", "/proc/w.npy"],
            "anonymize (inpainting)": ["anonymize", photo, "-o", "/proc/x.png", "--method", "inpainting"],
            "anonymize (dippas --run)": ["anonymize", photo, "-o", d / "x.png", "--blind",
                                         "--run", "/proc/run"],
            "invert": ["invert", photo, "--blind", "--run", "/proc/run"],
            "batch": ["batch", photo, "--out", "/proc/b", "--method", "inpainting"],
            "demo": ["demo", "--out", "/proc/demo"],
        }
        print(f"\n{'unwritable output':28s} {'exit':>4s} {'seconds':>8s}  stderr")
        for label, argv in commands.items():
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "dippas.cli", *map(str, argv)],
                                 capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            print(f"{label:28s} {res.returncode:4d} {seconds:8.2f}  {res.stderr.strip()}")


if __name__ == "__main__":
    main()
