"""Bayer mosaics as network inputs: checks, phase-keeping padding and the crop back.

Networks that read a raw mosaic (Lamba, the SID U-Net, DarkDiff's regression baseline) need
its sides to be a multiple of their coarsest scale, and some need one Bayer phase. Reflect
padding does both without changing any pixel's colour (``pad_mosaic``); ``crop_output`` cuts
the result back. ``check_model_input`` is the one check every registered model runs on its
input tensor: floating point, the model's dtype, finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llve.data.cfa import BAYER_PATTERNS
from llve.errors import InvalidInputError


def check_model_input(x: torch.Tensor, dtype: torch.dtype, what: str = "input") -> None:
    """Raise ``InvalidInputError`` unless ``x`` is a finite float tensor of ``dtype``.

    Integer tensors (for example uint16 digital numbers) must first be normalised (black level
    subtracted, divided by white − black: ``llve.data.read_raw`` does it); float64 input to a
    float32 model must be cast by the caller (``x.float()``): a silent cast would hide a data
    path that doubles memory. One NaN or inf pixel spreads through every convolution into the
    whole output, so it is refused here, naming how many there are.
    """
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InvalidInputError(
            f"{what} has dtype {x.dtype}; expected a normalised float tensor (black level "
            "subtracted, divided by white − black: llve.data.read_raw does it)")
    if x.dtype != dtype:
        raise InvalidInputError(
            f"{what} has dtype {x.dtype} but the model expects {dtype}; cast the input "
            f"(x.to({dtype})) or the model")
    if x.device.type == "meta":  # shapes only (MAC counting): there are no values to check
        return
    finite = torch.isfinite(x.detach())
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InvalidInputError(
            f"{what} contains {bad} NaN or inf value(s) of {x.numel()}; every output pixel "
            "would be NaN. Replace them (e.g. torch.nan_to_num) or fix the data source")


def check_unpacked_mosaic(mosaic: torch.Tensor) -> None:
    """Raise ``InvalidInputError`` unless ``mosaic`` is an unpacked Bayer mosaic N×1×H×W."""
    if not isinstance(mosaic, torch.Tensor) or mosaic.ndim != 4 or mosaic.shape[1] != 1:
        shape = tuple(mosaic.shape) if hasattr(mosaic, "shape") else type(mosaic).__name__
        raise InvalidInputError(
            f"mosaic must be an unpacked Bayer mosaic N×1×H×W, got shape {shape}")


def check_mosaic(mosaic: torch.Tensor, pattern: str) -> None:
    """Raise ``InvalidInputError`` unless ``mosaic`` is N×C×H×W with even, nonzero H and W."""
    if mosaic.ndim != 4:
        raise InvalidInputError(f"mosaic must be N×C×H×W, got shape {tuple(mosaic.shape)}")
    if pattern not in BAYER_PATTERNS:
        raise InvalidInputError(f"pattern must be one of {BAYER_PATTERNS}, got {pattern!r}")
    height, width = mosaic.shape[-2:]
    if height == 0 or width == 0 or height % 2 or width % 2:
        raise InvalidInputError(
            f"mosaic height and width must be even and nonzero (whole 2×2 Bayer blocks), "
            f"got {height}×{width}")


def pad_mosaic(mosaic: torch.Tensor, pattern: str, multiple: int = 2,
               to_pattern: str | None = None) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflect-pad an N×C×H×W mosaic to a multiple of ``multiple``; return it and the crop box.

    Reflect padding never changes a pixel's colour: the padded sample at distance d outside an
    edge copies the sample at distance d inside it, and those two sit 2d apart, an even step.
    With ``to_pattern`` the top/left pads are 0 or 1 so the padded mosaic starts at that Bayer
    phase (for example BGGR -> RGGB pads one row and one column). The crop box
    (top, left, height, width) cuts a full-resolution output back to the input's pixels.
    Returns the input itself (no copy) when nothing needs padding.
    """
    check_mosaic(mosaic, pattern)
    height, width = mosaic.shape[-2:]
    top = left = 0
    if to_pattern is not None:
        # One padded row (column) in front swaps the pattern's rows (columns): the new first
        # row copies the old second one. Exactly one of the four shifts reaches ``to_pattern``.
        top, left = next((rows, columns) for rows in (0, 1) for columns in (0, 1)
                         if _shifted(pattern, rows, columns) == to_pattern)
    padded = reflect_pad(mosaic, left=left, right=-(width + left) % multiple,
                         top=top, bottom=-(height + top) % multiple)
    return padded, (top, left, height, width)


def reflect_pad(x: torch.Tensor, left: int = 0, right: int = 0, top: int = 0,
                bottom: int = 0) -> torch.Tensor:
    """Reflect padding of the last two dimensions by any amount (the input itself if none).

    ``F.pad(mode="reflect")`` needs each pad smaller than the size, so tiny inputs are padded in
    steps; every step is itself a reflection, so the colour argument above still holds.
    """
    while left or right or top or bottom:
        height, width = x.shape[-2:]
        step = (min(left, width - 1), min(right, width - 1), min(top, height - 1),
                min(bottom, height - 1))
        if not any(step):  # a 1-pixel-wide side cannot reflect: repeat its edge instead
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x


def _shifted(pattern: str, rows: int, columns: int) -> str:
    """The Bayer pattern after padding (or dropping) ``rows`` rows and ``columns`` columns in front."""
    grid = [pattern[0:2], pattern[2:4]]
    if rows:
        grid = grid[::-1]
    if columns:
        grid = [row[::-1] for row in grid]
    return "".join(grid)


def crop_output(image: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
    """Cut a full-resolution N×C×H'×W' output back to the box ``pad_mosaic`` returned."""
    top, left, height, width = crop
    if image.shape[-2:] == (height, width):
        return image
    return image[..., top:top + height, left:left + width]

