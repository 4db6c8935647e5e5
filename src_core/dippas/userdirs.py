"""Private per-user folders: where dippas keeps what must not be published.

Batch records (they name each photo's original and hold its SHA-256) and
DIPPAS run folders of the plugin and of ``dippas batch`` (they hold the
original pixels) live in one per-user state folder, never beside the
outputs:

- default: ``platformdirs.user_state_dir("napari-dippas")``, e.g.
  ``~/.local/state/napari-dippas`` on Linux,
  ``~/Library/Application Support/napari-dippas`` on macOS,
  ``%LOCALAPPDATA%\\napari-dippas`` on Windows;
- or the folder named by the environment variable ``DIPPAS_STATE_DIR``.

Every folder made here has mode ``0700`` (owner only).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DippasInputError

#: Application name of the per-user folders.
APP_NAME = "napari-dippas"
#: Environment variable that replaces the default state folder.
STATE_ENV = "DIPPAS_STATE_DIR"

__all__ = ["APP_NAME", "STATE_ENV", "private_folder", "state_dir"]


def private_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` (and its parents) if needed and make it owner-only (``0700``).

    Raises
    ------
    DippasInputError
        When it cannot be created, or is not a folder.
    """
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not p.is_dir():
            raise DippasInputError(f"{p}: not a folder")
        if hasattr(os, "getuid") and p.stat().st_uid == os.getuid():
            p.chmod(0o700)
    except OSError as exc:
        raise DippasInputError(f"{p}: cannot make a private folder ({exc.strerror or exc})") from None
    return p


def state_dir(*parts: str) -> Path:
    """The per-user state folder (``$DIPPAS_STATE_DIR`` or platformdirs'), or a subfolder, private.

    Parameters
    ----------
    *parts : str
        Subfolder names.

    Returns
    -------
    pathlib.Path
        Created, mode ``0700``.
    """
    root = os.environ.get(STATE_ENV, "").strip()
    if not root:
        import platformdirs

        root = platformdirs.user_state_dir(APP_NAME, appauthor=False)
    base = private_folder(Path(root).expanduser())
    return private_folder(base.joinpath(*parts)) if parts else base
