"""Pre-amplification of dark raw mosaics: Lamba & Mitra's amplifier (Eq. 4–7) and SID's Eq. 3.

Lamba & Mitra, "Restoring Extremely Dark Images in Real Time", CVPR 2021, Sec. 3.2. Code as
released: ``get_na`` and ``define_weights`` in the official ``common_classes.py``.

All estimators read a *normalised* mosaic (black level subtracted, divided by white − black, so
1.0 is saturation), not clipped, as a numpy array or torch tensor:

- H×W: one image, returns a Python float;
- N×H×W or N×1×H×W: a batch, returns N factors (same library and, for floating input, dtype).

Eq. 5–7 as released (``estimate_amplification``). Intensities are binned by 128 edges
``e_k = (2^(8k/127) − 1)/255``, k = 0..127, so 127 bins on [0, 1), fine for dark values and
coarse for bright ones; bin k is ``e_k <= x < e_{k+1}``. Bin k has weight ``10^(5(126−k)/126)/10^5``:
1 for the darkest bin, 1e-5 for the brightest, so highlights barely count. Pixels at or above 1.0
(saturated) and below 0 fall outside every bin and get weight 0. Then

    A = (m / 10) · Σ w / Σ (w · x),   clamped to [1, 300].

Mapping to the released code: its factor is ``0.01 · amp · Σw / Σ(w·x)`` and its docstring says
``amp`` (1..9, default 5) is the paper's m (0.1..0.9) times 10, hence m/10. The printed Eq. 5,
``A = m · Σw / Σ(w·x)``, is 10× larger; the paper's reported estimates of 20–300 on SID fit the
code, so the code's scale is the default and ``convention="printed"`` gives the printed one
(same bins and weights, same clamp) for the m-sweep. The printed Eq. 6–7 also describe other
edges and weights (2^(8k/n)-style, weights down to 2^-8); we implement the released ones.
A constant image I with m = 0.5 gives A = 0.05 / I (I = 0.001 -> 50).

Degenerate inputs (the released code would return NaN or divide by zero):

- all pixels zero (or every weighted pixel zero): ``max_amplification`` (300). The released
  division gives inf, which its clamp turns into 300: a black frame is as dark as it gets.
- no weighted pixel at all (every pixel saturated or negative): 1.0. Nothing dark is left to
  brighten; the released code returns NaN here (0/0 slips through its clamp).
- NaN or inf anywhere, an empty array, integer (un-normalised) data: ``InvalidInputError``.
"""

from __future__ import annotations

import math
from functools import partial
from numbers import Real
from typing import Callable

import numpy as np
import torch
from torch import nn

from llve.data.raw import RawImage
from llve.errors import InvalidInputError
from llve.models.sid_unet import SidUnetOnMosaic

# Bin edges and weights exactly as released (float32, then used in float64 sums), so a pixel
# lying exactly on an edge falls into the same bin as in the official code.
BIN_EDGES = torch.from_numpy(
    (np.float32(np.logspace(0, 8, 128, base=2.0) - 1) / np.float32(255.0)).astype(np.float64))
_weights = np.float32(np.logspace(0, 5, 127, base=10.0))
BIN_WEIGHTS = torch.from_numpy(np.flipud(_weights / _weights.max()).astype(np.float64))
# Lookup by torch.bucketize index i (edges[i-1] <= x < edges[i]): i = 0 is below 0 and
# i = 128 is at or above 1.0 (saturated); both get weight 0.
_WEIGHT_BY_INDEX = torch.cat([torch.zeros(1, dtype=torch.float64), BIN_WEIGHTS,
                              torch.zeros(1, dtype=torch.float64)])

CONVENTIONS = {"released": 0.1, "printed": 1.0}  # multiplier of m in Eq. 4–5
DEFAULT_MAX = 300.0  # the released clamp, also SID's exposure-ratio cap


def pixel_weights(intensities) -> torch.Tensor:
    """Eq. 7 weight of each normalised intensity (float64 tensor of the same shape)."""
    values = torch.as_tensor(intensities, dtype=torch.float64)
    index = torch.bucketize(values, BIN_EDGES.to(values.device), right=True)
    return _WEIGHT_BY_INDEX.to(values.device)[index]


def estimate_amplification(mosaic, m: float = 0.5, convention: str = "released",
                           max_amplification: float = DEFAULT_MAX):
    """Eq. 5–7 as released: highlight-masked, dark-weighted inverse mean, times m/10 (see module)."""
    scale = _scale(m, convention, max_amplification)
    images, finish = _as_images(mosaic)
    factors = []
    for image in images:  # one at a time: a 4K frame's float64 temporaries are ~100 MB each
        weights = pixel_weights(image)
        weight_sum, weighted_sum = weights.sum(), (weights * image).sum()
        if weight_sum == 0:
            factors.append(1.0)
        elif weighted_sum == 0:
            factors.append(max_amplification)
        else:
            factors.append(scale * float(weight_sum / weighted_sum))
    return finish(factors, max_amplification)


def mean_amplification(mosaic, m: float = 0.5, convention: str = "released",
                       max_amplification: float = DEFAULT_MAX):
    """Eq. 4: the naive A = (m/10) / mean(x) over every pixel, highlights included.

    The paper's ablation baseline (greenish casts, −0.5 dB). Same m-to-code mapping, conventions
    and clamp as ``estimate_amplification``; a mean ≤ 0 gives ``max_amplification``.
    """
    scale = _scale(m, convention, max_amplification)
    images, finish = _as_images(mosaic)
    factors = []
    for image in images:
        mean = float(image.mean())
        factors.append(scale / mean if mean > 0 else max_amplification)
    return finish(factors, max_amplification)


def exposure_ratio_amplification(t_gt: float, t_in: float, cap: float = DEFAULT_MAX) -> float:
    """Eq. 3, SID's amplification: ``min(t_gt / t_in, cap)`` from the two exposure times."""
    for name, value in (("t_gt", t_gt), ("t_in", t_in), ("cap", cap)):
        if not (isinstance(value, Real) and math.isfinite(value) and value > 0):
            raise InvalidInputError(f"{name} must be a finite positive number, got {value!r}")
    return min(t_gt / t_in, cap)


AMPLIFIERS: dict[str, Callable] = {
    "weighted": estimate_amplification,  # Eq. 5–7 as released (the default)
    "weighted_printed": partial(estimate_amplification, convention="printed"),
    "mean": mean_amplification,  # Eq. 4
}


def amplify_and_restore(model: nn.Module, mosaic, amplifier="weighted",
                        pattern: str | None = None, m: float = 0.5
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimate the amplification, apply it and run a restoration model "off the shelf".

    The paper's Table 2 claim: the amplifier works with pre-trained models without fine-tuning.
    ``mosaic`` is a :class:`llve.data.RawImage` or a normalised N×1×H×W mosaic (numpy or torch).

    - A ``RawImage`` is fed its ``mosaic`` (normalised as ``read_raw`` made it, clipped or not)
      as a 1×1×H×W batch, and ``pattern=None`` takes the image's own CFA phase
      (``RawImage.pattern``). An explicit ``pattern`` that contradicts it is refused: the file
      knows its phase, and feeding a GRBG mosaic as RGGB swaps colours.
    - A bare array or tensor carries no phase: ``pattern=None`` means "RGGB" (Sony's phase, the
      one the released network was trained on), as before; pass the pattern of any other camera.

    ``amplifier`` is a name in ``AMPLIFIERS`` (used with ``m``), a callable mosaic -> N factors,
    or a fixed number or per-image sequence (for example ``exposure_ratio_amplification``).
    The model declares how it is fed: ``input_layout = "mosaic"`` models (Lamba) are called as
    ``model(amplified_mosaic, pattern)``; ``"packed_rgbg"`` models (the SID U-Net) are wrapped in
    ``SidUnetOnMosaic``, which clips and packs as SID does. Returns (RGB N×3×H×W in [0, 1],
    the N amplification factors), computed without gradients.

    Input checks: an integer mosaic (raw digital numbers) is refused, since it must first be
    normalised (``llve.data.read_raw``); float16/float64 mosaics are cast to float32; NaN/inf
    pixels, and factors that are not finite and positive, raise ``InvalidInputError``.
    """
    layout = getattr(model, "input_layout", None)
    if layout == "packed_rgbg":
        model = SidUnetOnMosaic(model)
    elif layout != "mosaic":
        raise InvalidInputError(
            f"model {type(model).__name__} does not declare input_layout 'mosaic' or "
            f"'packed_rgbg', so it cannot be fed a raw mosaic")
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    if isinstance(mosaic, RawImage):
        if pattern is not None and pattern != mosaic.pattern:
            raise InvalidInputError(
                f"pattern={pattern!r} contradicts the RawImage's own CFA pattern "
                f"{mosaic.pattern!r} ({mosaic.path}); leave pattern=None to use the file's")
        pattern = mosaic.pattern
        mosaic = mosaic.mosaic[None, None]
    elif pattern is None:
        pattern = "RGGB"  # a bare mosaic: the released network's (Sony) phase, as documented
    _as_images(mosaic)  # a clear error for integer DN, NaN/inf, empty or wrongly shaped input
    # documented conversion: float16/float64 mosaics are cast to the model's float32
    mosaic = torch.as_tensor(mosaic).to(device=device, dtype=torch.float32)
    if mosaic.ndim != 4 or mosaic.shape[1] != 1:
        raise InvalidInputError(f"mosaic must be N×1×H×W, got shape {tuple(mosaic.shape)}")
    if isinstance(amplifier, str):
        if amplifier not in AMPLIFIERS:
            raise InvalidInputError(
                f"unknown amplifier {amplifier!r}: expected one of {sorted(AMPLIFIERS)}, "
                "a callable or a number")
        factors = AMPLIFIERS[amplifier](mosaic, m)
    elif callable(amplifier):
        factors = amplifier(mosaic)
    else:
        factors = amplifier
    try:
        factors = torch.as_tensor(factors, dtype=torch.float32, device=device).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidInputError(f"amplifier must be a name, a callable or positive number(s), "
                                f"got {amplifier!r}") from None
    if factors.numel() == 1:
        factors = factors.expand(mosaic.shape[0])
    if (factors.numel() != mosaic.shape[0] or not torch.isfinite(factors).all()
            or not (factors > 0).all()):
        raise InvalidInputError(
            f"amplifier must give one finite positive factor per image ({mosaic.shape[0]}), "
            f"got {factors.tolist()}")
    with torch.no_grad():
        restored = model(mosaic * factors.view(-1, 1, 1, 1), pattern)
    return restored, factors


def _scale(m: float, convention: str, max_amplification: float) -> float:
    if convention not in CONVENTIONS:
        raise InvalidInputError(
            f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
    if not (isinstance(m, Real) and math.isfinite(m) and m > 0):
        raise InvalidInputError(f"m must be a finite positive number, got {m!r}")
    if not (isinstance(max_amplification, Real) and math.isfinite(max_amplification)
            and max_amplification >= 1):
        raise InvalidInputError(
            f"max_amplification must be a finite number >= 1, got {max_amplification!r}")
    return CONVENTIONS[convention] * m


def _as_images(mosaic) -> tuple[torch.Tensor, Callable]:
    """Validate ``mosaic``; return its images as rows of float64 values and a result builder."""
    is_numpy = isinstance(mosaic, np.ndarray)
    if not (is_numpy or isinstance(mosaic, torch.Tensor)):
        raise InvalidInputError(
            f"mosaic must be a numpy array or torch tensor, got {type(mosaic).__name__}")
    values = torch.from_numpy(mosaic) if is_numpy else mosaic.detach()
    if not values.is_floating_point():
        raise InvalidInputError(
            f"mosaic must be a normalised floating-point mosaic (1.0 = white level), got dtype "
            f"{mosaic.dtype}; subtract the black level and divide by white - black first")
    shape = tuple(values.shape)
    if values.ndim == 4 and shape[1] != 1:
        raise InvalidInputError(f"mosaic must be N×1×H×W (unpacked), got shape {shape}")
    if values.ndim not in (2, 3, 4):
        raise InvalidInputError(f"mosaic must be H×W, N×H×W or N×1×H×W, got shape {shape}")
    if values.numel() == 0:
        raise InvalidInputError(f"mosaic is empty: shape {shape}")
    if not torch.isfinite(values).all():
        raise InvalidInputError("mosaic contains NaN or inf values")
    batch = 1 if values.ndim == 2 else shape[0]
    images = values.reshape(batch, -1).double()

    def finish(factors: list[float], max_amplification: float):
        clamped = [min(max(factor, 1.0), max_amplification) for factor in factors]
        if values.ndim == 2:
            return clamped[0]
        if is_numpy:
            return np.asarray(clamped, dtype=mosaic.dtype)
        return torch.tensor(clamped, dtype=mosaic.dtype, device=mosaic.device)

    return images, finish
