"""A small reference image signal processor (ISP) for *looking at* raw data, plus the two raw ->
RGB conversions the papers train on.

Viewing pipeline (:func:`render_srgb`, in the order dcraw and Brooks et al. use)::

    normalised mosaic × gain -> white balance -> clip to [0, 1] -> bilinear demosaic
    -> camera-to-sRGB matrix -> sRGB gamma (clipped to [0, 1])

Everything here works on float arrays in [0, 1] (see ``llve.data.raw`` for how a mosaic is
normalised). Images are H×W×3 numpy arrays, channels R, G, B.

Training targets, as the papers make them (``papers/FACTS.md``):

- :func:`sid_ground_truth`: LibRaw's full pipeline (AHD demosaic, camera white balance, camera
  matrix, BT.709-style gamma), ``postprocess(use_camera_wb=True, half_size=False,
  no_auto_bright=True, output_bps=16) / 65535`` as SID, Lamba and DarkDiff use it. Its gamma is
  LibRaw's, so no second gamma may be applied.
- :func:`linear_rgb_from_raw`: DarkDiff's linear RGB: pack, × gain, white balance, average the
  two greens -> 3×H/2×W/2, no gamma (a colour matrix is optional).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from llve.data.cfa import colour_index_grid
from llve.data.raw import RawImage, open_raw, pack
from llve.errors import InvalidInputError

# Bilinear interpolation kernels. Red and blue samples sit on every other row and column: a
# missing one is the mean of its 2 (edge) or 4 (diagonal) nearest samples. Green samples form a
# quincunx: a missing one is the mean of its 4 edge neighbours. Divided by the convolved sample
# mask (normalised convolution), the same kernels stay correct at the image border.
_RED_BLUE_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32)
_GREEN_KERNEL = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float32)


def white_balance(mosaic: np.ndarray, pattern: str, gains: Sequence[float]) -> np.ndarray:
    """Multiply each pixel of an H×W Bayer mosaic by the (R, G, B) gain of its colour."""
    per_pixel_gain = np.asarray(gains, dtype=np.float32)[_colour_indices(pattern, mosaic.shape)]
    return (np.asarray(mosaic, dtype=np.float32) * per_pixel_gain).astype(np.float32)


def demosaic_bilinear(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Bilinear demosaic of an H×W Bayer mosaic -> H×W×3 float32 (sampled values kept exactly).

    Written out rather than calling OpenCV: ``cv2.COLOR_Bayer*`` names the pattern by the second
    row's phase (OpenCV's "BG" is our RGGB) and takes integers only.
    """
    mosaic = np.asarray(mosaic, dtype=np.float32)
    if mosaic.ndim != 2 or min(mosaic.shape) < 2:
        raise InvalidInputError(f"demosaic_bilinear expects an H×W mosaic (H, W ≥ 2), got {mosaic.shape}")
    colour = _colour_indices(pattern, mosaic.shape)
    rgb = np.empty(mosaic.shape + (3,), dtype=np.float32)
    for channel, kernel in enumerate((_RED_BLUE_KERNEL, _GREEN_KERNEL, _RED_BLUE_KERNEL)):
        samples = (colour == channel).astype(np.float32)
        weighted_sum = ndimage.convolve(mosaic * samples, kernel, mode="constant")
        weight = ndimage.convolve(samples, kernel, mode="constant")
        rgb[..., channel] = weighted_sum / weight
    return rgb


def apply_colour_matrix(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``matrix @ pixel`` for every pixel of an …×3 image (e.g. camera RGB -> linear sRGB)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.shape != (3, 3):
        raise InvalidInputError(f"colour matrix must be 3×3, got shape {matrix.shape}")
    return np.einsum("...c,kc->...k", np.asarray(rgb, dtype=np.float32), matrix)


def srgb_gamma(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1) of linear values, clipped to [0, 1] first."""
    linear = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * np.power(linear, 1 / 2.4) - 0.055).astype(np.float32)


def render_srgb(image: RawImage | np.ndarray, pattern: str | None = None,
                white_balance_gains: Sequence[float] | None = None,
                camera_to_srgb: np.ndarray | None = None, gain: float = 1.0) -> np.ndarray:
    """A viewable H×W×3 sRGB image in [0, 1] from a :class:`RawImage` or a normalised mosaic.

    With a :class:`RawImage`, the pattern, white balance and colour matrix default to the file's.
    With a bare mosaic, ``pattern`` is required and the others default to unity / identity.
    ``gain`` brightens a dark frame (e.g. the exposure ratio) before highlights clip.
    """
    if isinstance(image, RawImage):
        mosaic = image.mosaic
        pattern = pattern or image.pattern
        white_balance_gains = image.white_balance if white_balance_gains is None else white_balance_gains
        camera_to_srgb = image.camera_to_srgb if camera_to_srgb is None else camera_to_srgb
    else:
        mosaic = image
        if pattern is None:
            raise InvalidInputError("render_srgb on a bare mosaic needs its CFA pattern, e.g. 'RGGB'")
    gains = (1.0, 1.0, 1.0) if white_balance_gains is None else white_balance_gains
    balanced = white_balance(np.asarray(mosaic) * gain, pattern, gains)
    # Clip before demosaicking, as dcraw does: a saturated pixel has lost its true colour, and
    # unclipped highlights would turn magenta once the gains differ per channel.
    camera_rgb = demosaic_bilinear(np.clip(balanced, 0.0, 1.0), pattern)
    return srgb_gamma(apply_colour_matrix(camera_rgb, np.eye(3) if camera_to_srgb is None else camera_to_srgb))


def sid_ground_truth(path: str | os.PathLike, half_size: bool = False) -> np.ndarray:
    """SID's ground-truth sRGB of a long exposure: float32 H×W×3 in [0, 1] (FACTS.md protocol).

    ``rawpy.postprocess(use_camera_wb=True, half_size=half_size, no_auto_bright=True,
    output_bps=16) / 65535``. ``half_size=True`` (one RGB pixel per 2×2 block, H/2×W/2, no
    demosaic) is about 4-9× faster, for previews and tests; the papers use full size.

    LibRaw's other defaults stay on, as in the papers' code. Two matter: the output gamma is
    BT.709's (power 1/2.222, slope 4.5), not sRGB's; and ``adjust_maximum_thr=0.75`` makes LibRaw
    take a frame's brightest pixel as white when it exceeds 75% of the white level, so a frame
    without clipped highlights comes out brighter than black/white normalisation would give
    (the 550D colour-chart file by 1.285×).
    """
    with open_raw(path) as raw:
        rgb16 = raw.postprocess(use_camera_wb=True, half_size=half_size, no_auto_bright=True,
                                output_bps=16)
    return (rgb16 / np.float32(65535)).astype(np.float32)


def libraw_render(mosaic: np.ndarray, pattern: str, white_balance: Sequence[float],
                  xyz_to_camera: np.ndarray, black_level: int = 512,
                  white_level: int = 16383) -> np.ndarray:
    """A clean normalised mosaic rendered the way SID's ground truth is: written as a DNG
    (14-bit, the given black/white levels, as-shot white balance, ColorMatrix1) and developed by
    LibRaw with :func:`sid_ground_truth`'s settings. H×W×3 float32 in [0, 1].

    This is the ground truth of synthetic SID-like data: the same demosaic (AHD), colour
    matrix, BT.709 gamma and highlight handling as the real SID targets, not an approximation.
    Values above 1 (lamps) clip at the white level, as they do in a camera.
    """
    import tempfile

    from llve.data.raw import write_dng

    with tempfile.TemporaryDirectory(prefix="llve-libraw-") as folder:
        path = write_dng(os.path.join(folder, "clean.dng"), np.clip(mosaic, 0.0, 1.0), pattern,
                         black_level, white_level, white_balance, xyz_to_camera=xyz_to_camera)
        return sid_ground_truth(path)


def linear_rgb_from_raw(image: RawImage | np.ndarray | torch.Tensor, pattern: str | None = None,
                        white_balance_gains: Sequence[float] | None = None, gain: float = 1.0,
                        colour_matrix: np.ndarray | None = None) -> np.ndarray | torch.Tensor:
    """DarkDiff's linear RGB (LRGB): …×H×W normalised mosaic -> …×3×H/2×W/2, same array type.

    Pack by the CFA pattern, multiply by ``gain`` (the exposure ratio), white-balance with gains
    normalised to green, average the two greens; no gamma and no clipping (clip afterwards where
    a paper does, e.g. SID's ``min(·, 1)``). ``colour_matrix`` (3×3, e.g. ``camera_to_srgb``) is
    applied last when given. With a :class:`RawImage` the pattern and white balance default to
    the file's; with a bare mosaic ``pattern`` is required and the gains default to unity.
    """
    if isinstance(image, RawImage):
        mosaic, pattern = image.mosaic, pattern or image.pattern
        white_balance_gains = image.white_balance if white_balance_gains is None else white_balance_gains
    else:
        mosaic = image
        if pattern is None:
            raise InvalidInputError("linear_rgb_from_raw on a bare mosaic needs its CFA pattern")
    gains = np.asarray((1.0, 1.0, 1.0) if white_balance_gains is None else white_balance_gains,
                       dtype=np.float64)
    # Packed planes are R, G1, B, G2; the whole conversion is one linear map from 4 planes to 3
    # channels: rows R, G, B = gain × white-balance gain × (R | mean of greens | B).
    planes_to_rgb = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]])
    planes_to_rgb = gain * (gains / gains[1])[:, None] * planes_to_rgb
    if colour_matrix is not None:
        planes_to_rgb = np.asarray(colour_matrix, dtype=np.float64) @ planes_to_rgb
    planes = pack(mosaic, pattern, order="RGBG")
    if isinstance(planes, torch.Tensor):
        matrix = torch.as_tensor(planes_to_rgb, dtype=planes.dtype, device=planes.device)
        return torch.einsum("kc,...chw->...khw", matrix, planes)
    return np.einsum("kc,...chw->...khw", planes_to_rgb.astype(planes.dtype), planes)


def _colour_indices(pattern: str, shape: tuple[int, ...]) -> np.ndarray:
    """H×W array of each pixel's colour (0 = R, 1 = G, 2 = B); odd sizes allowed."""
    height, width = shape[-2:]
    return np.tile(colour_index_grid(pattern), ((height + 1) // 2, (width + 1) // 2))[:height, :width]
