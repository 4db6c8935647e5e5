"""Scratch run folders (the original's pixels) go on every exit path that can be caught."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dippas import scratch

HOLD = """
import sys, time
from dippas.scratch import scratch_dir
with scratch_dir() as d:
    (d / "run").mkdir()
    (d / "run" / "input.npy").write_bytes(b"original pixels")
    print(d, flush=True)
    time.sleep(120)
"""


def _default_signals() -> None:
    """In the child: the default dispositions, whatever this test run inherited (under
    ``nohup`` SIGHUP is ignored, and an ignored signal stays ignored across exec)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _start(tmp_path: Path, code: str = HOLD) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_default_signals)
    folder = Path(proc.stdout.readline().strip())
    assert folder.parent == tmp_path and (folder / "run" / "input.npy").is_file()
    return proc, folder


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_scratch_deleted_when_terminated_or_interrupted(tmp_path, sig):
    proc, folder = _start(tmp_path)
    assert folder.stat().st_mode & 0o077 == 0
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert not folder.exists()


SWALLOWS_THE_EXIT = """
import sys, time
from dippas import scratch
scratch.EXIT_GRACE_S = 0.5
with scratch.scratch_dir() as d:
    (d / "run").mkdir()
    (d / "run" / "input.npy").write_bytes(b"original pixels")
    print(d, flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:  # stands for C code that loses the exception a signal handler raised
            time.sleep(0.05)
        except SystemExit:
            pass
"""


@pytest.mark.parametrize("times", [1, 2])
def test_scratch_deleted_when_the_clean_exit_is_lost(tmp_path, times):
    """Python can drop the SystemExit a handler raises; the deadline still exits and deletes."""
    proc, folder = _start(tmp_path, SWALLOWS_THE_EXIT)
    for _ in range(times):  # twice: the second signal exits at once
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
    proc.wait(timeout=30)
    # 143: the deadline's exit, or the clean exit when the signal landed outside the
    # script's try; only then can a second signal meet the restored default action (-15)
    endings = (128 + signal.SIGTERM,) if times == 1 else (128 + signal.SIGTERM, -signal.SIGTERM)
    assert proc.returncode in endings
    assert not folder.exists()


def test_scratch_of_a_killed_process_swept_at_the_next_start(tmp_path, monkeypatch):
    proc, folder = _start(tmp_path)
    live, live_folder = _start(tmp_path)  # a second process, still working
    proc.kill()
    proc.wait(timeout=30)
    assert folder.exists()  # SIGKILL cannot be caught...
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    try:
        with scratch.scratch_dir() as mine:  # ...but the next start sweeps it
            assert not folder.exists()
            assert live_folder.exists()  # the live process's folder is left alone
            assert mine.exists()
        assert not mine.exists()
    finally:
        live.terminate()
        live.wait(timeout=30)
    assert not live_folder.exists()


def test_signal_handlers_restored_after_the_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    before = signal.getsignal(signal.SIGTERM)
    with scratch.scratch_dir():
        pass
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.slow
def test_terminated_anonymize_leaves_no_original_pixels(tmp_path, small_rgb):
    """The issue's replay: ``dippas anonymize`` without --run, killed mid-inversion."""
    Image.fromarray(small_rgb).save(tmp_path / "photo.png")
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch_root)}
    proc = subprocess.Popen([sys.executable, "-m", "dippas.cli", "anonymize", str(tmp_path / "photo.png"),
                             "-o", str(tmp_path / "out.png"), "--blind", "--device", "cpu",
                             "--preset", "fast", "--max-iter", "100000"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        t0 = time.monotonic()
        while not list(scratch_root.glob("dippas-run-*/run/input.npy")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() - t0 < 120
            time.sleep(0.2)
        proc.terminate()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    # ours only: torch makes an empty torchinductor_<user> cache folder there once its optimizer runs
    assert not list(scratch_root.glob(f"{scratch.PREFIX}*"))
    assert not (tmp_path / "out.png").exists()
    assert np.asarray(Image.open(tmp_path / "photo.png")).shape == small_rgb.shape
