"""``dippas demo``: the README's main job on the bundled sample."""

from __future__ import annotations

import argparse

NAME = "demo"
ORDER = 90
HELP = "run the demo on the bundled sample photo (simulated camera fingerprint)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    p.add_argument("--size", type=int, default=256, help="side of the sample crop (default 256)")
    p.add_argument("--force", action="store_true", help="overwrite files from an earlier demo")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..correlation import attribution_scores
    from ..io import save_fingerprint, save_image
    from ..samples import camera_sample
    from ._common import print_json, progress_bar

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(3, "demo", unit="step") as bar:
        image, k = camera_sample(args.size)
        save_image(out / "sample.png", image, force=args.force)
        save_fingerprint(out / "sample_fingerprint.npy", k, force=args.force)
        bar.update(1)
        scores = attribution_scores(image, k)
        bar.update(1)
        from ..samples import simulated_fingerprint

        other = attribution_scores(image, simulated_fingerprint(k.shape, seed=1))
        bar.update(1)
    report = {"sample": str(out / "sample.png"), "fingerprint": str(out / "sample_fingerprint.npy"),
              "own_camera": scores, "other_camera": other}
    if args.json:
        print_json(report)
    else:
        print(f"sample photo      {report['sample']}")
        print(f"own camera        NCC {scores['ncc']:+.4f}  PCE {scores['pce']:.1f}  "
              f"{'MATCH' if scores['match'] else 'no match'}")
        print(f"another camera    NCC {other['ncc']:+.4f}  PCE {other['pce']:.1f}  "
              f"{'MATCH' if other['match'] else 'no match'}")
    return 0
