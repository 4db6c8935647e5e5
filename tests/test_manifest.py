"""The npe2 manifest is found through the package, in editable and wheel installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _npe2(*args: str) -> subprocess.CompletedProcess:
    npe2 = shutil.which("npe2") or str(Path(sys.executable).parent / "npe2")
    return subprocess.run([npe2, *args], capture_output=True, text=True, timeout=300)


def test_manifest_symlink_points_to_top_level():
    link = ROOT / "napari_dippas" / "napari.yaml"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "napari.yaml").resolve()


def test_npe2_validate_installed_distribution():
    res = _npe2("validate", "napari-dippas")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "valid" in res.stdout


@pytest.mark.slow
def test_wheel_carries_manifest_and_entry_point(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("napari_dippas-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        manifest = zf.read("napari_dippas/napari.yaml")
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        zf.extractall(tmp_path / "site")
    assert manifest == (ROOT / "napari.yaml").read_bytes()
    assert "napari-dippas = napari_dippas:napari.yaml" in entry_points
    assert "dippas = dippas.cli:main" in entry_points
    assert any(n.startswith("dippas/cli/") for n in names)
    res = _npe2("validate", str(tmp_path / "site" / "napari_dippas" / "napari.yaml"))
    assert res.returncode == 0, res.stdout + res.stderr
