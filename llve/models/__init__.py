"""The model registry: an explicit dict from name to builder (no directory scanning).

``build(name, preset="paper"|"small"|"tiny", weights=None, **overrides)`` returns the model (or,
for ``darkdiff``, its parts). Each entry names its builder by import path and is imported on
first use, so this package (below the papers) never imports a paper package at import time:
imports run papers -> models, never the other way (DESIGN.md §1, §5).

Every builder takes the preset name and config-field overrides and returns a model in train
mode. ``weights`` is a local file: an llve training checkpoint (``llve.train``) or, where a
paper's builder supports it, the official release's checkpoint format.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable

from llve.errors import UnknownNameError

MODELS: dict[str, str] = {
    "fastdvdnet": "llve.models.fastdvdnet:build",
    "lamba": "llve.papers.lamba.network:build",
    "raft_small": "llve.models.raft:build",
    "sid_unet": "llve.models.sid_unet:build",
    "smid": "llve.models.smid:build",
    "uhr_cyclegan": "llve.papers.uhr_cyclegan.network:build",
    "uhr_cyclegan_discriminator": "llve.papers.uhr_cyclegan.network:build_discriminator",
}
"""Model name -> ``"module:function"`` of its builder ``(preset, **overrides) -> nn.Module``."""

WEIGHT_LOADERS: dict[str, str] = {
    "lamba": "llve.papers.lamba.network:load_weights",
    "raft_small": "llve.models.raft:load_weights",
}
"""Models whose ``weights=`` file may also be in their official release's format: name ->
``"module:function"`` of ``(model, path) -> model``. Every other model loads llve training
checkpoints (``llve.train.load_model_weights``)."""


def _import(target: str) -> Callable:
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def builder(name: str) -> Callable:
    """The builder function of registered model ``name`` (imported on first use)."""
    try:
        return _import(MODELS[name])
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}: registered models are {', '.join(sorted(MODELS)) or 'none'}"
        ) from None


def build(name: str, preset: str = "paper", weights: str | os.PathLike | None = None,
          **overrides):
    """Build registered model ``name`` with configuration ``preset`` and field ``overrides``.

    With ``weights`` (a local path) the model's state is loaded from that file with
    ``strict=True``: an llve training checkpoint, or for the models in :data:`WEIGHT_LOADERS`
    also their official release's checkpoint. A file for another configuration raises a
    ``CheckpointError`` naming the keys or shapes that do not match.
    """
    model = builder(name)(preset, **overrides)
    if weights:
        if name in WEIGHT_LOADERS:
            return _import(WEIGHT_LOADERS[name])(model, weights)
        from llve.train import load_model_weights

        load_model_weights(model, weights)
    return model
