"""The audit's worker side for the "Audit" dock widget: inputs from layers, results as rows.

The widget only holds controls; this module turns layer data into the core's
inputs, starts :func:`dippas.audit.audit` as a :class:`~napari_dippas.workers.core_task.CoreTask`
(run by a napari thread worker) and turns the report into table rows and
heatmap layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._layers import heatmap_layer_kwargs, image_to_uint8
from .core_task import CoreTask

#: Columns of the results table.
COLUMNS = ("image", "test", "score", "threshold", "verdict")


def audit_task(images: Sequence[np.ndarray], fingerprint: np.ndarray | None,
               camera_photos: str | None, pfa: float, crop: int | None = None) -> CoreTask:
    """A task running the audit of layer images against a fingerprint or camera photos.

    Parameters
    ----------
    images : sequence of ndarray
        Layer data of the images under test.
    fingerprint : ndarray or None
        Fingerprint layer data.
    camera_photos : str or None
        Folder of the camera's photos (used when ``fingerprint`` is None).
    pfa : float
        False-alarm probability.
    crop : int, optional
        Centre crop of every image (and K).
    """
    from dippas.audit import AuditOptions, audit

    data = [image_to_uint8(im) for im in images]
    return CoreTask(audit, data, fingerprint=fingerprint, camera_photos=camera_photos,
                    crop=crop, options=AuditOptions(pfa=pfa))


def report_rows(report, names: Sequence[str]) -> list[dict]:
    """One row per test: image (layer name, or "set"), test, score, threshold, verdict."""
    rows = []
    for name, res in zip(names, report.images, strict=True):
        rows += [_row(name, t) for t in res.tests]
    if report.set is not None:
        rows += [_row("set", t) for t in report.set.tests]
    return rows


def _row(who: str, t) -> dict:
    return {"image": who, "test": t.name, "score": f"{t.score:+.4g}",
            "threshold": f"{'±' if t.two_sided else '≥'}{t.threshold:.4g}", "verdict": t.verdict}


def heatmap_layers(report, names: Sequence[str]) -> list[tuple[np.ndarray, dict]]:
    """``(data, add_image kwargs)`` of each image's per-block NCC heatmap."""
    return [(res.heatmap, heatmap_layer_kwargs(res.heatmap, res.heatmap_block,
                                               name=f"audit NCC {name}"))
            for name, res in zip(names, report.images, strict=True)]


def summary_text(report) -> str:
    """One line: how many tests say match, and the fingerprint's source."""
    failed = report.failed()
    fp = report.fingerprint
    src = (f"K from {fp['photos']} camera photos (half-split NCC {fp['half_ncc']:.3f})"
           if fp.get("source") == "camera photos" else "K from a layer")
    verdict = (f"{len(failed)} test(s) say MATCH: the camera can be identified" if failed
               else "no test says match")
    return f"{verdict}; {src}; false alarm {report.options.pfa:g}"
