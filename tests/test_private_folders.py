"""Runs and records that hold or name originals live in a per-user private folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from dippas.userdirs import STATE_ENV, private_folder, state_dir


def test_state_dir_is_private_and_overridable(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "st"))
    runs = state_dir("runs")
    assert runs == tmp_path / "st" / "runs"
    assert runs.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "st").stat().st_mode & 0o777 == 0o700


def test_state_dir_defaults_to_platformdirs(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv(STATE_ENV)
    monkeypatch.setattr(platformdirs, "user_state_dir", lambda app, appauthor=None: str(tmp_path / app))
    assert state_dir() == tmp_path / "napari-dippas"


def test_private_folder_tightens_an_existing_folder(tmp_path):
    d = tmp_path / "open"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    assert private_folder(d).stat().st_mode & 0o777 == 0o700


def test_plugin_runs_go_to_a_private_per_user_folder(private_state):
    pytest.importorskip("qtpy")
    from napari_dippas._state import default_run_root
    from napari_dippas.widgets.inversion import default_run_dir

    root = default_run_root()
    run = default_run_dir()
    assert run.parent == root == private_state / "runs"
    assert not str(run).startswith(os.path.join(tempfile.gettempdir(), "napari-dippas"))
    assert root.stat().st_mode & 0o077 == 0 and not run.exists()
    assert default_run_dir(Path("/elsewhere")).parent == Path("/elsewhere")
