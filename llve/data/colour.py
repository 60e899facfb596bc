"""Colour accuracy on a 24-patch colour checker (X-Rite / Macbeth ColorChecker Classic).

Camera-agnostic: everything here reads a rendered sRGB image (H×W×3, [0, 1], sRGB-encoded), so a
reference ISP, LibRaw and a restoration network are measured the same way.

Protocol
--------
1. **Reference.** colour-science's published chromaticities of the 24 patches,
   ``colour.CCS_COLOURCHECKERS[REFERENCE_CHART]`` (xyY under the ICC's D50), converted to XYZ,
   adapted to D65 with the Bradford transform (the ICC's choice) and encoded as sRGB
   (:func:`colour_checker_reference_srgb`). Values outside the sRGB gamut (the cyan patch's red)
   are clipped to [0, 1]: no sRGB image can hold them, so a perfect sRGB rendering scores 0.
2. **Location** (:func:`locate_colour_checker`): the patches are found in the image itself by
   segmenting flat squares and fitting a 6×4 lattice to them (see that function).
3. **Measurement** (:func:`patch_means`): per-channel median of the inner part of each patch (a
   square of side ``INNER_FRACTION`` × the lattice pitch around its centre, away from the blurred
   edges).
4. **Normalisation** (:func:`normalise_on_neutrals`): exposure and white balance are factored
   out by three per-channel gains in linear light, the least-squares fit of the measured to the
   reference values on the six neutral patches (19-24); patches clipped in the measurement are
   left out of the fit.
5. **Difference** (:func:`delta_e_2000`): CIEDE2000 (``colour.delta_E(..., method="CIE 2000")``)
   per patch between CIELAB values of the two sRGB colours (sRGB -> XYZ -> L*a*b*, D65 white).
"""

from __future__ import annotations

from dataclasses import dataclass

import colour
import numpy as np
from colour.models import eotf_inverse_sRGB, eotf_sRGB
from scipy import ndimage

from llve.errors import InvalidInputError

REFERENCE_CHART = "ColorChecker24 - After November 2014"
"""colour-science's name of the reference: X-Rite's published values for the current
formulation of the 24-patch chart (the pigments changed in November 2014). The sample chart's
manufacture date is unknown; ``"ColorChecker24 - Before November 2014"`` is the alternative."""

NEUTRAL_PATCHES = tuple(range(18, 24))
"""0-based indices of the neutral row: white 9.5, neutral 8, 6.5, 5, 3.5 and black 2."""

GRID = (6, 4)
"""Patches per row and rows of the chart."""

INNER_FRACTION = 0.4
"""Side of the measured square around each patch centre, as a fraction of the lattice pitch."""

CLIPPED = 0.99
"""A measured neutral patch with any channel at or above this (encoded) value is clipped."""

_D65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
_WORK_SIZE = 432  # the longer side (px) the chart is searched at


@dataclass(frozen=True, eq=False)
class ChartLocation:
    """Where the 24 patches of a colour checker lie in an image (pixel coordinates).

    ``centres`` is 24×2 (row, column) in chart order (patch 1 "dark skin" first, patch 24
    "black" last); ``boxes`` is 24×4 integer (top, left, bottom, right), bottom/right exclusive:
    the inner squares :func:`patch_means` reads. ``pitch`` is the distance between neighbouring
    patch centres; ``detected`` how many of the 24 lattice nodes had a segmented square on them
    (the others are filled in by the lattice); ``image_shape`` the (H, W) of the image searched.
    """

    centres: np.ndarray
    boxes: np.ndarray
    pitch: float
    detected: int
    image_shape: tuple[int, int]


def chart_location(centres: np.ndarray, pitch: float, shape: tuple[int, ...],
                   detected: int = 24) -> ChartLocation:
    """A :class:`ChartLocation` from 24 centres (row, column) and the pitch, on an image of
    ``shape``: the boxes are squares of side ``INNER_FRACTION × pitch``, kept inside the image."""
    centres = np.asarray(centres, dtype=np.float64)
    if centres.shape != (24, 2):
        raise InvalidInputError(f"a colour checker has 24 patch centres, got shape {centres.shape}")
    return ChartLocation(centres=centres, boxes=_boxes(centres, pitch, shape), pitch=float(pitch),
                         detected=int(detected), image_shape=(int(shape[0]), int(shape[1])))


def colour_checker_reference_srgb(chart: str = REFERENCE_CHART
                                  ) -> tuple[np.ndarray, tuple[str, ...]]:
    """The chart's 24 published colours as sRGB (D65, encoded, clipped to [0, 1]) and their names.

    From colour-science's ``CCS_COLOURCHECKERS[chart]`` (xyY, D50): xyY -> XYZ -> Bradford
    adaptation to D65 -> sRGB (see the module docstring). Returns a 24×3 float64 array and the 24
    patch names in chart order.
    """
    checker = colour.CCS_COLOURCHECKERS[chart]
    xyz = colour.xyY_to_XYZ(np.array(list(checker.data.values())))
    srgb = colour.XYZ_to_sRGB(xyz, illuminant=checker.illuminant,
                              chromatic_adaptation_transform="Bradford")
    return np.clip(srgb, 0.0, 1.0), tuple(checker.data)


def srgb_to_lab(srgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white) of sRGB-encoded colours …×3 (sRGB -> XYZ under D65 -> L*a*b*)."""
    xyz = colour.sRGB_to_XYZ(np.asarray(srgb, dtype=np.float64),
                             chromatic_adaptation_transform=None)
    return colour.XYZ_to_Lab(xyz, illuminant=_D65)


def delta_e_2000(measured_srgb: np.ndarray, reference_srgb: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference per colour between two …×3 sRGB-encoded arrays (D65 CIELAB).

    ``colour.delta_E(lab_a, lab_b, method="CIE 2000")`` on :func:`srgb_to_lab` of both.
    """
    measured, reference = np.asarray(measured_srgb), np.asarray(reference_srgb)
    if measured.shape != reference.shape or measured.shape[-1] != 3:
        raise InvalidInputError(f"delta_e_2000 needs two …×3 arrays of one shape, got "
                                f"{measured.shape} and {reference.shape}")
    return colour.delta_E(srgb_to_lab(measured), srgb_to_lab(reference), method="CIE 2000")


def patch_means(srgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per-channel median of each box (top, left, bottom, right) of an H×W×3 image -> N×3."""
    image = _check_image(srgb)
    return np.array([np.median(image[top:bottom, left:right].reshape(-1, 3), axis=0)
                     for top, left, bottom, right in np.asarray(boxes, dtype=int)])


def normalise_on_neutrals(measured: np.ndarray, reference: np.ndarray,
                          white_balance: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Factor exposure and white balance out of 24 measured sRGB colours; returns (colours, gains).

    In linear light (sRGB EOTF), one gain per channel ``g_c = Σ m·r / Σ m²`` over the neutral
    patches 19-24 (a least-squares fit of measured ``m`` to reference ``r``, so the brighter
    neutrals weigh most and the noisy black least); neutrals with a channel ≥ ``CLIPPED`` in the
    measurement are left out (their true value is unknown). All 24 measured colours are
    multiplied by the gains and re-encoded as sRGB, clipped to [0, 1]. With
    ``white_balance=False`` one gain common to the three channels is fitted (sums over all
    channels): exposure only, so a colour cast stays in the result.
    """
    measured, reference = np.asarray(measured, np.float64), np.asarray(reference, np.float64)
    if measured.shape != (24, 3) or reference.shape != (24, 3):
        raise InvalidInputError(f"normalise_on_neutrals needs 24×3 measured and reference "
                                f"colours, got {measured.shape} and {reference.shape}")
    neutral = np.array(NEUTRAL_PATCHES)
    neutral = neutral[(measured[neutral] < CLIPPED).all(axis=1)]
    linear_measured, linear_reference = eotf_sRGB(measured), eotf_sRGB(reference)
    axes = 0 if white_balance else None  # per channel, or over all channels at once
    energy = (linear_measured[neutral] ** 2).sum(axis=axes)
    if neutral.size == 0 or not np.all(energy > 0):
        raise InvalidInputError("normalise_on_neutrals: no unclipped neutral patch has signal")
    products = (linear_measured[neutral] * linear_reference[neutral]).sum(axis=axes)
    gains = np.broadcast_to(products / energy, (3,)).copy()
    return np.clip(eotf_inverse_sRGB(np.clip(linear_measured * gains, 0, 1)), 0, 1), gains


def locate_colour_checker(srgb_image: np.ndarray) -> ChartLocation:
    """Find the 24 patches of a colour checker in an sRGB image (any position, scale, orientation).

    1. Area-downsample to about ``_WORK_SIZE`` px on the longer side; blur (σ = 1 px) and take
       the colour gradient magnitude (Sobel, summed over channels).
    2. Flat regions are those below a multiple of the median gradient (several multiples are
       tried); their connected components that are square-ish (aspect 0.6-1.6, filling ≥ 70 % of
       their bounding box, under 5 % of the image) are candidate patches.
    3. For each candidate, its two nearest similar-sized neighbours in different directions give
       lattice vectors; the other similar candidates get lattice coordinates, those within 0.3
       of whole numbers are on the lattice, and the 6×4 (or 4×6) window holding the most of them
       is the chart. A least-squares fit of origin and vectors to those squares places all 24
       nodes, also where a patch was not segmented (dark patches on the black frame).
    4. Orientation: of the two grid edges with 6 patches, the neutral row is the one whose
       patches vary least in chromaticity; its brighter end is white (patch 19).

    Returns a :class:`ChartLocation`; raises ``InvalidInputError`` when no lattice with at least
    12 segmented squares is found.
    """
    image = _check_image(srgb_image)
    factor = max(1, round(max(image.shape[:2]) / _WORK_SIZE))
    small = _area_downsample(image, factor)
    best = None
    for multiple in (0.5, 1.0, 2.0, 4.0):
        fit = _fit_lattice(*_candidate_squares(small, multiple))
        if fit is not None and (best is None or fit[0] > best[0]):
            best = fit
    if best is None or best[0] < 12:
        raise InvalidInputError(
            "locate_colour_checker: no 6×4 grid of colour-checker patches found")
    detected, nodes, pitch = best
    nodes = nodes * factor + (factor - 1) / 2  # working pixel centres -> full-resolution pixels
    pitch *= factor
    return chart_location(_chart_order(image, nodes, pitch), pitch, image.shape, detected)


# --------------------------------------------------------------------------- helpers


def _check_image(srgb: np.ndarray) -> np.ndarray:
    image = np.asarray(srgb)
    if image.ndim != 3 or image.shape[2] != 3 or not np.all(np.isfinite(image)):
        raise InvalidInputError(f"expected a finite H×W×3 sRGB image, got shape {image.shape}")
    return image.astype(np.float64)


def _area_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    height, width = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    blocks = image[:height, :width].reshape(height // factor, factor, width // factor, factor, 3)
    return blocks.mean(axis=(1, 3))


def _candidate_squares(image: np.ndarray, multiple: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres (N×2, row, column) and sizes (√area) of flat square-ish regions."""
    blurred = ndimage.gaussian_filter(image, (1, 1, 0))
    gradient = np.sqrt(sum(ndimage.sobel(blurred[..., c], axis) ** 2
                           for c in range(3) for axis in (0, 1)))
    flat = ndimage.binary_opening(gradient < multiple * np.median(gradient))
    labels, _ = ndimage.label(flat)
    centres, sizes = [], []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
        area = int((labels[box] == index).sum())
        if (12 <= area < 0.05 * labels.size and 0.6 < width / height < 1.6
                and area >= 0.7 * height * width):
            centres.append(((box[0].start + box[0].stop - 1) / 2,
                            (box[1].start + box[1].stop - 1) / 2))
            sizes.append(np.sqrt(area))
    return np.array(centres).reshape(-1, 2), np.array(sizes)


def _fit_lattice(centres: np.ndarray, sizes: np.ndarray
                 ) -> tuple[int, np.ndarray, float] | None:
    """(squares on it, node centres na×nb×2 with na, nb = 6, 4 or 4, 6, pitch) of the best
    lattice over all anchors, or None."""
    best = None
    for anchor in range(len(centres)):
        similar = np.flatnonzero(np.abs(np.log(sizes / sizes[anchor])) < np.log(1.35))
        vectors = _lattice_vectors(centres[similar] - centres[anchor], sizes[anchor])
        fit = None if vectors is None else _best_window(centres[similar], centres[anchor], vectors)
        if fit is not None:  # refit with the squares the first fit found on the lattice
            fit = _best_window(centres[similar], fit[1], fit[2]) or fit
        if fit is not None and (best is None or fit[0] > best[0]):
            best = fit
    if best is None:
        return None
    count, origin, vectors, shape = best
    grid = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), -1)
    nodes = origin + grid @ vectors  # na×nb×2: node (a, b) = origin + a·u + b·v
    return count, nodes, float(np.linalg.norm(vectors, axis=1).min())


def _lattice_vectors(offsets: np.ndarray, size: float) -> np.ndarray | None:
    """Two lattice vectors (2×2, rows) from neighbour offsets: the shortest, and the shortest
    at more than 60° from it, each between 1.05 and 2.5 patch sizes long."""
    lengths = np.linalg.norm(offsets, axis=1)
    near = np.flatnonzero((lengths > 1.05 * size) & (lengths < 2.5 * size))
    if near.size < 2:
        return None
    near = near[np.argsort(lengths[near])]
    first = offsets[near[0]]
    cosines = np.abs(offsets[near] @ first) / (lengths[near] * lengths[near[0]])
    other = near[cosines < 0.5]
    return None if other.size == 0 else np.stack([first, offsets[other[0]]])


def _best_window(centres: np.ndarray, anchor: np.ndarray, vectors: np.ndarray):
    """Squares within 0.3 of a lattice node, the 6×4 or 4×6 window holding most of them, and a
    least-squares refit of origin and vectors on them: (count, origin, vectors, shape)."""
    if abs(np.linalg.det(vectors)) < 1e-6:
        return None
    coordinates = (centres - anchor) @ np.linalg.inv(vectors)
    whole = np.rint(coordinates)
    on_lattice = np.abs(coordinates - whole).max(axis=1) < 0.3
    whole = whole[on_lattice].astype(int)
    best = None
    for shape in (GRID, GRID[::-1]):
        for a0 in range(-shape[0] + 1, 1):
            for b0 in range(-shape[1] + 1, 1):
                inside = ((whole[:, 0] >= a0) & (whole[:, 0] < a0 + shape[0])
                          & (whole[:, 1] >= b0) & (whole[:, 1] < b0 + shape[1]))
                if best is None or inside.sum() > best[0]:
                    best = (int(inside.sum()), np.array([a0, b0]), inside, shape)
    count, start, inside, shape = best
    if count < 4:
        return None
    points = centres[on_lattice][inside]
    design = np.column_stack([np.ones(count), whole[inside] - start])  # c = o + a·u + b·v
    solution, *_ = np.linalg.lstsq(design, points, rcond=None)
    return count, solution[0], solution[1:], shape


def _chart_order(image: np.ndarray, nodes: np.ndarray, pitch: float) -> np.ndarray:
    """Lattice nodes (na×nb×2) -> the 24 centres in chart order (step 4 of the locator)."""
    grid = nodes if nodes.shape[0] == GRID[0] else nodes.transpose(1, 0, 2)  # 6 along axis 0
    boxes = _boxes(grid.reshape(-1, 2), pitch, image.shape)
    colours = eotf_sRGB(patch_means(image, boxes)).reshape(GRID[0], GRID[1], 3)
    chromaticity = colours / np.maximum(colours.sum(axis=-1, keepdims=True), 1e-9)
    spread = [chromaticity[:, b].var(axis=0).sum() for b in (0, GRID[1] - 1)]
    if spread[0] < spread[1]:  # the neutral row must be the last row (b = 3)
        grid, colours = grid[:, ::-1], colours[:, ::-1]
    if colours[0, -1].sum() < colours[-1, -1].sum():  # white (patch 19) starts the neutral row
        grid = grid[::-1]
    return grid.transpose(1, 0, 2).reshape(-1, 2)  # row-major: patch 1 ... patch 24


def _boxes(centres: np.ndarray, pitch: float, shape: tuple[int, ...]) -> np.ndarray:
    half = max(1.0, INNER_FRACTION * pitch / 2)
    top_left = np.floor(centres - half).astype(int)
    bottom_right = np.ceil(centres + half).astype(int) + 1
    top_left = np.clip(top_left, 0, np.array(shape[:2]) - 1)
    bottom_right = np.clip(bottom_right, top_left + 1, np.array(shape[:2]))
    return np.column_stack([top_left, bottom_right])
