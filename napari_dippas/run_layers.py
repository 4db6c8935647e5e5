"""Layers of a DIPPAS run folder: input, injected pattern P and lazy snapshot stacks.

Used by the reader (opening a run folder) and by the inversion and
assembler widgets (the live snapshot layer of a running inversion). The
snapshot stack of each tile is the store's uint8 memory map
``(M, h, w, 3)`` passed to napari as it is: napari reads only the frame on
screen, and the contrast limits are given (``(0, 255)``) so that it never
scans the stack. Opening a run of thousands of snapshots therefore costs
about the time and memory of one frame.

Layer metadata
--------------
Every layer carries ``dippas_kind`` (``'run_input'``, ``'fingerprint'``
or ``'snapshots'``) and ``run`` (the run folder). Snapshot layers also
carry ``tile`` (``'ty_tx'``), ``origin`` (``(y0, x0)``), and the table
columns ``psnr`` and ``iteration`` of the frames in the layer.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._layers import fingerprint_layer_kwargs

#: ``dippas_kind`` of snapshot stack layers.
SNAPSHOTS_KIND = "snapshots"
#: ``dippas_kind`` of the run's input layer.
INPUT_KIND = "run_input"

LayerDataTuple = tuple[Any, dict, str]


def _limits(dtype: np.dtype) -> tuple[float, float]:
    if dtype == np.uint8:
        return 0.0, 255.0
    if dtype == np.uint16:
        return 0.0, 65535.0
    return 0.0, 255.0  # float inputs are stored in 0-255 units


def input_layer(store) -> LayerDataTuple:
    """The run's input image (memory-mapped) as an RGB image layer."""
    image = store.input
    meta = {"dippas_kind": INPUT_KIND, "run": os.fspath(store.path)}
    return (image, {"name": "run input", "rgb": image.ndim == 3 and image.shape[-1] == 3,
                    "contrast_limits": _limits(image.dtype), "metadata": meta}, "image")


def pattern_layer(store) -> LayerDataTuple:
    """The injected pattern P (K in aware mode, the image's residual in blind mode)."""
    p = np.asarray(store.fingerprint)
    mode = store.params.get("mode", "aware")
    kwargs = fingerprint_layer_kwargs(p, "injected P" if mode == "blind" else "injected K")
    kwargs["metadata"] = {**kwargs["metadata"], "run": os.fspath(store.path), "mode": mode}
    return p, kwargs, "image"


def snapshot_layer_kwargs(store, tile_name: str) -> tuple[np.ndarray, dict] | None:
    """Data and ``add_image`` arguments of one tile's snapshot stack.

    Parameters
    ----------
    store : dippas.dip.RunStore
    tile_name : str
        ``'ty_tx'``.

    Returns
    -------
    (ndarray, dict) or None
        The memory map ``(M, h, w, 3)`` (never read here) and the layer
        arguments; None while the tile has no snapshot.
    """
    tile = store.tile(tile_name)
    table = tile.table
    n = len(table["index"])
    if n == 0:
        return None
    snaps = tile.snapshots
    n = min(n, snaps.shape[0])
    if n == 0:
        return None
    snaps = snaps[:n]
    g = tile.geometry
    meta = {"dippas_kind": SNAPSHOTS_KIND, "run": os.fspath(store.path), "tile": g.name,
            "origin": (g.y0, g.x0), "psnr": table["psnr"][:n].copy(),
            "iteration": table["iteration"][:n].copy()}
    kwargs = {"name": f"snapshots {g.name}", "rgb": True, "contrast_limits": (0, 255),
              "translate": (0, g.y0, g.x0), "metadata": meta}
    return snaps, kwargs


def refresh_snapshot_layer(layer, store) -> int:
    """Point an existing snapshot layer at the frames now in the store.

    Re-opens the memory map (the file has grown) and updates the metadata.
    Call on the GUI thread only.

    Returns
    -------
    int
        Frames in the layer now (0 leaves the layer unchanged).
    """
    got = snapshot_layer_kwargs(store, layer.metadata["tile"])
    if got is None:
        return 0
    data, kwargs = got
    if data.shape[0] != layer.data.shape[0]:
        layer.data = data
    layer.metadata.update(kwargs["metadata"])
    return int(data.shape[0])


def find_snapshot_layer(viewer, run: str | os.PathLike, tile: str):
    """The viewer's snapshot layer of ``run``/``tile``, or None."""
    run = os.path.realpath(os.fspath(run))
    for layer in viewer.layers:
        meta = layer.metadata
        if (meta.get("dippas_kind") == SNAPSHOTS_KIND and meta.get("tile") == tile
                and os.path.realpath(meta.get("run", "")) == run):
            return layer
    return None


def run_layers(path: str | os.PathLike) -> list[LayerDataTuple]:
    """Every layer of a run folder: input, pattern, and each tile's snapshot stack.

    Parameters
    ----------
    path : path
        A DIPPAS run folder.

    Returns
    -------
    list of (data, kwargs, 'image')
        The input (RGB), the injected pattern (diverging colormap), then one
        lazily loaded snapshot stack per tile that has snapshots, translated
        to the tile's ``(y0, x0)``.

    Raises
    ------
    DippasInputError
        If ``path`` is not a run folder.
    """
    from dippas.dip import RunStore

    store = RunStore(path)
    layers = [input_layer(store), pattern_layer(store)]
    for g in store.tiles:
        got = snapshot_layer_kwargs(store, g.name)
        if got is not None:
            layers.append((got[0], got[1], "image"))
    return layers
