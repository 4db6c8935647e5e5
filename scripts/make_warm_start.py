"""Fit the packaged warm start of a DIPPAS network (Reptile meta-learning).

The inversion fits a network from fresh weights to every photo. A warm start
is an initialisation meta-learned so that the inversion's own procedure —
Adam from a fresh state at the preset's learning rate, the preset's input
noise, the fingerprint-injection loss — fits a new image in fewer steps.
Reptile (Nichol et al., 2018) does it with nothing but that procedure:

    for each task t (a random crop of a training image, a fresh z and seed):
        phi <- run the preset's inversion for ``--inner`` steps from theta
        theta <- theta + eps_t * (phi - theta),  eps_t = eps * (1 - t / T)

and at the end each batch-normalised convolution of theta is scaled back to
its initial norm (:func:`rescale_to`: the same function, a fresh start's
step size; without it the fits' weight growth made the warm start need
1.7x more iterations, ``docs/inversion.md``).

The training images are the public-domain photos that ship with
scikit-image (no download), in colour, gray ones replicated to RGB; the
astronaut is left out because the README's demo uses it. The injected
pattern is Gaussian of the spread of a camera fingerprint (std 0.4); its
gain gamma stays near zero at these steps, as it does on real photos.

Writes ``src_core/dippas/data/warm_start_<digest>.pt`` (see
:mod:`dippas.dip.warm_start`): the weights, the network signature and the
settings used, loadable with ``torch.load(weights_only=True)``.

Usage::

    OMP_NUM_THREADS=1 python scripts/make_warm_start.py --preset fast \\
        [--tasks 120] [--inner 150] [--side 96] [--eps 1.0] [--seed 0]

(the packaged file: these defaults, about 20 minutes on one core).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

#: scikit-image's bundled photos used for training (the demo's astronaut is not).
TRAINING_IMAGES = ("camera", "coffee", "chelsea", "rocket", "immunohistochemistry",
                   "hubble_deep_field", "retina", "moon", "grass", "gravel", "brick",
                   "coins", "cell", "clock", "colorwheel")


def training_images() -> list[np.ndarray]:
    """The training photos as uint8 RGB arrays."""
    import skimage.data

    out = []
    for name in TRAINING_IMAGES:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        out.append(np.ascontiguousarray(img[:, :, :3]).astype(np.uint8))
    return out


def random_crop(images: list[np.ndarray], side: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``side x side`` crop of a random image, randomly flipped."""
    img = images[rng.integers(len(images))]
    h, w = img.shape[:2]
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = img[y:y + side, x:x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    return np.ascontiguousarray(crop)


def inner_fit(theta: dict, crop: np.ndarray, preset, steps: int, seed: int,
              rng: np.random.Generator) -> tuple[dict, float]:
    """Run the preset's inversion for ``steps`` from ``theta``; its weights and last PSNR."""
    from dippas.dip import Inversion

    pattern = rng.normal(0.0, 0.4, crop.shape[:2]).astype(np.float32)
    task = preset.with_overrides(seed=seed, max_iter=steps, stop_psnr=99.0, save_psnr=99.0)
    inv = Inversion(crop, pattern, task, device="cpu")
    inv.network.load_state_dict(theta)
    last = None
    while not inv.done:
        last = inv.step()
    return {k: v.detach().clone() for k, v in inv.network.state_dict().items()}, last.psnr


def rescale_to(theta: dict, reference: dict) -> dict:
    """``theta`` with each batch-normalised convolution scaled to ``reference``'s norm.

    Every convolution of the network feeds a BatchNorm, so scaling its weight
    (and bias) leaves the network's function unchanged; but Adam's steps have
    a fixed size, so a weight that grew during the fits would learn slower
    from the warm start than from the random initialisation. Giving each
    convolution back its initial norm keeps the meta-learned function and
    the step size of a fresh start.
    """
    out = dict(theta)
    for key, weight in theta.items():
        prefix = key[: -len(".conv.weight")] if key.endswith(".conv.weight") else None
        if prefix is None or f"{prefix}.bn.weight" not in theta:
            continue
        scale = float(reference[key].norm()) / max(float(weight.norm()), 1e-12)
        out[key] = weight * scale
        if f"{prefix}.conv.bias" in theta:
            out[f"{prefix}.conv.bias"] = theta[f"{prefix}.conv.bias"] * scale
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--tasks", type=int, default=120, help="outer Reptile steps")
    ap.add_argument("--inner", type=int, default=150, help="inversion steps per task")
    ap.add_argument("--side", type=int, default=96, help="crop side of a task")
    ap.add_argument("--eps", type=float, default=1.0, help="initial outer step (annealed to 0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="file to write (default: the package's warm start of this network)")
    args = ap.parse_args(argv)

    import torch

    from dippas.dip.inversion import build_network
    from dippas.dip.presets import get_preset
    from dippas.dip.warm_start import FORMAT, network_signature, warm_start_path

    preset = get_preset(args.preset).with_overrides(warm_start=False)
    torch.manual_seed(args.seed)
    initial = {k: v.detach().clone() for k, v in build_network(preset).state_dict().items()}
    theta = {k: v.clone() for k, v in initial.items()}
    images = training_images()
    rng = np.random.default_rng(args.seed)
    t0, recent = time.perf_counter(), []
    for t in range(args.tasks):
        crop = random_crop(images, args.side, rng)
        phi, psnr = inner_fit(theta, crop, preset, args.inner, seed=int(rng.integers(2**31)), rng=rng)
        eps = args.eps * (1.0 - t / args.tasks)
        for key, value in theta.items():
            if value.is_floating_point():
                value.add_(phi[key] - value, alpha=eps)
            else:
                value.copy_(phi[key])
        recent.append(psnr)
        if (t + 1) % 10 == 0:
            print(f"task {t + 1}/{args.tasks}: PSNR after {args.inner} steps, mean of the last 10 "
                  f"{np.mean(recent[-10:]):.2f} dB ({time.perf_counter() - t0:.0f} s)", flush=True)
    theta = rescale_to(theta, initial)
    path = args.out or warm_start_path(preset)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("preset", "tasks", "inner", "side", "eps", "seed")}
    torch.save({"format": FORMAT, "signature": network_signature(preset),
                "state_dict": theta, "settings": settings,
                "training_images": list(TRAINING_IMAGES)}, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
