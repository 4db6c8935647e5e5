"""Sample data: a photo with a simulated camera fingerprint, and the fingerprint.

Only the synthetic sample is offered: the Dresden photos used in tests may be
used for research and testing only, so they are not redistributed.
"""

from __future__ import annotations

from ._layers import fingerprint_layer_kwargs


def make_camera_sample() -> list[tuple]:
    """Astronaut (public domain) with a simulated PRNU, and that PRNU."""
    from dippas.samples import camera_sample

    image, k = camera_sample(256)
    return [
        (image, {"name": "camera sample", "rgb": True}, "image"),
        (k, fingerprint_layer_kwargs(k, "camera fingerprint"), "image"),
    ]
