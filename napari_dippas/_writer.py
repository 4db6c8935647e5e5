"""Metadata-free writers: PNG and TIFF through :func:`dippas.io.save_image`."""

from __future__ import annotations

from typing import Any

from ._layers import image_to_uint8


def _write(path: str, data: Any, fmt: str) -> list[str]:
    from dippas.io import save_image

    return [str(save_image(path, image_to_uint8(data), fmt=fmt, force=True))]


def write_png(path: str, data: Any, meta: dict) -> list[str]:
    """Write an image layer as PNG with no metadata (only IHDR, IDAT, IEND)."""
    return _write(path, data, "png")


def write_tiff(path: str, data: Any, meta: dict) -> list[str]:
    """Write an image layer as TIFF with no metadata tags."""
    return _write(path, data, "tiff")
