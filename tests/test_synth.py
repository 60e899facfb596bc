"""Synthetic low light: unprocessing is invertible, the noise models have the statistics they claim.

Statistical tolerances are stated next to each check; every random draw is seeded.
"""

import numpy as np
import pytest
from conftest import shared_file
from scipy import stats

from llve.data import SHARED_DATA, shared_sample
from llve.data.cfa import BAYER_PATTERNS, plane_positions
from llve.data.images import clean_image
from llve.data.synth import (
    SONY_A7S2, EldNoiseModel, EldNoiseParams, PoissonGaussianNoiseModel, PoissonGaussianParams,
    dark_pair, darken_srgb, gamma_compression, gamma_expansion, inverse_smoothstep,
    linear_to_camera, mosaic, random_unprocessing_params, read_noise_tukey_shape, smoothstep,
    srgb_to_linear, synthetic_dark_frame, unprocess)
from llve.errors import InvalidInputError, UnknownNameError

REAL_DARK_FRAME = shared_sample("real_raw/canon650d_rawvideo_darkframe_1280x720.dng")
SIGNAL_RANGE = SONY_A7S2.white_level - SONY_A7S2.black_level


@pytest.fixture(scope="module")
def astronaut():
    return clean_image("astronaut", size=256)


# --- unprocessing ---------------------------------------------------------------------------------

def test_inverse_smoothstep_value_and_inverse():
    assert inverse_smoothstep(np.array(0.25)) == pytest.approx(0.326352, abs=1e-6)
    x = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(smoothstep(inverse_smoothstep(x)), x, atol=1e-12)
    y = np.linspace(0.01, 1.0, 100)
    np.testing.assert_allclose(gamma_compression(gamma_expansion(y)), y, rtol=1e-12)


def test_unprocessing_params_follow_brooks():
    params = random_unprocessing_params(5)
    np.testing.assert_allclose(params.rgb_to_camera.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(params.camera_to_rgb @ params.rgb_to_camera, np.eye(3), atol=1e-10)
    draws = [random_unprocessing_params(seed) for seed in range(200)]
    assert all(1.9 <= d.red_gain <= 2.4 and 1.5 <= d.blue_gain <= 1.9 for d in draws)
    # 1 / rgb_gain ~ N(0.8, 0.1): mean within 4 standard errors (0.1 / sqrt(200) = 0.007)
    assert np.mean([1 / d.rgb_gain for d in draws]) == pytest.approx(0.8, abs=0.03)
    again = random_unprocessing_params(5)
    assert np.array_equal(params.rgb_to_camera, again.rgb_to_camera)
    assert (params.rgb_gain, params.red_gain, params.blue_gain) == (
        again.rgb_gain, again.red_gain, again.blue_gain)
    assert not np.array_equal(params.rgb_to_camera, random_unprocessing_params(6).rgb_to_camera)


def test_unprocess_then_forward_process_recovers_srgb(astronaut):
    for seed in range(3):
        params = random_unprocessing_params(seed)
        linear = srgb_to_linear(astronaut)
        camera = linear_to_camera(linear, params)
        # the forward ISP: white balance and brightening, CCM, gamma, tone curve
        linear_again = (camera * params.wb_gains * params.rgb_gain) @ params.camera_to_rgb.T
        srgb_again = smoothstep(gamma_compression(np.clip(linear_again, 0.0, 1.0)))
        before_gains = linear @ params.rgb_to_camera.T
        # pixels outside the highlight blend (mean < 0.9) and not clipped
        exact = (before_gains.mean(-1) < 0.9) & np.all((camera > 0) & (camera < 1), axis=-1)
        assert exact.mean() > 0.95
        # exact inverse away from the highlight blend and clipping (float32 rounding only)
        assert np.abs(srgb_again - astronaut)[exact].max() < 1e-5
        assert 10 * np.log10(1 / np.mean((srgb_again - astronaut) ** 2)) > 60.0
        np.testing.assert_array_equal(unprocess(astronaut, params), mosaic(camera, "RGGB"))


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_mosaic_follows_the_pattern(pattern):
    rgb = np.random.default_rng(0).random((2, 8, 10, 3)).astype(np.float32)
    raw = mosaic(rgb, pattern)
    assert raw.shape == (2, 8, 10)
    channel = {"R": 0, "G1": 1, "G2": 1, "B": 2}
    for plane, (row, column) in plane_positions(pattern).items():
        expected = rgb[:, row::2, column::2, channel[plane]]
        np.testing.assert_array_equal(raw[:, row::2, column::2], expected)
    with pytest.raises(InvalidInputError, match="even"):
        mosaic(rgb[:, :7], pattern)


def test_white_saturates_the_raw_and_the_adc_clips():
    scene = np.full((64, 64, 3), 0.3, np.float32)
    scene[:, :32] = 1.0
    pair = dark_pair(scene, ratio=1.0, noise="eld", seed=0)
    white = pair.clean[:, :32]
    assert pair.clean.max() <= 1.0 and white.min() > 1.0 - 1e-6
    assert pair.noisy.max() <= 1.0
    # at saturation about half the Poisson draws exceed white and clip to exactly 1.0
    assert 0.3 < np.mean(pair.noisy[:, :32] == 1.0) < 0.7


# --- paired data --------------------------------------------------------------------------------

@pytest.mark.parametrize("noise", ["eld", "poisson_gaussian"])
def test_dark_pair_shapes_ranges_metadata(astronaut, noise):
    pair = dark_pair(astronaut, ratio=100, noise=noise, pattern="GBRG", seed=1)
    assert pair.noisy.shape == pair.clean.shape == (256, 256)
    assert pair.srgb.shape == pair.linear_rgb.shape == (256, 256, 3)
    for array in (pair.noisy, pair.clean, pair.srgb, pair.linear_rgb):
        assert array.dtype == np.float32 and np.all(np.isfinite(array))
    assert 0.0 <= pair.clean.min() and pair.clean.max() <= 1.0
    assert pair.noisy.max() <= 1.0
    if noise == "eld":
        assert pair.noisy.min() >= -512 / SIGNAL_RANGE  # the ADC floor at 0 DN
    assert pair.noisy.std() < pair.clean.std()  # dark: 100x less light
    meta = pair.metadata
    levels = (meta.ratio, meta.pattern, meta.black_level, meta.white_level)
    assert levels == (100.0, "GBRG", 512, 16383)
    assert meta.wb_gains[1] == 1.0 and meta.noise_model == noise
    np.testing.assert_allclose(meta.ccm, np.linalg.inv(meta.unprocessing.rgb_to_camera))


def test_dark_pair_is_deterministic(astronaut):
    first, again = dark_pair(astronaut, seed=7), dark_pair(astronaut, seed=7)
    assert np.array_equal(first.noisy, again.noisy) and np.array_equal(first.clean, again.clean)
    other = dark_pair(astronaut, seed=8)
    assert not np.array_equal(first.noisy, other.noisy)
    generator = np.random.default_rng(7)
    assert not np.array_equal(dark_pair(astronaut, seed=generator).noisy,
                              dark_pair(astronaut, seed=generator).noisy)  # stream continues


def test_dark_pair_rejects_bad_input(astronaut):
    with pytest.raises(InvalidInputError):
        dark_pair(astronaut, ratio=0.5)
    with pytest.raises(InvalidInputError):
        dark_pair(astronaut * 2)
    with pytest.raises(InvalidInputError):
        dark_pair((astronaut * 255).astype(np.uint8))
    with pytest.raises(UnknownNameError):
        dark_pair(astronaut, noise="gaussian")


@pytest.mark.parametrize("noise", ["eld", "poisson_gaussian"])
@pytest.mark.parametrize("seed", [2, 3])
def test_short_exposure_mean_is_clean_over_ratio(noise, seed):
    image = clean_image("astronaut", size=512)
    pair = dark_pair(image, ratio=100, noise=noise, seed=seed)
    residual = (pair.noisy - pair.clean / 100) * SIGNAL_RANGE  # DN; the clean mean is ≈ 17 DN
    # rows are independent (row noise is shared within a row), so the standard error of the mean
    # is the spread of row means over √rows; unbiased noise keeps the mean within 5 of them
    row_means = residual.mean(axis=1)
    standard_error = row_means.std() / np.sqrt(row_means.size)
    assert abs(residual.mean()) < 5 * standard_error
    if noise == "eld":  # SID-like Sony noise: a fraction of a DN (measured ≤ 0.37 over 20 seeds)
        assert abs(residual.mean()) < 0.5


# --- ELD noise ----------------------------------------------------------------------------------

@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_eld_variance_grows_with_signal_at_slope_k(gain):
    model = EldNoiseModel(system_gain=gain)
    params = model.sample_params(0)
    levels = np.array([0.0, 50.0, 200.0, 800.0, 3000.0])  # DN above black
    variances = [model.noisy_dn(np.full((256, 256), level), params, seed=i).var()
                 for i, level in enumerate(levels)]
    slope, intercept = np.polyfit(levels, variances, 1)
    # var = K·signal + read² + row² + 1/12; slope within 3% (its standard error is about 0.6%)
    assert slope == pytest.approx(gain, rel=0.03)
    assert intercept > 0


def test_eld_parameters_follow_the_calibration():
    model = EldNoiseModel(system_gain=2.0)
    draws = [model.sample_params(seed) for seed in range(400)]
    fit = SONY_A7S2.tukey_read
    log_scales = np.log([d.read_scale for d in draws])
    # mean of log σ: slope·log K + bias, within 4 standard errors (0.263 / √400)
    assert log_scales.mean() == pytest.approx(fit.slope * np.log(2.0) + fit.bias, abs=0.053)
    assert log_scales.std() == pytest.approx(fit.sigma, rel=0.15)
    assert {d.read_shape for d in draws} <= set(SONY_A7S2.tukey_shapes)
    gains = [EldNoiseModel().sample_params(seed).system_gain for seed in range(400)]
    low, high = SONY_A7S2.gain_range
    assert low <= min(gains) and max(gains) <= high
    # log-uniform: the median of log K sits mid-range (±0.1 of the log range)
    middle, spread = np.log(low * high) / 2, np.log(high / low)
    assert np.median(np.log(gains)) == pytest.approx(middle, abs=0.1 * spread)


@pytest.mark.parametrize("shape", [-0.14286, 0.0, 0.12857])
def test_tukey_read_noise_has_the_sampled_scale_and_shape(shape):
    model = EldNoiseModel(shot=False, row=False, quantise=False)
    params = EldNoiseParams(system_gain=1.0, read_shape=shape, read_scale=3.0, row_scale=0.0,
                            read_distribution="tukey")
    noise = model.noisy_dn(np.zeros((256, 256)), params, seed=1).ravel() - 512
    expected_std = 3.0 * stats.tukeylambda.std(shape)
    assert noise.std() == pytest.approx(expected_std, rel=0.02)  # relative SE of std ≈ 0.3%
    assert stats.kstest(noise[:20000] / 3.0, "tukeylambda", args=(shape,)).pvalue > 1e-3


def test_row_noise_is_present_and_has_the_sampled_scale():
    model = EldNoiseModel(shot=False, quantise=False)
    params = EldNoiseParams(system_gain=1.0, read_shape=0.0, read_scale=2.0, row_scale=1.5,
                            read_distribution="tukey")
    frame = model.noisy_dn(np.zeros((512, 512)), params, seed=2) - 512
    row_means = frame.mean(axis=1)
    pixel_share = frame.var() / frame.shape[1]
    assert row_means.var() > 20 * pixel_share  # far beyond what pixel noise explains
    # row std within 15% (relative SE of a std from 512 rows ≈ 3%)
    assert np.sqrt(row_means.var() - pixel_share) == pytest.approx(1.5, rel=0.15)


def test_quantisation_gives_integer_dn():
    model = EldNoiseModel()
    params = model.sample_params(3)
    dn = model.noisy_dn(np.full((64, 64), 40.0), params, seed=3)
    assert np.array_equal(dn, np.round(dn)) and dn.min() >= 0 and dn.max() <= 16383
    noisy = model.apply(np.full((64, 64), 40.0 / SIGNAL_RANGE), params, seed=3)
    np.testing.assert_allclose(noisy * SIGNAL_RANGE + 512, dn, atol=1e-3)


def test_gaussian_read_variant():
    model = EldNoiseModel(system_gain=1.0, read_distribution="gaussian", shot=False, row=False,
                          quantise=False)
    params = model.sample_params(0)
    assert params.read_distribution == "gaussian"
    noise = model.noisy_dn(np.zeros((256, 256)), params, seed=0) - 512
    assert noise.std() == pytest.approx(params.read_scale, rel=0.02)
    with pytest.raises(InvalidInputError):
        EldNoiseModel(read_distribution="cauchy")


def test_synthetic_dark_frame_matches_its_parameters():
    frame = synthetic_dark_frame((512, 512), pattern="RGGB", system_gain=2.0, seed=4)
    assert frame.dn.dtype == np.uint16 and frame.dn.shape == (512, 512)
    noise = frame.dn.astype(np.float64) - frame.black_level
    assert abs(noise.mean()) < 0.1  # zero-mean read and row noise; SE ≈ 0.07 DN from rows
    assert noise.std() == pytest.approx(np.hypot(
        frame.noise.read_scale * stats.tukeylambda.std(frame.noise.read_shape),
        frame.noise.row_scale), rel=0.05)  # quantisation adds 1/12 DN², well inside 5%
    # ELD's shape estimate recovers the drawn λ (PPCC on 20000 pixels: ±0.02 typical)
    assert read_noise_tukey_shape(frame.dn, frame.black_level) == pytest.approx(
        frame.noise.read_shape, abs=0.04)
    other = synthetic_dark_frame((512, 512), system_gain=2.0, seed=5)
    assert not np.array_equal(frame.dn, other.dn)


def test_read_noise_shape_of_a_real_lens_capped_frame():
    shared_file(SHARED_DATA / "real_raw/canon650d_rawvideo_darkframe_1280x720.dng")
    import rawpy

    with rawpy.imread(str(REAL_DARK_FRAME)) as raw:  # RGGB, black 2047
        dn = raw.raw_image_visible.copy()
    green = read_noise_tukey_shape(dn[0::2, 1::2], black_level=2047)
    red = read_noise_tukey_shape(dn[0::2, 0::2], black_level=2047)
    # measured: G1 0.14 (nearly Gaussian), R -0.36 (heavy tails); the ELD Sony list spans ±0.14
    assert green == pytest.approx(0.14, abs=0.05)
    assert red < -0.2


# --- Poisson-Gaussian and sRGB darkening ----------------------------------------------------------

def test_poisson_gaussian_variance_is_shot_times_signal_plus_read():
    params = PoissonGaussianParams(shot=0.01, read=1e-4)
    model = PoissonGaussianNoiseModel()
    levels = np.array([0.0, 0.05, 0.2, 0.5])
    variances = [model.apply(np.full((256, 256), level), params, seed=i).var()
                 for i, level in enumerate(levels)]
    slope, intercept = np.polyfit(levels, variances, 1)
    assert slope == pytest.approx(0.01, rel=0.03)
    assert intercept == pytest.approx(1e-4, rel=0.1)
    draws = [model.sample_params(seed) for seed in range(100)]
    assert all(1e-4 <= d.shot <= 0.012 for d in draws)


def test_darken_srgb_gamma_recipe_and_independent_noise(astronaut):
    frames = np.broadcast_to(astronaut, (2,) + astronaut.shape)
    dark, params = darken_srgb(frames, seed=3)
    assert dark.shape == frames.shape and dark.dtype == np.float32
    assert 0.0 <= dark.min() and dark.max() <= 1.0
    assert 1.5 <= params.gamma <= 5 and 0.9 <= params.alpha <= 1 and 0.5 <= params.beta <= 1
    expected = params.beta * (params.alpha * astronaut) ** params.gamma
    assert dark.mean() < astronaut.mean()
    assert dark.mean() == pytest.approx(expected.mean(), abs=0.005)
    residuals = (dark - expected).reshape(2, -1)
    assert abs(np.corrcoef(residuals)[0, 1]) < 0.05  # fresh noise in every frame
    again, _ = darken_srgb(frames, seed=3)
    assert np.array_equal(dark, again)
