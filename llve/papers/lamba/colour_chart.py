"""The released Lamba model's colours on a non-Sony camera; camera adaptations without retraining.

The authors' model was trained on SID's Sony A7S II raws with ground truth rendered by LibRaw
with the camera's as-shot white balance and Sony's colour matrix: it has Sony's raw colour
response and typical white balance built in. A Canon raw fed to it comes out with wrong colours.

:func:`camera_adaptation` rewrites a raw so that it looks to the model like a Sony raw:

- ``"none"``: unchanged.
- ``"wb"``: each raw plane is multiplied by the camera's own as-shot gain over Sony's typical
  gain (``SONY_A7S2_WB_GAINS``), so that when the model applies the Sony white balance it has
  learned, the camera's own white balance results.
- ``"wb+matrix"``: also maps the camera's colour space to Sony's through the colour matrices.
  Per 2×2 Bayer block, camera RGB is white-balanced (own gains), taken to linear sRGB with the
  file's ``camera_to_srgb``, back to white-balanced Sony RGB with Sony's matrix (from LibRaw's
  XYZ -> camera entry ``SONY_A7S2_XYZ_TO_CAMERA``, by the same dcraw recipe) and un-balanced with
  Sony's typical gains: one 3×3 matrix ``M``. Because each ``camera_to_srgb`` is normalised so
  that D65 white maps to white, this is the route camera RGB -> XYZ -> Sony RGB with a von Kries
  gain in each camera space (own as-shot -> Sony typical). It needs no ``xyz_to_camera`` (which
  LibRaw leaves empty for DNGs).

:func:`colour_chart_table` measures these on a 24-patch colour checker photographed by the
camera (``llve.data.colour``'s protocol: locate, normalise on the neutral row, CIEDE2000), beside
the reference ISP and LibRaw; :func:`colour_chart_figure` shows them. The model runs on the
file as recorded (a normal exposure, not a dark one: Eq. 5 then asks only a small factor) and,
optionally, on the file darkened synthetically (÷``darkening``, ELD noise, system gain 1).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from llve.data import colour, isp, raw, shared_sample, synth
from llve.data.raw import RawImage
from llve.errors import InvalidInputError, UnknownNameError
from llve.papers.lamba.amplifier import amplify_and_restore
from llve.papers.lamba.demo import downsample_mosaic

SONY_WB = np.asarray(synth.SONY_A7S2_WB_GAINS, dtype=np.float64)
SONY_CAMERA_TO_SRGB = raw.camera_to_srgb_from_xyz(synth.SONY_A7S2_XYZ_TO_CAMERA)
"""White-balanced Sony A7S II RGB -> linear sRGB, from LibRaw's matrix (dcraw recipe)."""

VARIANTS = {
    "none": "no adaptation",
    "wb": "raw planes × own / Sony typical WB gains",
    "wb+matrix": "WB gains and colour matrix mapped to Sony's",
}
"""The adaptations :func:`camera_adaptation` offers, with a short description."""

CHART_FILE = "real_raw/canon550d_magiclantern_colorchart.dng"  # under ../shared/data
CAPTION = ("A camera not seen in training: ΔE2000 of the 24 patches of the Canon 550D's colour "
           "chart, for a reference ISP, LibRaw, and the Lamba model without and with the "
           "no-retraining camera adaptations.")
PROTOCOL = ("patches located on the reference ISP's rendering and measured with the same boxes "
            "in every row (median of the inner 40 %); per-channel gains in linear light fitted on "
            "the six neutral patches (exposure and white balance); CIEDE2000 in D65 CIELAB against "
            "colour-science's 'ColorChecker24 - After November 2014' (D50 -> D65, Bradford); the "
            "model on the mosaic area-downsampled per Bayer plane, amplified by Eq. 5 (m = 0.5)")

MODEL_SIZE = 1024
"""Longer side (px) the mosaic is area-downsampled to (per Bayer plane) before the model runs."""


@dataclasses.dataclass(frozen=True, eq=False)
class ChartRow:
    """One measured rendering: its sRGB image, where the patches are and what they measured
    (``llve.data.colour``'s protocol; ``amplification`` is the factor the mosaic was multiplied
    by before rendering)."""

    method: str
    image: np.ndarray  # H×W×3 sRGB in [0, 1]
    location: colour.ChartLocation
    measured: np.ndarray  # 24×3 sRGB, as rendered
    normalised: np.ndarray  # 24×3 sRGB after exposure and white-balance normalisation
    delta_e: np.ndarray  # 24 CIEDE2000 values of ``normalised``
    delta_e_exposure_only: np.ndarray  # 24 values after a common (exposure-only) gain
    amplification: float


def adaptation_matrix(white_balance: Sequence[float], camera_to_srgb: np.ndarray,
                      variant: str) -> np.ndarray:
    """The 3×3 map from the camera's raw RGB to Sony-like raw RGB for ``variant`` (module doc)."""
    if variant not in VARIANTS:
        raise UnknownNameError(f"unknown adaptation {variant!r}: expected one of {list(VARIANTS)}")
    gains = np.asarray(white_balance, dtype=np.float64) / float(white_balance[1])
    if variant == "none":
        return np.eye(3)
    if variant == "wb":
        return np.diag(gains / SONY_WB)
    sony_from_camera = np.linalg.inv(SONY_CAMERA_TO_SRGB) @ camera_to_srgb  # both white-balanced
    return np.diag(1 / SONY_WB) @ sony_from_camera @ np.diag(gains)


def adapt_mosaic(mosaic: np.ndarray, pattern: str, matrix: np.ndarray, clip: bool = True
                 ) -> np.ndarray:
    """Apply a 3×3 raw-RGB map to an H×W Bayer mosaic without demosaicking.

    Per 2×2 block the planes R, G1, B, G2 give RGB = (R, (G1 + G2)/2, B); each plane keeps its
    own sample times its diagonal entry and receives the off-diagonal terms from the block's
    other colours: ``R' = m00·R + m01·G + m02·B``, ``G1' = m11·G1 + m10·R + m12·B`` (G2
    alike), ``B' = m22·B + m20·R + m21·G``. A diagonal matrix thus scales each plane exactly. With
    ``clip`` the result is clipped to [0, 1], as a sensor records.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    red, green1, blue, green2 = raw.pack(np.asarray(mosaic, dtype=np.float64), pattern, "RGBG")
    rgb = (red, (green1 + green2) / 2, blue)

    def plane(own: np.ndarray, channel: int) -> np.ndarray:  # own sample + the block's others
        cross = sum(matrix[channel, k] * rgb[k] for k in range(3) if k != channel)
        return matrix[channel, channel] * own + cross

    planes = np.stack([plane(red, 0), plane(green1, 1), plane(blue, 2), plane(green2, 1)])
    adapted = raw.unpack(planes, pattern, "RGBG")
    return (np.clip(adapted, 0.0, 1.0) if clip else adapted).astype(np.float32)


def chart_file() -> Path | None:
    """The real colour-chart raw beside the project, or None where ``../shared`` is absent."""
    return shared_sample(CHART_FILE)


def camera_adaptation(image: RawImage, variant: str = "wb+matrix") -> RawImage:
    """A copy of ``image`` whose mosaic looks like a Sony A7S II raw to the released model.

    ``variant`` is a key of :data:`VARIANTS`. The copy's ``white_balance`` becomes Sony's typical
    gains (for "wb" and "wb+matrix") and its ``camera_to_srgb`` Sony's (for "wb+matrix"), so the
    reference ISP renders the copy as it rendered the original. A raw that already has Sony's
    typical gains and matrix is returned with its mosaic unchanged. Clipped mosaics stay in
    [0, 1]. "wb+matrix" needs a colour matrix: a file whose ``colour_matrix_source`` is
    "identity" raises ``InvalidInputError``.
    """
    if variant == "wb+matrix" and image.colour_matrix_source == "identity":
        raise InvalidInputError(f"{image.path}: no colour matrix in the file, so the "
                                "'wb+matrix' adaptation cannot map its colours to Sony's")
    matrix = adaptation_matrix(image.white_balance, image.camera_to_srgb, variant)
    if variant == "none":
        return dataclasses.replace(image, mosaic=image.mosaic.copy())
    return dataclasses.replace(
        image, mosaic=adapt_mosaic(image.mosaic, image.pattern, matrix, clip=image.clipped),
        white_balance=tuple(float(gain) for gain in SONY_WB),
        camera_to_srgb=SONY_CAMERA_TO_SRGB if variant == "wb+matrix" else image.camera_to_srgb)


def measure_chart(method: str, image: np.ndarray, location: colour.ChartLocation,
                  amplification: float = 1.0, chart: str = colour.REFERENCE_CHART) -> ChartRow:
    """Measure one sRGB rendering at ``location`` (``llve.data.colour``'s protocol)."""
    reference, _ = colour.colour_checker_reference_srgb(chart)
    location = _scaled(location, image.shape)
    measured = colour.patch_means(image, location.boxes)
    normalised, _ = colour.normalise_on_neutrals(measured, reference)
    exposure_only, _ = colour.normalise_on_neutrals(measured, reference, white_balance=False)
    return ChartRow(method, image, location, measured, normalised,
                    colour.delta_e_2000(normalised, reference),
                    colour.delta_e_2000(exposure_only, reference), float(amplification))


def chart_rows(model: nn.Module | None, path: str | os.PathLike,
               variants: Sequence[str] = tuple(VARIANTS), size: int = MODEL_SIZE,
               darkening: float | None = None, seed: int = 0,
               chart: str = colour.REFERENCE_CHART) -> list[ChartRow]:
    """Every measured rendering of the chart file at ``path`` (see :func:`colour_chart_table`)."""
    recorded = raw.read_raw(path)
    mosaic = downsample_mosaic(recorded.mosaic, recorded.pattern, size)
    small = dataclasses.replace(recorded, mosaic=mosaic)
    reference_isp = isp.render_srgb(small)
    location = colour.locate_colour_checker(reference_isp)  # one location serves every row
    rows = [measure_chart("reference ISP (llve.data.isp.render_srgb)", reference_isp, location,
                          chart=chart),
            measure_chart("LibRaw (rawpy postprocess, camera WB)",
                          isp.sid_ground_truth(path, half_size=True), location, chart=chart)]
    suffix = "" if darkening is None else f", ÷{darkening:g} (ELD noise)"
    for variant in variants if model is not None else ():
        adapted = camera_adaptation(small, variant).mosaic
        if darkening is not None:
            noise = synth.EldNoiseModel(system_gain=1.0)
            adapted = noise.apply(adapted / darkening, noise.sample_params(seed), seed)
        restored, factors = amplify_and_restore(model, adapted[None, None], "weighted",
                                                pattern=recorded.pattern, m=0.5)
        name = ("released Lamba, no adaptation" if variant == "none"
                else f"released Lamba + {variant}")
        rows.append(measure_chart(name + suffix, restored[0].permute(1, 2, 0).cpu().numpy(),
                                  location, float(factors[0]), chart))
    return rows


def colour_chart_table(model: nn.Module | None, path: str | os.PathLike,
                       variants: Sequence[str] = tuple(VARIANTS), size: int = MODEL_SIZE,
                       darkening: float | None = None, seed: int = 0,
                       chart: str = colour.REFERENCE_CHART) -> pd.DataFrame:
    """ΔE2000 on a colour-chart raw: one row per rendering, the reference ISP the baseline.

    Rows: the reference ISP on the mosaic area-downsampled to ``size`` (gain 1), LibRaw's
    ``postprocess`` (camera WB, half size), and the model on the same mosaic after each
    adaptation in ``variants`` (none without a model), amplified by Eq. 5 (weighted, m = 0.5).
    With ``darkening`` the adapted mosaic is darkened ÷``darkening`` with ELD noise (K = 1)
    first. The chart is located once, on the reference ISP's rendering, and measured with the
    same boxes in every row. Columns: mean/max ΔE2000 after neutral-row normalisation
    (exposure and white balance), the worst patch, the mean ΔE2000 after an exposure-only
    normalisation (white-balance errors included), the mean ΔE2000 against LibRaw's rendering
    of the same file (its patch colours as the reference, same neutral-row normalisation: how
    closely a row reproduces the rendering the model was trained to imitate, measured on this
    camera) and the amplification applied (1 for the ISP and LibRaw rows).
    """
    return chart_table(chart_rows(model, path, variants, size, darkening, seed, chart), chart)


def chart_table(rows: Sequence[ChartRow], chart: str = colour.REFERENCE_CHART) -> pd.DataFrame:
    """The table of :func:`colour_chart_table` from rows already measured (:func:`chart_rows`),
    so a notebook measures once for its table and its figure."""
    names = colour.colour_checker_reference_srgb(chart)[1]
    libraw = rows[1].measured
    return pd.DataFrame([{
        "method": row.method,
        "mean ΔE2000": float(row.delta_e.mean()),
        "max ΔE2000": float(row.delta_e.max()),
        "worst patch": names[int(row.delta_e.argmax())],
        "mean ΔE2000, exposure only": float(row.delta_e_exposure_only.mean()),
        "mean ΔE2000 vs LibRaw": float(_delta_e_against(row.measured, libraw).mean()),
        "amplification": row.amplification,
    } for row in rows]).set_index("method")


def _delta_e_against(measured: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-patch ΔE2000 of ``measured`` against another rendering's patch colours ``target``."""
    normalised, _ = colour.normalise_on_neutrals(measured, target)
    return colour.delta_e_2000(normalised, target)


def colour_chart_figure(rows: Sequence[ChartRow], chart: str = colour.REFERENCE_CHART) -> Figure:
    """For each row of :func:`chart_rows`: the rendering with the measured boxes outlined, and a
    patch grid (each patch's upper-left half the normalised measurement, lower-right the
    reference)."""
    reference, _ = colour.colour_checker_reference_srgb(chart)
    figure, axes = plt.subplots(len(rows), 2, figsize=(10, 3.2 * len(rows)), squeeze=False,
                                gridspec_kw={"width_ratios": [3, 2]})
    for (picture, grid), row in zip(axes, rows):
        picture.imshow(np.clip(row.image, 0, 1))
        for top, left, bottom, right in row.location.boxes:
            picture.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top,
                                        fill=False, edgecolor="white", linewidth=0.8))
        picture.set_title(f"{row.method}: mean ΔE2000 {row.delta_e.mean():.1f}", fontsize=9)
        grid.imshow(_patch_grid(row.normalised, reference))
        grid.set_title("measured (upper left) vs reference (lower right)", fontsize=9)
        for axis in (picture, grid):
            axis.set_axis_off()
    figure.tight_layout()
    return figure


def _patch_grid(measured: np.ndarray, reference: np.ndarray, cell: int = 32) -> np.ndarray:
    """A 4×6 grid image of the patches, each cell split on its diagonal: measured | reference."""
    upper = np.triu(np.ones((cell, cell), dtype=bool))[..., None]
    cells = [np.where(upper, m, r) * np.ones((cell, cell, 3)) for m, r in zip(measured, reference)]
    rows = [np.concatenate(cells[6 * k:6 * k + 6], axis=1) for k in range(4)]
    return np.concatenate(rows, axis=0)


def _scaled(location: colour.ChartLocation, shape: tuple[int, ...]) -> colour.ChartLocation:
    """``location`` moved onto an image of ``shape`` (LibRaw's half size differs by a pixel)."""
    reference_shape = location.image_shape
    if tuple(shape[:2]) == reference_shape:
        return location
    scale = np.array(shape[:2]) / np.array(reference_shape)
    return colour.chart_location(location.centres * scale, location.pitch * scale.min(),
                                 shape, location.detected)
