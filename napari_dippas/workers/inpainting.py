"""The inpainting job and its report, in one worker call (no Qt here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dippas.dtype import float255_to_dtype


@dataclass
class InpaintingOutput:
    """What the widget's computation returns.

    Attributes
    ----------
    image : ndarray
        The anonymized image, same dtype as the input (rounded and clipped).
    edges : ndarray of bool or None
        Pixels taken from the denoised original.
    params : dict
        The core's parameters record.
    report : dict
        :func:`dippas.report.anonymization_report` of input and output.
    """

    image: np.ndarray
    edges: np.ndarray | None
    params: dict
    report: dict


def inpaint_with_report(image: np.ndarray, fingerprint: np.ndarray | None = None, *,
                        job, progress=None, cancel=None) -> InpaintingOutput:
    """Run an inpainting job with its edge mask, then the report (one worker call).

    Parameters
    ----------
    image : ndarray
        uint8 or uint16 photo.
    fingerprint : ndarray, optional
        K for the attribution part of the report.
    job : dippas.jobs.InpaintingJob
    progress, cancel
        Progress callback and cancel token of the core.
    """
    from dippas.inpainting import inpaint_anonymize_result
    from dippas.report import anonymization_report

    res = inpaint_anonymize_result(image, profile=job.recipe(), progress=progress, cancel=cancel)
    out = float255_to_dtype(res.image, image.dtype)
    report = anonymization_report(image, out, fingerprint)
    return InpaintingOutput(image=out, edges=res.edges, params=res.params, report=report)
