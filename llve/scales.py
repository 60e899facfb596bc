"""Scales: one name (``ci`` / ``small`` / ``paper``) resolves into every size a notebook needs.

Notebooks never branch on magic numbers; they ask ``resolve_scale(scale)`` and read fields.

| scale   | purpose                                          | where                     |
|---------|--------------------------------------------------|---------------------------|
| ``ci``    | every cell runs, numbers have the right shape  | CPU, tests, seconds       |
| ``small`` | a meaningful miniature reproduction (default)  | 2-core CPU, minutes/paper |
| ``paper`` | the paper's hyperparameters and datasets       | GPU(s), hours to days     |

Architecture facts (parameter and MAC counts) always use the *paper* model configuration,
whatever the scale: they are counted on the ``meta`` device and cost no memory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from llve.errors import InvalidInputError, UnknownNameError


@dataclass(frozen=True)
class Scale:
    name: str
    model_preset: str  # which model preset trains at this scale: "tiny" | "small" | "paper"
    image_size: int  # side of synthetic clean images (pixels of the full-resolution image)
    crop_size: int  # training crop side (full-resolution pixels; multiple of 32)
    train_images: int  # distinct clean source images used for training
    eval_images: int  # distinct images scored in tables
    iterations: int  # optimiser steps of a training notebook
    batch_size: int
    video_frames: int  # frames in synthetic evaluation clips
    checkpoint_every: int  # optimiser steps between checkpoints
    benchmark_repeats: int  # timed repetitions per latency measurement (median reported)


SCALES: dict[str, Scale] = {
    "ci": Scale("ci", "tiny", image_size=128, crop_size=64, train_images=4, eval_images=2,
                iterations=4, batch_size=2, video_frames=5, checkpoint_every=2,
                benchmark_repeats=1),
    "small": Scale("small", "small", image_size=512, crop_size=128, train_images=16,
                   eval_images=6, iterations=400, batch_size=4, video_frames=9,
                   checkpoint_every=100, benchmark_repeats=3),
    "paper": Scale("paper", "paper", image_size=1024, crop_size=512, train_images=1000,
                   eval_images=50, iterations=1_000_000, batch_size=8, video_frames=30,
                   checkpoint_every=10_000, benchmark_repeats=10),
}


def resolve_scale(name: str | Scale, **overrides) -> Scale:
    """The :class:`Scale` called ``name``, with any field replaced by ``overrides``."""
    if isinstance(name, Scale):
        scale = name
    else:
        try:
            scale = SCALES[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown scale {name!r}: expected one of {', '.join(SCALES)}") from None
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Scale)}
    if unknown:
        raise InvalidInputError(f"unknown Scale field(s) {sorted(unknown)} in overrides")
    return dataclasses.replace(scale, **overrides)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a clear error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device={device!r} was asked for but no CUDA GPU is visible; "
                                "use --device cpu or auto")
    if device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise InvalidInputError(f"unknown device {device!r}: expected auto, cpu or cuda[:N]")
    return torch.device(device)
