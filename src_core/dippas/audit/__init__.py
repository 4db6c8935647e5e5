"""``dippas audit``: attack images the way a forensic examiner would.

Per image: whole-image NCC and PCEs, edge-only NCC, block maxima, the same
after JPEG recompression, resizing and a crop shift, and a second residual
extractor. Per set: fingerprint re-estimation and linking. Every test has a
score, a threshold at a stated false-alarm probability and a verdict. See
``docs/audit.md``.
"""

from .camera import (
    MIN_CAMERA_PHOTOS,
    CameraFingerprint,
    camera_fingerprint,
    default_cache_dir,
    usable_photos,
)
from .image_tests import ImageAudit, audit_image
from .nulls import DEFAULT_PFA
from .options import AuditOptions
from .result import MATCH, NO_MATCH, TestResult
from .run import AuditReport, audit, report_lines
from .set_tests import SetAudit, audit_set

__all__ = [
    "DEFAULT_PFA",
    "MATCH",
    "MIN_CAMERA_PHOTOS",
    "NO_MATCH",
    "AuditOptions",
    "AuditReport",
    "CameraFingerprint",
    "ImageAudit",
    "SetAudit",
    "TestResult",
    "audit",
    "audit_image",
    "audit_set",
    "camera_fingerprint",
    "default_cache_dir",
    "report_lines",
    "usable_photos",
]
