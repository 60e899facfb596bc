"""The builders of Lamba & Mitra's reproduced figures (Fig. 5's m sweep, real cameras).

Each returns the matplotlib figure and the numbers behind it, so a notebook shows the picture
and records the numbers in one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llve.data import isp, raw, shared_sample
from llve.metrics import colour_cast
from llve.papers.lamba.amplifier import amplify_and_restore
from llve.papers.lamba.colour_chart import camera_adaptation
from llve.papers.lamba.demo import REAL_RAW_FILES, demo_state, downsample_mosaic, real_demo_image
from llve.papers.lamba.experiment import restore
from llve.plots import image_grid

M_SWEEP = tuple(round(0.1 * step, 1) for step in range(1, 10))  # Fig. 5: m = 0.1 ... 0.9
REAL_DARKENING = 100.0  # the real raws receive this much less light (ELD noise added)


def scale_space_views(mosaic: np.ndarray):
    """An amplified H×W mosaic and one channel of what LSE (1/2), MSE (1/8) and HSE (1/32)
    receive: the unshuffles that move the network down in scale without losing a value."""
    mosaic = torch.as_tensor(np.asarray(mosaic, dtype=np.float32)).clip(0, 1)[None, None]
    half = F.pixel_unshuffle(mosaic, 2)  # 1×4×H/2×W/2: R, G1, G2, B
    views = [mosaic[0, 0], half[0, 0], F.pixel_unshuffle(half, 4)[0, 0],
             F.pixel_unshuffle(half, 16)[0, 0]]
    return image_grid([view.numpy() ** (1 / 2.2) for view in views],
                      [f"mosaic {tuple(mosaic.shape[-2:])}",
                       f"LSE input: R plane {tuple(half.shape[-2:])}",
                       f"MSE input: 1 of 64 ch {tuple(views[2].shape)}",
                       f"HSE input: 1 of 1024 ch {tuple(views[3].shape)}"])


def m_sweep(model: nn.Module, test_set: Sequence[Mapping[str, Any]], ratio: float = 100,
            ms: Sequence[float] = M_SWEEP):
    """Fig. 5: one test image of exposure ``ratio`` restored with Eq. 5 for each m.

    Returns (figure, factors): the restorations titled with their factor, and the factors.
    """
    item = next(entry for entry in test_set if entry["ratio"] == ratio)
    sweep = [restore(model, item, "weighted", m) for m in ms]
    factors = [factor for _, factor in sweep]
    figure = image_grid([output for output, _ in sweep] + [item["target"]],
                        [f"m = {m}: A = {factor:.0f}" for m, factor in zip(ms, factors)]
                        + [f"target (ratio {ratio:g})"], columns=5)
    return figure, factors


def real_raw_files() -> list[str]:
    """The real raw files beside the project (``../shared/data/real_raw``) that are present."""
    paths = (shared_sample(relative) for relative in REAL_RAW_FILES.values())
    return [str(path) for path in paths if path is not None]


def real_raw_restorations(models: Mapping[str, nn.Module], size: int, seed: int = 0,
                          darkening: float = REAL_DARKENING):
    """Real Canon raws darkened ``darkening``× with ELD noise, amplified by Eq. 5 (m = 0.5) from
    their pixels alone and restored: rows of [amplified input, each model's restoration,
    reference].

    Returns (figure or None when no file is present, the file names used).
    """
    files = real_raw_files()
    panels, titles = [], []
    for path in files:
        frame = real_demo_image(path, size=size, darkening=darkening, seed=seed)
        for index, (name, model) in enumerate(models.items()):
            state = demo_state(frame, model, "weighted", 0.5)
            if index == 0:
                panels.append(state.amplified)
                titles.append(f"{frame.name}: ×{state.factor:.0f} (Eq. 5)")
            panels.append(state.restored)
            titles.append(name)
        panels.append(frame.reference)
        titles.append("reference (not dark)")
    names = [path.rsplit("/", 1)[-1] for path in files]
    return (image_grid(panels, titles, columns=len(models) + 2) if panels else None), names


def real_camera_files() -> list[str]:
    """Every raw file in ``../shared/data/real_raw`` (DNGs of Canon cameras), sorted."""
    folder = shared_sample("real_raw")
    return sorted(str(path) for path in folder.glob("*.dng")) if folder is not None else []


def real_camera_restorations(model: nn.Module, size: int, variant: str = "wb+matrix"):
    """Every real raw file as recorded, through the public pipeline: ``read_raw`` -> Eq. 5
    (m = 0.5) -> ``model``, each with its own CFA pattern; rows of [reference ISP, the model,
    the model after the no-retraining camera adaptation ``variant``
    (``llve.papers.lamba.colour_chart.camera_adaptation``)], at most ``size`` px a side.

    Returns (figure or None when no file is present, the file names used).
    """
    files = real_camera_files()
    panels, titles = [], []
    for path in files:
        recorded = raw.read_raw(path)
        small = dataclasses.replace(
            recorded, mosaic=downsample_mosaic(recorded.mosaic, recorded.pattern, size))
        panels.append(isp.render_srgb(small))
        titles.append(f"{recorded.path.name}: reference ISP")
        for name, image in (("Lamba", small), (f"Lamba + {variant}",
                                                camera_adaptation(small, variant))):
            restored, factors = amplify_and_restore(model, image, "weighted", m=0.5)
            panels.append(restored[0])
            titles.append(f"{name} (×{float(factors[0]):.1f}, Eq. 5)")
    names = [path.rsplit("/", 1)[-1] for path in files]
    return (image_grid(panels, titles, columns=3) if panels else None), names


def lamp_colour_casts(model: nn.Module, test_set: Sequence[Mapping[str, Any]]):
    """Fig. 9: one lamp scene (ratio 100; on real data the most saturated frame) restored after Eq. 4 and after Eq. 5, with each
    output's colour cast (mean of G − (R + B)/2, output minus target; positive = greenish).

    Returns (figure, casts by amplifier).
    """
    candidates = [entry for entry in test_set if entry["ratio"] == 100] or list(test_set)
    lamps = [entry for entry in candidates if entry.get("lamps")]
    # without synthetic lamps (SID Sony): the frame whose short exposure saturates most
    item = lamps[0] if lamps else max(candidates, key=lambda entry: float(
        np.mean(np.asarray(entry["mosaic"]) >= 1.0)))
    outputs = {name: restore(model, item, name)[0] for name in ("mean", "weighted")}
    target = torch.as_tensor(np.asarray(item["target"])).permute(2, 0, 1)[None]
    casts = {name: float(colour_cast(output, target)[0]) for name, output in outputs.items()}
    figure = image_grid([outputs["mean"], outputs["weighted"], target],
                        [f"Eq. 4 (naive mean), cast {casts['mean']:+.3f}",
                         f"Eq. 5 (weighted), cast {casts['weighted']:+.3f}", "target"])
    return figure, casts
