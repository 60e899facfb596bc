"""Accuracy of the shared flow estimators and of uhr_cyclegan's temporal smoothing, one run.

    python benchmarks/flow_and_smoothing.py                 # CPU, DIS and RAFT-small (if found)
    python benchmarks/flow_and_smoothing.py --device cuda
    python benchmarks/flow_and_smoothing.py --methods dis   # no RAFT

1. Flow: end-point error (px, mean over all pixels and over pixels whose true match stays in
   the frame) of each method on three synthetic ``dynamic_clip`` clips (astronaut, coffee,
   chelsea; 192², 5 frames, up to 6 px per frame), against their exact flow.
2. Smoothing, synthetic: a 24-frame ``dynamic_clip`` (astronaut, 192², up to 4 px/frame),
   per-frame brightness flicker ±10 % and colour ±3 % (``add_flicker``); brightness flicker,
   warped flicker (true flow) and ghosting error (moving pixels, against the clean clip) of the
   clean, flickering and smoothed clips, per flow method.
3. Smoothing, real: 24 frames (from 196: a car passes) of
   ``../shared/data/real_video/intel_sample-videos_car-detection.mp4`` at 216 px high,
   darkened by ``beta·(alpha·x)^gamma`` (one ``random_srgb_darkening_params`` draw, no noise)
   and flickered as above. Moving pixels: ≥ 3 px of DIS flow between the bright clean frames
   (the cars; DIS because RAFT-small's 1/8-resolution flow bleeds across the cars' edges);
   warped flicker uses that flow too (named in the output).

Each smoothing runs three ways per flow method: the paper's 256 px limit, the limit scaled to
the frame width (``scaled_max_motion``: 256 px per 7680 px), and scaled plus the optional
photometric check ``max_difference=0.03``.

The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llve.data import shared_sample  # noqa: E402
from llve.data.images import clean_image  # noqa: E402
from llve.data.synth import random_srgb_darkening_params  # noqa: E402
from llve.data.video import dynamic_clip, load_video  # noqa: E402
from llve.metrics import inside_mask  # noqa: E402
from llve.models.flow import end_point_error, estimate_flow, resolve_method  # noqa: E402
from llve.papers.uhr_cyclegan.temporal import (  # noqa: E402
    add_flicker, brightness_flicker, ghosting_error, scaled_max_motion, smooth_clip,
    warped_flicker)

REAL_VIDEO = "real_video/intel_sample-videos_car-detection.mp4"


def inside(flow: np.ndarray) -> np.ndarray:
    import torch

    return inside_mask(torch.from_numpy(flow).permute(0, 3, 1, 2))[:, 0].numpy()  # T×H×W


def flow_accuracy(methods: list[str], device: str) -> dict:
    results = {}
    for name, seed in (("astronaut", 0), ("coffee", 1), ("chelsea", 2)):
        clip = dynamic_clip(clean_image(name), frames=5, crop=192, seed=seed, max_speed=6.0)
        row = {"motion_px": float(np.linalg.norm(clip.flow_forward, axis=-1).mean())}
        valid = inside(clip.flow_forward)
        for method in methods:
            start = time.perf_counter()
            flows = np.stack([estimate_flow(clip.frames[t], clip.frames[t + 1], method,
                                            device=device).flow for t in range(4)])
            row[method] = {"epe_px": end_point_error(flows, clip.flow_forward),
                           "epe_inside_px": end_point_error(flows, clip.flow_forward, valid),
                           "seconds_per_pair": (time.perf_counter() - start) / 4}
        results[name] = row
    return results


def scores(clean, frames, flow, mask, flow_source) -> dict:
    return {"brightness_flicker": brightness_flicker(frames),
            f"warped_flicker[{flow_source}]": warped_flicker(frames, flow),
            "ghosting_error": ghosting_error(frames, clean, mask)}


def smoothing(clean, flickering, flow, mask, flow_source, methods, device) -> dict:
    """Scores of the clean, flickering and smoothed clips: per flow method, with the paper's
    256 px limit, with it scaled to the frame width, and scaled plus the photometric check."""
    out = {"clean": scores(clean, clean, flow, mask, flow_source),
           "flickering": scores(clean, flickering, flow, mask, flow_source),
           "moving_fraction": float(mask.mean())}
    scaled = scaled_max_motion(clean.shape[2])
    variants = {"256px": {}, f"{scaled:.1f}px": {"max_motion": scaled},
                f"{scaled:.1f}px+diff0.03": {"max_motion": scaled, "max_difference": 0.03}}
    for method in methods:
        for label, options in variants.items():
            start = time.perf_counter()
            smoothed = smooth_clip(flickering, flow_method=method, device=device, **options)
            row = scores(clean, smoothed, flow, mask, flow_source)
            row["seconds_per_frame"] = (time.perf_counter() - start) / len(clean)
            out[f"smoothed[{method},{label}]"] = row
    return out


def moving_mask(flows: np.ndarray, threshold: float) -> np.ndarray:
    """T×H×W: motion ≥ threshold towards the next frame (the previous one for the last)."""
    magnitude = np.linalg.norm(flows, axis=-1)
    return np.concatenate([magnitude, magnitude[-1:]]) >= threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--methods", nargs="+", default=["dis", "raft_small"])
    args = parser.parse_args()
    methods = [m for m in args.methods if m == "dis" or resolve_method("auto") == "raft_small"]
    report = {"methods": methods, "flow": flow_accuracy(methods, args.device)}
    print(json.dumps(report["flow"], indent=1))

    clip = dynamic_clip(clean_image("astronaut"), frames=24, crop=192, seed=5, max_speed=4.0)
    flickering, _ = add_flicker(clip.frames, amplitude=0.1, colour_amplitude=0.03, seed=1)
    report["synthetic"] = smoothing(clip.frames, flickering, clip.flow_forward,
                                    moving_mask(clip.flow_forward, 0.5), "true flow", methods,
                                    args.device)
    print(json.dumps(report["synthetic"], indent=1))

    path = shared_sample(REAL_VIDEO)
    if path is not None:
        bright = load_video(path, max_frames=24, start=196, size=216)
        params = random_srgb_darkening_params(seed=3)
        dark = (params.beta * (params.alpha * bright) ** params.gamma).astype(np.float32)
        flickering, _ = add_flicker(dark, amplitude=0.1, colour_amplitude=0.03, seed=2)
        reference = "dis"
        flows = np.stack([estimate_flow(bright[t], bright[t + 1], reference,
                                        device=args.device).flow for t in range(len(dark) - 1)])
        report["real"] = {"darkening": {"gamma": params.gamma, "alpha": params.alpha,
                                        "beta": params.beta, "mean": float(dark.mean())},
                          **smoothing(dark, flickering, flows, moving_mask(flows, 3.0),
                                      f"{reference} on the bright clean frames", methods,
                                      args.device)}
        print(json.dumps(report["real"], indent=1))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
