"""The anonymization report shared by every method, the CLI and the plugin.

Fidelity (PSNR, SSIM against the input) and, when a fingerprint is known,
the attribution scores (NCC, both PCEs, verdict) of the input and of the
output against it.
"""

from __future__ import annotations

import numpy as np

from .correlation import attribution_scores
from .metrics import psnr, ssim


def anonymization_report(original: np.ndarray, anonymized: np.ndarray,
                         fingerprint: np.ndarray | None = None, sigma: float = 3.0) -> dict:
    """Compare an anonymized image with its original.

    Parameters
    ----------
    original, anonymized : ndarray
        Same shape and dtype.
    fingerprint : ndarray, optional
        Camera fingerprint K; when given, both images are tested against it.
    sigma : float
        Residual noise level, 0-255 units.

    Returns
    -------
    dict
        ``psnr``, ``ssim``, and with a fingerprint ``input`` and ``output``
        (each the dict of :func:`dippas.attribution_scores`) and
        ``ncc_reduction`` (input NCC over output |NCC|).
    """
    report: dict = {"psnr": psnr(original, anonymized), "ssim": ssim(original, anonymized)}
    if fingerprint is not None:
        before = attribution_scores(original, fingerprint, sigma)
        after = attribution_scores(anonymized, fingerprint, sigma)
        report["input"] = before
        report["output"] = after
        report["ncc_reduction"] = (abs(before["ncc"]) / abs(after["ncc"])
                                   if after["ncc"] else float("inf"))
    return report


def report_lines(report: dict) -> list[str]:
    """Human-readable lines of :func:`anonymization_report` (the CLI prints them, the plugin shows them)."""
    lines = [f"PSNR   {report['psnr']:.2f} dB", f"SSIM   {report['ssim']:.4f}"]
    if "input" in report:
        for key in ("input", "output"):
            s = report[key]
            verdict = "MATCH" if s["match"] else "no match"
            lines.append(f"{key:<6} NCC {s['ncc']:+.5f}  PCE {s['pce']:+9.2f}  "
                         f"PCE(search) {s['pce_search']:+9.2f}  {verdict}")
        lines.append(f"NCC lowered {report['ncc_reduction']:.1f}x")
    return lines


def format_report(report: dict) -> str:
    """:func:`report_lines` as one text."""
    return "\n".join(report_lines(report))
