"""The model registry: an explicit dict from name to builder (no directory scanning).

``build(name, preset="paper"|"small"|"tiny", **overrides)`` returns the model (or, for
``darkdiff``, its parts). Every builder takes the preset name and config-field overrides.
"""

from __future__ import annotations

from typing import Callable

from llve.errors import UnknownNameError
from llve.models import lamba, sid_unet

MODELS: dict[str, Callable] = {
    "lamba": lamba.build,
    "sid_unet": sid_unet.build,
}


def build(name: str, preset: str = "paper", **overrides):
    """Build registered model ``name`` with configuration ``preset`` and field ``overrides``."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown model {name!r}: registered models are {', '.join(sorted(MODELS)) or 'none'}"
        ) from None
    return builder(preset, **overrides)
