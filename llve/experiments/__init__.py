"""Per-paper workflows the notebooks call: datasets, training recipes, evaluations, paper numbers.

Models live in ``llve.models``; what a paper *does* with them (its training recipe, its tables,
the numbers it reported) lives here, one module per paper.
"""

from __future__ import annotations

import importlib
from typing import Callable

from llve.errors import UnknownNameError

TRAINERS: dict[str, str] = {
    "lamba": "llve.experiments.lamba",
}
"""Paper -> module whose ``train_model(name, scale, seed, device, ..., data_root)`` the
``llve train`` command calls (imported on demand: each pulls in its own models)."""


def trainer(paper: str) -> Callable:
    """The ``train_model`` function of ``paper`` (``llve train --paper ...``)."""
    try:
        module = TRAINERS[paper]
    except KeyError:
        raise UnknownNameError(f"no training recipe for paper {paper!r}: papers with one are "
                               f"{', '.join(sorted(TRAINERS))}") from None
    return importlib.import_module(module).train_model
