"""Bayer colour-filter-array patterns, named by their top-left 2×2 block in reading order.

``"RGGB"`` means row 0 is R G and row 1 is G B. The two greens are told apart by the row they
share: ``G1`` sits on the red row, ``G2`` on the blue row. Every pattern llve accepts is one of
the four Bayer phases; anything else (X-Trans, Foveon, Quad Bayer) is rejected by name.
"""

from __future__ import annotations

import numpy as np

from llve.errors import UnsupportedSensorError

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")

# Plane names in packed order; "RGBG" is SID's/ELD's order, "RGGB" Brooks et al.'s (R, Gr, Gb, B).
PACK_ORDERS = {"RGBG": ("R", "G1", "B", "G2"), "RGGB": ("R", "G1", "G2", "B")}


def plane_positions(pattern: str) -> dict[str, tuple[int, int]]:
    """(row, column) inside the 2×2 block of each of R, G1, B, G2 for a Bayer ``pattern``."""
    if pattern not in BAYER_PATTERNS:
        raise UnsupportedSensorError(
            f"CFA pattern {pattern!r} is not a 2x2 Bayer pattern; expected one of {BAYER_PATTERNS}")
    positions = {}
    for index, colour in enumerate(pattern):
        row, column = divmod(index, 2)
        if colour == "G":
            colour = "G1" if "R" in pattern[2 * row:2 * row + 2] else "G2"
        positions[colour] = (row, column)
    return positions


def pattern_from_rawpy(raw_pattern, color_desc: str, source: str = "raw file") -> str:
    """Our pattern name from rawpy's ``raw_pattern`` (2×2 colour indices) and ``color_desc``."""
    grid = np.asarray(raw_pattern)
    desc = color_desc.decode() if isinstance(color_desc, bytes) else str(color_desc)
    if grid.shape != (2, 2):
        raise UnsupportedSensorError(
            f"{source}: CFA repeat pattern has shape {grid.shape}, expected a 2x2 Bayer pattern "
            "(X-Trans and other non-Bayer sensors are not supported)")
    try:
        name = "".join(desc[int(index)] for index in grid.ravel())
    except IndexError:
        raise UnsupportedSensorError(
            f"{source}: raw_pattern {grid.tolist()} does not index color_desc {desc!r}") from None
    if name not in BAYER_PATTERNS:
        raise UnsupportedSensorError(
            f"{source}: CFA pattern {name!r} (color_desc {desc!r}) is not a Bayer RGGB phase")
    return name


def colour_index_grid(pattern: str) -> np.ndarray:
    """2×2 array of RGB channel indices (0=R, 1=G, 2=B) for ``pattern``."""
    plane_positions(pattern)  # validates
    return np.array(["RGB".index(colour) for colour in pattern]).reshape(2, 2)
