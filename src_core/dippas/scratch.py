"""Scratch folders of runs that are not kept, deleted on every exit path that can be caught.

``dippas anonymize`` without ``--run`` (and :func:`dippas.anonymize.anonymize_dippas`
without ``run_dir``) inverts into a scratch folder, which holds the
original pixels (``run/input.npy``) while it exists:

- it lives in the system's temporary folder (``$TMPDIR``, else ``/tmp`` on
  Linux; :func:`tempfile.gettempdir`) as ``dippas-run-<random>/``, mode
  ``0700``;
- it is deleted when the work ends, fails, is interrupted (Ctrl-C,
  ``SIGINT``), terminated (``SIGTERM``, ``SIGHUP``: turned into a clean
  exit while a scratch folder is open, in the main thread), and at
  interpreter exit;
- a terminated process that has not exited :data:`EXIT_GRACE_S` seconds
  after the signal (Python can lose the exit a signal handler raises, when
  it arrives inside some C code, and a blocked ``finally`` can hold it up),
  or that gets the signal a second time, deletes its scratch folders and
  exits at once (:func:`os._exit`);
- a process killed outright (``SIGKILL``, power loss) cannot clean up: the
  owner holds a lock on ``<folder>/.lock`` while it lives, and the next
  scratch folder made by any dippas process of the same user deletes every
  ``dippas-run-*`` folder whose lock is free (:func:`sweep_stale`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .io import lock_file

#: Name prefix of scratch folders in the temporary folder.
PREFIX = "dippas-run-"
#: Lock file of a live scratch folder.
LOCK_NAME = ".lock"
#: A scratch folder without a lock file (made by an older version) is stale after this many seconds.
LOCKLESS_STALE_S = 24 * 3600
#: Signals turned into a clean exit while a scratch folder is open.
_EXIT_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))
#: Seconds a terminated process has to exit cleanly before it deletes its
#: scratch folders and exits at once.
EXIT_GRACE_S = 10.0

__all__ = ["EXIT_GRACE_S", "LOCK_NAME", "PREFIX", "scratch_dir", "sweep_stale"]

_lock = threading.Lock()
_live: dict[Path, int] = {}
_saved_handlers: dict[int, object] = {}
_exit_deadline: threading.Thread | None = None


def _is_stale(folder: Path) -> bool:
    lock = folder / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > LOCKLESS_STALE_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        return lock_file(fd, blocking=False)
    finally:
        os.close(fd)


def sweep_stale(root: str | os.PathLike | None = None) -> list[Path]:
    """Delete this user's scratch folders that no live process holds.

    Parameters
    ----------
    root : path, optional
        Where scratch folders are made (default :func:`tempfile.gettempdir`).

    Returns
    -------
    list of Path
        The folders deleted.
    """
    base = Path(root if root is not None else tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else None
    removed = []
    try:
        candidates = [p for p in base.glob(f"{PREFIX}*") if p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for folder in candidates:
        try:
            if uid is not None and folder.stat().st_uid != uid:
                continue
        except OSError:
            continue
        if folder in _live or not _is_stale(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def _remove_live_now() -> None:
    """Delete every live scratch folder without waiting for its owner (the process is ending)."""
    for _ in range(3):  # a thread of the dying process may still be writing in one
        folders = list(_live.copy())
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        if not any(folder.exists() for folder in folders):
            return


def _exit_now(code: int) -> None:
    _remove_live_now()
    os._exit(code)


def _exit_after_grace(code: int) -> None:
    time.sleep(EXIT_GRACE_S)
    _exit_now(code)


def _exit_on_signal(signum, frame) -> None:  # noqa: ARG001 - signal API
    """A clean exit (``SystemExit``), and a deadline for it; a second signal exits at once.

    No lock is taken here: the handler runs in the main thread, which may hold
    :data:`_lock` when the signal arrives.
    """
    global _exit_deadline
    code = 128 + signum
    if _exit_deadline is not None:
        _exit_now(code)
    _exit_deadline = threading.Thread(target=_exit_after_grace, args=(code,), daemon=True,
                                      name="dippas-exit-deadline")
    _exit_deadline.start()
    raise SystemExit(code)


def _install_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled in the main thread; atexit and the sweep remain
    for sig in _EXIT_SIGNALS:
        if sig in _saved_handlers:
            continue
        current = signal.getsignal(sig)
        if current in (signal.SIG_DFL, None):
            _saved_handlers[sig] = current
            signal.signal(sig, _exit_on_signal)


def _restore_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in list(_saved_handlers.items()):
        if signal.getsignal(sig) is _exit_on_signal:
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        del _saved_handlers[sig]


def _remove(folder: Path) -> None:
    fd = _live.pop(folder, None)
    shutil.rmtree(folder, ignore_errors=True)
    if fd is not None:
        os.close(fd)


@atexit.register
def _remove_all() -> None:
    for folder in list(_live):
        _remove(folder)


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private scratch folder, deleted on exit; stale ones of killed processes are swept first.

    Yields
    ------
    pathlib.Path
        A new empty folder (mode ``0700``) besides its lock file.
    """
    sweep_stale()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        fd = os.open(folder / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        lock_file(fd, blocking=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    with _lock:
        _live[folder] = fd
        _install_handlers()
    try:
        yield folder
    finally:
        with _lock:
            _remove(folder)
            if not _live:
                _restore_handlers()
