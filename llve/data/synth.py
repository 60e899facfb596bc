"""Synthetic low-light raw data from clean sRGB images: unprocessing plus physics-based noise.

Pipeline (the default data source of llve, since real datasets cannot be downloaded here)::

    sRGB --inverse tone map, inverse gamma--> linear RGB --inverse CCM, inverse gains--> camera RGB
         --mosaic--> clean long-exposure raw --(÷ exposure ratio, sensor noise)--> short exposure

References
----------
- Brooks, Mildenhall, Xue, Chen, Sharlet, Barron, "Unprocessing Images for Learned Raw Denoising",
  CVPR 2019; released code google-research/unprocessing (``unprocess.py``). Followed exactly: the
  four XYZ->camera matrices, the random convex CCM, the gain distributions, the inverse smoothstep,
  the inverse gamma with its 1e-8 clamp, the highlight-preserving inverse gains (inflection 0.9) and
  the shot/read noise-level distribution.
- Wei, Fu, Yang, Huang, "A Physics-based Noise Formation Model for Extreme Low-light Raw Denoising",
  CVPR 2020, and Wei, Fu, Zheng, Yang, "Physics-based Noise Modeling for Extreme Low-light
  Photography", TPAMI 2021 (ELD); released code Vandermode/ELD. Sony A7S2 calibration transcribed in
  ``papers/FACTS.md`` (darkdiff section).
- Chhirolya, Malik, Soundararajan, "Low Light Video Enhancement by Learning on Static Videos with
  Cross-Frame Attention", BMVC 2022 (cfa), Setting 2: gamma-darkened sRGB frames plus noise, "similar
  to" Zhang et al., CVPR 2021 [29]. See :func:`darken_srgb` for the recipe chosen where the text is
  vague.

Units
-----
- *Normalised raw*: ``(DN - black) / (white - black)`` as SID does, so 1.0 is sensor saturation.
  The short exposure is **not amplified** (its value ≈ clean / ratio + noise) and keeps the
  below-black read-noise tail (negative values), so its mean stays unbiased: SID's loader applies
  ``max(·, 0)`` and the ratio itself.
- *DN*: digital numbers of the 14-bit Sony A7S2 (black 512, white 16383), including the black
  level. ELD's noise parameters (system gain K in DN per electron, read/row scales) are in DN.
- Brooks' Poisson–Gaussian parameters are in normalised units: variance = shot · signal + read.

Randomness comes only from the ``numpy.random.Generator`` made from each function's ``seed``
(an int or a Generator); the global RNG state is never touched.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from llve.data.cfa import colour_index_grid, plane_positions
from llve.errors import InvalidInputError, UnknownNameError

Seed = Union[int, np.random.Generator]

# --- Brooks et al. 2019 unprocessing ------------------------------------------------------------

# XYZ -> camera matrices of four cameras, transcribed from ``random_ccm`` in
# google-research/unprocessing/unprocess.py (Brooks et al. 2019).
XYZ_TO_CAMERA_MATRICES = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
# Sony ILCE-7S / ILCE-7SM2 (A7S II, the camera of SID Sony and of ELD's calibration): XYZ (D65)
# -> camera RGB, LibRaw's adobe_coeff entry for "Sony ILCE-7S" ("also ILCE-7SM2"), /10000. This is
# the matrix LibRaw renders SID's ARW files with, so it is the colour response SID's ground truth
# (and hence the released Lamba model) assumes.
SONY_A7S2_XYZ_TO_CAMERA = np.array([[5838, -1430, -246],
                                    [-3497, 11477, 2297],
                                    [-748, 1885, 5778]]) / 10000
# The centre of Brooks et al.'s as-shot white-balance ranges (red U(1.9, 2.4), blue U(1.5, 1.9)),
# the "typical" gains when one value must stand for a camera's as-shot white balance.
SONY_A7S2_WB_GAINS = (2.15, 1.0, 1.70)
# Linear sRGB (D65) -> XYZ, as in the same file.
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])

_GAMMA = 2.2
_GAMMA_EPSILON = 1e-8  # Brooks clamps before the power for stable gradients near 0
_HIGHLIGHT_INFLECTION = 0.9


@dataclass(frozen=True)
class UnprocessingParams:
    """One random camera for Brooks unprocessing.

    ``rgb_to_camera`` maps linear sRGB to camera RGB (rows sum to 1, so white stays white);
    ``rgb_gain`` is the digital brightening the forward ISP applies; ``red_gain``/``blue_gain`` are
    the white-balance gains (green = 1).
    """

    rgb_to_camera: np.ndarray
    rgb_gain: float
    red_gain: float
    blue_gain: float

    @property
    def camera_to_rgb(self) -> np.ndarray:
        """The colour correction matrix the forward ISP applies (camera RGB -> linear sRGB)."""
        return np.linalg.inv(self.rgb_to_camera)

    @property
    def wb_gains(self) -> np.ndarray:
        """White-balance gains (R, G, B) normalised to green, as a camera's metadata gives them."""
        return np.array([self.red_gain, 1.0, self.blue_gain])


def as_generator(seed: Seed) -> np.random.Generator:
    """A numpy Generator: ``seed`` itself if it is one (to continue its stream), else a new one."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_unprocessing_params(seed: Seed = 0) -> UnprocessingParams:
    """Draw a camera as Brooks et al. do.

    CCM: a random convex combination of :data:`XYZ_TO_CAMERA_MATRICES` (weights uniform, then
    normalised), times :data:`SRGB_TO_XYZ`, rows normalised to sum 1. Gains: ``rgb_gain = 1/N(0.8,
    0.1)``, ``red_gain ~ U(1.9, 2.4)``, ``blue_gain ~ U(1.5, 1.9)``. The normal draw is floored at
    0.1 so that a (≈8σ) non-positive draw cannot make the gain meaningless.
    """
    rng = as_generator(seed)
    weights = rng.uniform(1e-8, 1.0, size=len(XYZ_TO_CAMERA_MATRICES))
    xyz_to_camera = np.tensordot(weights / weights.sum(), XYZ_TO_CAMERA_MATRICES, axes=1)
    rgb_to_camera = xyz_to_camera @ SRGB_TO_XYZ
    rgb_to_camera /= rgb_to_camera.sum(axis=1, keepdims=True)
    rgb_gain = 1.0 / max(rng.normal(0.8, 0.1), 0.1)
    red_gain = rng.uniform(1.9, 2.4)
    blue_gain = rng.uniform(1.5, 1.9)
    return UnprocessingParams(rgb_to_camera, float(rgb_gain), float(red_gain), float(blue_gain))


def with_sony_a7s2_colour(params: UnprocessingParams) -> UnprocessingParams:
    """``params`` with the Sony A7S2's colour matrix (:data:`SONY_A7S2_XYZ_TO_CAMERA` times
    :data:`SRGB_TO_XYZ`, rows normalised as Brooks normalises his) and the same brightening and
    white-balance gains: a draw of :func:`random_unprocessing_params` turned into the camera of
    SID Sony, so both cameras can share one random stream."""
    rgb_to_camera = SONY_A7S2_XYZ_TO_CAMERA @ SRGB_TO_XYZ
    rgb_to_camera = rgb_to_camera / rgb_to_camera.sum(axis=1, keepdims=True)
    return dataclasses.replace(params, rgb_to_camera=rgb_to_camera)


def xyz_to_camera(params: UnprocessingParams) -> np.ndarray:
    """The XYZ -> camera matrix of an unprocessing camera (what a DNG's ColorMatrix1 holds)."""
    return params.rgb_to_camera @ np.linalg.inv(SRGB_TO_XYZ)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """The global tone curve ``3x² − 2x³`` Brooks et al. assume a camera applies."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def inverse_smoothstep(x: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`smoothstep` on [0, 1]: ``0.5 − sin(asin(1 − 2x) / 3)``."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * x) / 3.0)


def gamma_expansion(x: np.ndarray) -> np.ndarray:
    """Gamma-encoded -> linear: ``max(x, 1e-8)^2.2``."""
    return np.maximum(x, _GAMMA_EPSILON) ** _GAMMA


def gamma_compression(x: np.ndarray) -> np.ndarray:
    """Linear -> gamma-encoded: ``max(x, 1e-8)^(1/2.2)``, the inverse of :func:`gamma_expansion`."""
    return np.maximum(x, _GAMMA_EPSILON) ** (1.0 / _GAMMA)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """Undo tone mapping and gamma: display sRGB -> linear RGB (sRGB primaries), float32."""
    return gamma_expansion(inverse_smoothstep(srgb)).astype(np.float32)


def _highlight_safe_inverse_gains(camera_rgb: np.ndarray, params: UnprocessingParams) -> np.ndarray:
    """Divide out white balance and brightening, except near white.

    Plain division would dim saturated highlights below 1, so they would never clip in the raw;
    Brooks et al. blend the gains towards 1 as the pixel's mean rises above 0.9.
    """
    gains = np.array([1.0 / params.red_gain, 1.0, 1.0 / params.blue_gain]) / params.rgb_gain
    gray = camera_rgb.mean(axis=-1, keepdims=True)
    mask = (np.maximum(gray - _HIGHLIGHT_INFLECTION, 0.0) / (1.0 - _HIGHLIGHT_INFLECTION)) ** 2
    gains = gains.astype(np.float32)
    safe_gains = np.maximum(mask + (1.0 - mask) * gains, gains)
    return camera_rgb * safe_gains


def linear_to_camera(linear_rgb: np.ndarray, params: UnprocessingParams) -> np.ndarray:
    """Linear sRGB -> camera RGB as the sensor saw it: inverse CCM, inverse gains, clip to [0, 1]."""
    camera_rgb = linear_rgb @ params.rgb_to_camera.T.astype(np.float32)
    camera_rgb = _highlight_safe_inverse_gains(camera_rgb, params)
    return np.clip(camera_rgb, 0.0, 1.0).astype(np.float32)


def mosaic(rgb: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Sample a (..., H, W, 3) image through a Bayer CFA: (..., H, W), H and W even."""
    height, width = rgb.shape[-3:-1]
    if rgb.shape[-1] != 3 or height % 2 or width % 2:
        raise InvalidInputError(
            f"mosaic needs (..., H, W, 3) with even H and W, got shape {rgb.shape}")
    grid = colour_index_grid(pattern)
    raw = np.empty(rgb.shape[:-1], dtype=rgb.dtype)
    for row in range(2):
        for column in range(2):
            raw[..., row::2, column::2] = rgb[..., row::2, column::2, grid[row, column]]
    return raw


def _check_srgb(srgb: np.ndarray) -> np.ndarray:
    srgb = np.asarray(srgb)
    if srgb.ndim < 3 or srgb.shape[-1] != 3:
        raise InvalidInputError(f"expected an sRGB image (..., H, W, 3), got shape {srgb.shape}")
    if not np.issubdtype(srgb.dtype, np.floating):
        raise InvalidInputError(f"expected float sRGB in [0, 1], got dtype {srgb.dtype}")
    if not np.all(np.isfinite(srgb)) or srgb.min() < -1e-6 or srgb.max() > 1 + 1e-6:
        raise InvalidInputError("sRGB values must be finite and within [0, 1]")
    return np.ascontiguousarray(srgb, dtype=np.float32)  # owns broadcast views (static clips)


def unprocess(srgb: np.ndarray, params: UnprocessingParams, pattern: str = "RGGB") -> np.ndarray:
    """sRGB (..., H, W, 3) in [0, 1] -> clean linear raw mosaic (..., H, W) in [0, 1] (Brooks 2019).

    Inverse smoothstep, inverse gamma, inverse CCM, highlight-preserving inverse gains, clip at
    saturation, Bayer mosaic in ``pattern``. Use :func:`srgb_to_linear` and
    :func:`linear_to_camera` for the intermediate images.
    """
    camera_rgb = linear_to_camera(srgb_to_linear(_check_srgb(srgb)), params)
    return mosaic(camera_rgb, pattern)


# --- sensor noise -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogLinearFit:
    """ELD's fit of a noise scale against the system gain K (natural logarithms, σ in DN):
    ``log σ = slope·log K + bias + N(0, sigma)``."""

    slope: float
    bias: float
    sigma: float

    def sample(self, log_gain: float, rng: np.random.Generator) -> float:
        return float(np.exp(self.slope * log_gain + self.bias + rng.normal(0.0, self.sigma)))

    def typical(self, log_gain: float) -> float:
        """The fitted line itself (the median over cameras of this model), without the scatter."""
        return float(np.exp(self.slope * log_gain + self.bias))


@dataclass(frozen=True)
class EldCalibration:
    """A camera's ELD noise calibration. Defaults: Sony A7S2 (FACTS.md, from the ELD release)."""

    camera: str = "Sony A7S2"
    gain_range: tuple[float, float] = (0.093916, 6.010629)
    tukey_shapes: tuple[float, ...] = (
        0.11429, 0.12857, 0.05714, 0.04286, 0.0, 0.0, -0.04286, -0.05714,
        -0.08571, -0.08571, -0.08571, -0.08571, -0.11429, -0.11429, -0.14286, -0.12857,
        -0.14286, -0.14286)
    tukey_read: LogLinearFit = LogLinearFit(0.462105, 0.565715, 0.263371)
    gaussian_read: LogLinearFit = LogLinearFit(0.540750, 1.218237, 0.267512)
    row: LogLinearFit = LogLinearFit(0.527536, -0.591700, 0.294288)
    black_level: int = 512
    white_level: int = 16383


SONY_A7S2 = EldCalibration()


@dataclass(frozen=True)
class EldNoiseParams:
    """One draw of the ELD model. ``read_scale`` and ``row_scale`` are in DN; ``system_gain`` K in
    DN per electron. For Tukey-lambda read noise ``read_scale`` is the distribution's *scale*
    parameter (what ELD fits; std = scale · ``scipy.stats.tukeylambda.std(read_shape)``); for
    Gaussian read noise it is the standard deviation and ``read_shape`` is unused."""

    system_gain: float
    read_shape: float
    read_scale: float
    row_scale: float
    read_distribution: str


@dataclass(frozen=True)
class PoissonGaussianParams:
    """Brooks' heteroscedastic noise level in normalised units: variance = shot·signal + read."""

    shot: float
    read: float


def tukey_lambda(shape: float, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard Tukey-lambda samples, inverse CDF ``(u^λ − (1−u)^λ)/λ`` (logistic at λ=0)."""
    u = np.clip(rng.random(size), 2.0**-53, 1.0 - 2.0**-53)  # keep the tails finite
    if shape == 0.0:
        return np.log(u / (1.0 - u))
    return (u**shape - (1.0 - u) ** shape) / shape


class EldNoiseModel:
    """ELD physics-based raw noise (Wei et al. CVPR 2020 / TPAMI 2021) for one camera calibration.

    For a clean signal of ``s`` DN above black: electrons ``Poisson(s / K)``, times K (shot); plus
    read noise (Tukey-lambda, shape λ drawn from the calibrated list, or Gaussian); plus one
    Gaussian offset per sensor row (row / banding noise); plus the black level; rounded to integer
    DN and clipped to the ADC range [0, white] (quantisation). K is log-uniform in the calibrated
    range unless ``system_gain`` fixes it; the read and row scales follow K through the calibrated
    log-linear fits. ``shot``/``read``/``row``/``quantise`` switch components off for ablations
    and tests.

    Deviations from the ELD release (``noise.py``): row noise is one offset per row of the full
    mosaic (the release draws one per row *and* packed colour plane, so the two colours sharing a
    physical row get different offsets); quantisation rounds every pixel to an integer DN (the
    release adds a single ``uniform(−½, ½)`` quantisation-step offset to the whole image: its
    call has no ``size``); no amplification by the ratio here (the release multiplies by it).
    ELD's colour-bias term is not modelled.
    """

    name = "eld"

    def __init__(self, calibration: EldCalibration = SONY_A7S2, system_gain: float | None = None,
                 read_distribution: str = "tukey", shot: bool = True, read: bool = True,
                 row: bool = True, quantise: bool = True) -> None:
        if read_distribution not in ("tukey", "gaussian"):
            raise InvalidInputError(
                f"read_distribution must be 'tukey' or 'gaussian', got {read_distribution!r}")
        if system_gain is not None and system_gain <= 0:
            raise InvalidInputError(
                f"system_gain (K, DN per electron) must be > 0, got {system_gain}")
        self.calibration = calibration
        self.system_gain = system_gain
        self.read_distribution = read_distribution
        self.shot, self.read, self.row, self.quantise = shot, read, row, quantise

    @property
    def signal_range(self) -> float:
        """DN between black and white: normalised 1.0 in DN."""
        return float(self.calibration.white_level - self.calibration.black_level)

    def sample_params(self, seed: Seed = 0) -> EldNoiseParams:
        """Draw K (unless fixed), the Tukey shape, and read/row scales from the calibrated fits."""
        rng = as_generator(seed)
        low, high = self.calibration.gain_range
        log_gain = (np.log(self.system_gain) if self.system_gain is not None
                    else rng.uniform(np.log(low), np.log(high)))
        shape = float(rng.choice(self.calibration.tukey_shapes))
        fit = (self.calibration.tukey_read if self.read_distribution == "tukey"
               else self.calibration.gaussian_read)
        return EldNoiseParams(system_gain=float(np.exp(log_gain)), read_shape=shape,
                              read_scale=fit.sample(log_gain, rng),
                              row_scale=self.calibration.row.sample(log_gain, rng),
                              read_distribution=self.read_distribution)

    def typical_params(self, system_gain: float) -> EldNoiseParams:
        """Deterministic parameters at gain K: the calibrated lines without their scatter and the
        median Tukey shape. For sweeps and calibration plots, where a random draw per point
        would hide the trend."""
        log_gain = float(np.log(system_gain))
        fit = (self.calibration.tukey_read if self.read_distribution == "tukey"
               else self.calibration.gaussian_read)
        return EldNoiseParams(system_gain=float(system_gain),
                              read_shape=float(np.median(self.calibration.tukey_shapes)),
                              read_scale=fit.typical(log_gain),
                              row_scale=self.calibration.row.typical(log_gain),
                              read_distribution=self.read_distribution)

    def noisy_dn(self, signal_dn: np.ndarray, params: EldNoiseParams, seed: Seed = 0) -> np.ndarray:
        """Noisy raw in DN (black level included) from the expected signal above black, in DN.

        ``signal_dn`` is (..., H, W) with rows along axis -2. Returns float32, integer-valued
        when quantising.
        """
        rng = as_generator(seed)
        signal_dn = np.maximum(np.asarray(signal_dn, dtype=np.float64), 0.0)
        gain = params.system_gain
        dn = rng.poisson(signal_dn / gain) * gain if self.shot else signal_dn.copy()
        if self.read:
            if params.read_distribution == "tukey":
                dn += params.read_scale * tukey_lambda(params.read_shape, dn.shape, rng)
            else:
                dn += rng.normal(0.0, params.read_scale, dn.shape)
        if self.row:
            dn += rng.normal(0.0, params.row_scale, dn.shape[:-1] + (1,))
        dn += self.calibration.black_level
        if self.quantise:
            dn = np.round(dn)
        return np.clip(dn, 0, self.calibration.white_level).astype(np.float32)

    def apply(self, clean: np.ndarray, params: EldNoiseParams, seed: Seed = 0) -> np.ndarray:
        """Noisy from clean normalised raw, both ``(DN − black) / (white − black)``."""
        dn = self.noisy_dn(np.asarray(clean) * self.signal_range, params, seed)
        return ((dn - self.calibration.black_level) / self.signal_range).astype(np.float32)

    def __call__(self, clean: np.ndarray, seed: Seed = 0) -> tuple[np.ndarray, EldNoiseParams]:
        """Draw parameters and apply them: (noisy normalised raw, parameters)."""
        rng = as_generator(seed)
        params = self.sample_params(rng)
        return self.apply(clean, params, rng), params


class PoissonGaussianNoiseModel:
    """Brooks et al.'s shot + read noise, in normalised units.

    Levels: ``shot`` log-uniform in [1e-4, 0.012]; ``log read = 2.18·log shot + 1.20 + N(0, 0.26)``
    (``read`` is a variance). Fix either with the constructor. Noise: ``Poisson(x/shot)·shot +
    N(0, √read)`` — true Poisson counts where Brooks use a Gaussian of the same mean and variance,
    so the noise stays signal-dependent and discrete at the very low counts of a dark frame. No
    quantisation and no clipping (callers clip to their range).
    """

    name = "poisson_gaussian"

    def __init__(self, shot: float | None = None, read: float | None = None,
                 shot_range: tuple[float, float] = (1e-4, 0.012)) -> None:
        if (shot is not None and shot <= 0) or (read is not None and read < 0):
            raise InvalidInputError(f"shot must be > 0 and read >= 0, got {shot}, {read}")
        self.shot, self.read, self.shot_range = shot, read, shot_range

    def sample_params(self, seed: Seed = 0) -> PoissonGaussianParams:
        """Draw the shot level log-uniformly (unless fixed) and the read level from Brooks' line."""
        rng = as_generator(seed)
        log_shot = (np.log(self.shot) if self.shot is not None
                    else rng.uniform(np.log(self.shot_range[0]), np.log(self.shot_range[1])))
        log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
        read = self.read if self.read is not None else float(np.exp(log_read))
        return PoissonGaussianParams(shot=float(np.exp(log_shot)), read=read)

    def apply(self, clean: np.ndarray, params: PoissonGaussianParams, seed: Seed = 0) -> np.ndarray:
        """Noisy values (float32, same units as ``clean``) from clean values."""
        rng = as_generator(seed)
        clean = np.maximum(np.asarray(clean, dtype=np.float64), 0.0)
        noisy = rng.poisson(clean / params.shot) * params.shot
        noisy += rng.normal(0.0, np.sqrt(params.read), clean.shape)
        return noisy.astype(np.float32)

    def __call__(self, clean: np.ndarray,
                 seed: Seed = 0) -> tuple[np.ndarray, PoissonGaussianParams]:
        """Draw parameters and apply them: (noisy values, parameters)."""
        rng = as_generator(seed)
        params = self.sample_params(rng)
        return self.apply(clean, params, rng), params


NoiseModel = Union[EldNoiseModel, PoissonGaussianNoiseModel]
NOISE_MODELS = {"eld": EldNoiseModel, "poisson_gaussian": PoissonGaussianNoiseModel}


def noise_model(noise: str | NoiseModel) -> NoiseModel:
    """A noise model from its name (``"eld"``, ``"poisson_gaussian"``) or the model itself."""
    if isinstance(noise, (EldNoiseModel, PoissonGaussianNoiseModel)):
        return noise
    if noise not in NOISE_MODELS:
        raise UnknownNameError(
            f"unknown noise model {noise!r}; expected one of {tuple(NOISE_MODELS)}")
    return NOISE_MODELS[noise]()


# --- paired dark data ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticRawMetadata:
    """What a camera file would record about a synthetic capture (``wb_gains`` green-normalised,
    ``ccm`` camera RGB -> linear sRGB)."""

    ratio: float
    pattern: str
    black_level: int
    white_level: int
    wb_gains: np.ndarray
    rgb_gain: float
    ccm: np.ndarray
    noise_model: str
    noise: EldNoiseParams | PoissonGaussianParams
    unprocessing: UnprocessingParams = field(repr=False)


@dataclass(frozen=True)
class DarkPair:
    """A synthetic short/long exposure pair (leading frame axes allowed: see :func:`dark_pair`).

    - ``noisy``: short exposure, (..., H, W) float32 normalised raw, **not** amplified (≈ clean /
      ratio + noise); at most 1, and negative where read noise falls below black (ELD: down to
      its ADC floor ``-black / (white - black)``; Poisson–Gaussian: unbounded, as in Brooks).
    - ``clean``: long exposure, (..., H, W) float32 normalised raw in [0, 1], saturated at 1.
    - ``srgb``: (..., H, W, 3) float32 clean sRGB target (the input image).
    - ``linear_rgb``: (..., H, W, 3) float32 linear sRGB-primary RGB of the target (before gamma
      and tone curve; what the forward ISP's CCM produces).
    """

    noisy: np.ndarray
    clean: np.ndarray
    srgb: np.ndarray
    linear_rgb: np.ndarray
    metadata: SyntheticRawMetadata


def dark_pair(srgb: np.ndarray, ratio: float = 100.0, noise: str | NoiseModel = "eld",
              pattern: str = "RGGB", seed: Seed = 0,
              unprocessing: UnprocessingParams | None = None,
              noise_params: EldNoiseParams | PoissonGaussianParams | None = None) -> DarkPair:
    """Make a SID-like pair from a clean sRGB image (H, W, 3), or a clip (T, H, W, 3).

    The long exposure is the unprocessed image (clipped at saturation, as a real sensor clips);
    the short exposure receives ``ratio`` times less light plus sensor noise of the chosen model.
    One camera (``unprocessing``) and one noise-parameter draw serve all leading axes, each pixel
    of each frame gets independent noise: a (T, H, W, 3) input is a static or dynamic clip shot
    with fixed camera settings. Pass ``unprocessing``/``noise_params`` to reuse a draw.
    Both raw images are black-level normalised with the sensor's levels (the ELD model's
    calibration; Sony A7S2 black 512, white 16383 by default and for Poisson–Gaussian noise),
    recorded in the metadata so DN can be recovered.
    """
    if not ratio >= 1.0:
        raise InvalidInputError(f"exposure ratio must be >= 1, got {ratio!r}")
    plane_positions(pattern)  # validates the pattern name
    srgb = _check_srgb(srgb)
    rng = as_generator(seed)
    model = noise_model(noise)
    params = unprocessing if unprocessing is not None else random_unprocessing_params(rng)
    level_params = noise_params if noise_params is not None else model.sample_params(rng)
    linear_rgb = srgb_to_linear(srgb)
    clean = mosaic(linear_to_camera(linear_rgb, params), pattern)
    noisy = model.apply(clean / np.float32(ratio), level_params, rng)
    noisy = np.minimum(noisy, 1.0)  # saturation; ELD also clips at its ADC floor, Brooks never
    calibration = model.calibration if isinstance(model, EldNoiseModel) else SONY_A7S2
    black, white = calibration.black_level, calibration.white_level
    metadata = SyntheticRawMetadata(
        ratio=float(ratio), pattern=pattern, black_level=black, white_level=white,
        wb_gains=params.wb_gains, rgb_gain=params.rgb_gain, ccm=params.camera_to_rgb,
        noise_model=model.name, noise=level_params, unprocessing=params)
    return DarkPair(noisy=noisy, clean=clean, srgb=srgb, linear_rgb=linear_rgb, metadata=metadata)


# --- dark frames --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DarkFrame:
    """A synthetic lens-capped frame: ``dn`` uint16 (H, W) with the black level included."""

    dn: np.ndarray
    pattern: str
    black_level: int
    white_level: int
    noise: EldNoiseParams


def synthetic_dark_frame(shape: tuple[int, int] = (512, 512), pattern: str = "RGGB",
                         system_gain: float | None = None, seed: Seed = 0,
                         calibration: EldCalibration = SONY_A7S2,
                         typical: bool = False) -> DarkFrame:
    """A dark frame from the ELD model (zero signal: read + row noise, quantised), in DN.

    ``system_gain`` (K, DN per electron) plays the role of ISO; random in the calibrated range
    if omitted. ``typical=True`` (needs ``system_gain``) uses the calibrated lines without their
    per-draw scatter (:meth:`EldNoiseModel.typical_params`). Compare with a real dark frame through ``llve.data.calibration`` and
    :func:`read_noise_tukey_shape`.
    """
    plane_positions(pattern)
    rng = as_generator(seed)
    model = EldNoiseModel(calibration, system_gain=system_gain)
    if typical and system_gain is None:
        raise InvalidInputError("synthetic_dark_frame(typical=True) needs a system_gain")
    params = model.typical_params(system_gain) if typical else model.sample_params(rng)
    dn = model.noisy_dn(np.zeros(shape), params, rng)
    return DarkFrame(dn=dn.astype(np.uint16), pattern=pattern, black_level=calibration.black_level,
                     white_level=calibration.white_level, noise=params)


def read_noise_tukey_shape(dark_dn: np.ndarray, black_level: float = 0.0,
                           sample_size: int = 20000, seed: Seed = 0) -> float:
    """Tukey-lambda shape of a dark frame's read noise, estimated as ELD does.

    Row means are removed first (row noise is a separate component), then the shape maximising
    the probability-plot correlation (``scipy.stats.ppcc_max``) is found on ``sample_size``
    random pixels. Pass one CFA plane (``llve.data.raw.pack``) when the planes differ in spread:
    a mixture of spreads looks heavier-tailed than each plane is. λ ≈ 0.14 is nearly Gaussian,
    λ = 0 logistic, λ < 0 heavier-tailed. Per-plane means, spreads and row noise:
    ``llve.data.raw.noise_statistics``.
    """
    from scipy import stats  # scipy.stats costs about a second to import; only this needs it

    frame = np.asarray(dark_dn, dtype=np.float64) - black_level
    residual = (frame - frame.mean(axis=-1, keepdims=True)).ravel()
    subset = as_generator(seed).choice(residual, min(sample_size, residual.size), replace=False)
    return float(stats.ppcc_max(subset, brack=(-0.5, 0.5), dist="tukeylambda"))


# --- sRGB video darkening (cfa Setting 2) -------------------------------------------------------

@dataclass(frozen=True)
class SrgbDarkeningParams:
    """``dark = beta · (alpha · x)^gamma`` plus Poisson–Gaussian noise (normalised sRGB units)."""

    gamma: float
    alpha: float
    beta: float
    noise: PoissonGaussianParams


def random_srgb_darkening_params(seed: Seed = 0, gamma_range: tuple[float, float] = (1.5, 5.0),
                                 alpha_range: tuple[float, float] = (0.9, 1.0),
                                 beta_range: tuple[float, float] = (0.5, 1.0)
                                 ) -> SrgbDarkeningParams:
    """Draw a darkening: gamma, alpha, beta uniform in their ranges; Brooks noise levels."""
    rng = as_generator(seed)
    gamma, alpha, beta = (rng.uniform(*bounds) for bounds in (gamma_range, alpha_range, beta_range))
    noise = PoissonGaussianNoiseModel().sample_params(rng)
    return SrgbDarkeningParams(float(gamma), float(alpha), float(beta), noise)


def darken_srgb(frames: np.ndarray, params: SrgbDarkeningParams | None = None,
                seed: Seed = 0) -> tuple[np.ndarray, SrgbDarkeningParams]:
    """Darken sRGB frames (..., H, W, 3) as in the cfa paper's Setting 2; returns (dark, params).

    The paper says only "a gamma transform ... and multiple instances of noise similar to [29]"
    (Zhang et al., CVPR 2021). Chosen here: the gamma/scaling synthesis of Lv et al. (MBLLEN
    lineage, which [29]'s synthetic data follows), ``beta·(alpha·x)^gamma`` with gamma ~ U(1.5, 5),
    alpha ~ U(0.9, 1), beta ~ U(0.5, 1), then Brooks-level Poisson–Gaussian noise on the darkened
    values, clipped to [0, 1]. One parameter draw for the whole array and independent noise per
    element, so a repeated frame gives a static video with fresh noise in every frame.
    """
    frames = _check_srgb(frames)
    rng = as_generator(seed)
    params = params if params is not None else random_srgb_darkening_params(rng)
    dark = params.beta * (params.alpha * frames) ** params.gamma
    noisy = PoissonGaussianNoiseModel().apply(dark, params.noise, rng)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32), params
