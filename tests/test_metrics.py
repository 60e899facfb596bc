"""llve.metrics against independent references and known properties.

References and tolerances
-------------------------
* PSNR, SSIM: scikit-image 0.26 ``peak_signal_noise_ratio`` and ``structural_similarity``
  (``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``), on fixed random and
  smooth inputs, odd sizes (37×53), 1 and 3 channels, data_range 1 and 255: absolute
  difference ≤ 1e-10 (measured: SSIM 7e-16, PSNR 4e-15 dB).
* Y channel: scikit-image's ``rgb2ycbcr`` (the same BT.601 studio-swing matrix) as reference.
* MS-SSIM: pytorch-msssim 1.0.0 (a test-only dependency, pinned in requirements.txt) is the
  reference convention: ``pytorch_msssim.ms_ssim(X, Y, data_range, size_average=False,
  win_size=11, win_sigma=1.5, K=(0.01, 0.03))`` on the same float64 inputs. Odd sides (193×257,
  255×300, 161×175, 199×163), even (176×176, 192×192), batch 1 and 2, 1 and 3 channels,
  data_range 1 and 255; a smooth/noisy pair, independent noise, and an inverted pair (cs < 0,
  MS-SSIM 0): absolute difference ≤ 1e-6 (measured ≤ 1.3e-15). Also the package's float32
  window taps bit for bit, its zero-padded pooling of odd sides, its 161-pixel minimum side, and
  the training loss as 1 − the mean MS-SSIM (≤ 1e-10) and the package's ``size_average=True``.
* ST-RRED: scikit-video 1.1.11's ``skvideo.measure.strred`` (second output; a test-only
  dependency pinned in requirements.txt, needing NumPy's removed ``np.int``/``np.float``/
  ``np.complex`` aliases, which the ``skvideo_strred`` fixture supplies while it runs) on panning
  camera videos with noise and gamma darkening, 8–9 frames of 192–256 pixels, luma and RGB
  (through its ``rgb2gray``): relative difference ≤ 1 % (measured ≤ 1.1e-4). Also the subband
  against scipy's ``correlate``, the two pairings against single-pair clips, and properties (0 for
  identical videos, symmetry, invariance to a brightness offset, TRRED = 0 for static videos,
  monotone in noise level) and a hand-computed GSM case.
* Warping error: integer translations with known flow, a NumPy reference for zero flow.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
import scipy.ndimage
import skimage.data
import pytorch_msssim
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from llve import metrics
from llve.errors import InvalidInputError

TOLERANCE = 1e-10
MS_SSIM_TOLERANCE = 1e-6  # against pytorch-msssim, whose Gaussian window is float32
STRRED_TOLERANCE = 0.01  # relative, against scikit-video, which computes in float32


def _pair(
    channels: int, height: int, width: int, seed: int = 0, batch: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth image (blurred noise + gradient) and a noisy, clipped version; float64 in [0, 1]."""
    rng = np.random.default_rng(seed)
    noise = rng.random((batch, channels, height, width))
    smooth = scipy.ndimage.gaussian_filter(noise, sigma=(0, 0, 3, 3))
    ramp = np.linspace(0, 1, width)[None, None, None, :]
    clean = np.clip(0.5 * (smooth - smooth.min()) / (np.ptp(smooth) + 1e-12) + 0.5 * ramp, 0, 1)
    noisy = np.clip(clean + 0.08 * rng.standard_normal(clean.shape), 0, 1)
    return torch.from_numpy(noisy), torch.from_numpy(clean)


def _skimage_ssim(prediction: np.ndarray, target: np.ndarray, data_range: float) -> float:
    return structural_similarity(
        target,
        prediction,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=0,
    )


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_and_ssim_match_skimage(channels: int, data_range: float) -> None:
    prediction, target = _pair(channels, 37, 53)
    prediction, target = prediction * data_range, target * data_range
    ours_psnr = metrics.psnr(prediction, target, data_range=data_range)
    ours_ssim = metrics.ssim(prediction, target, data_range=data_range)
    assert ours_psnr.shape == ours_ssim.shape == (2,)
    for index in range(2):
        p, t = prediction[index].numpy(), target[index].numpy()
        reference_psnr = peak_signal_noise_ratio(t, p, data_range=data_range)
        assert abs(ours_psnr[index].item() - reference_psnr) <= TOLERANCE
        assert abs(ours_ssim[index].item() - _skimage_ssim(p, t, data_range)) <= TOLERANCE


def test_random_uniform_inputs_match_skimage() -> None:
    generator = torch.Generator().manual_seed(3)
    prediction = torch.rand(1, 3, 41, 29, generator=generator, dtype=torch.float64)
    target = torch.rand(1, 3, 41, 29, generator=generator, dtype=torch.float64)
    reference = _skimage_ssim(prediction[0].numpy(), target[0].numpy(), 1.0)
    assert abs(metrics.ssim(prediction, target).item() - reference) <= TOLERANCE


def test_float32_inputs_are_scored_in_float64() -> None:
    prediction, target = _pair(3, 37, 53)
    ours = metrics.ssim(prediction.float(), target.float())
    assert ours.dtype == torch.float64
    rounded_prediction, rounded_target = prediction[0].float().double(), target[0].float().double()
    reference = _skimage_ssim(rounded_prediction.numpy(), rounded_target.numpy(), 1.0)
    assert abs(ours[0].item() - reference) <= TOLERANCE


def test_y_channel_and_crop_border_match_skimage_on_converted_images() -> None:
    prediction, target = _pair(3, 40, 45)
    crop = 4
    ours_psnr = metrics.psnr(prediction, target, crop_border=crop, y_channel=True)
    ours_ssim = metrics.ssim(prediction, target, crop_border=crop, y_channel=True)
    for index in range(2):
        luma_p = rgb2ycbcr(prediction[index].numpy().transpose(1, 2, 0))[crop:-crop, crop:-crop, 0] / 255
        luma_t = rgb2ycbcr(target[index].numpy().transpose(1, 2, 0))[crop:-crop, crop:-crop, 0] / 255
        reference_psnr = peak_signal_noise_ratio(luma_t, luma_p, data_range=1.0)
        assert abs(ours_psnr[index].item() - reference_psnr) <= TOLERANCE
        reference = structural_similarity(
            luma_t, luma_p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
        )
        assert abs(ours_ssim[index].item() - reference) <= TOLERANCE


def test_video_scores_are_frame_means_and_reduction_mean() -> None:
    prediction, target = _pair(3, 24, 30, batch=6)
    video_prediction, video_target = prediction.view(2, 3, 3, 24, 30), target.view(2, 3, 3, 24, 30)
    per_frame = metrics.ssim(prediction, target).view(2, 3)
    torch.testing.assert_close(metrics.ssim(video_prediction, video_target), per_frame.mean(dim=1))
    per_frame_psnr = metrics.psnr(prediction, target).view(2, 3)
    torch.testing.assert_close(
        metrics.psnr(video_prediction, video_target, reduction="mean"), per_frame_psnr.mean(dim=1).mean()
    )


def test_identical_images() -> None:
    _, target = _pair(3, 200, 180, batch=1)
    assert metrics.psnr(target, target).item() == math.inf
    assert metrics.ssim(target, target).item() == pytest.approx(1.0, abs=1e-12)
    assert metrics.ms_ssim(target, target).item() == pytest.approx(1.0, abs=1e-12)


def _pytorch_msssim(
    prediction: torch.Tensor, target: torch.Tensor, data_range: float, size_average: bool = False
) -> torch.Tensor:
    """pytorch-msssim 1.0.0's MS-SSIM with its default window and constants."""
    return pytorch_msssim.ms_ssim(
        prediction, target, data_range=data_range, size_average=size_average, win_size=11,
        win_sigma=1.5, K=(0.01, 0.03),
    )


# (batch, channels, height, width, data_range, kind): odd and even sides, the 161-px minimum,
# Lamba's 192×192 crops, 1 and 3 channels, data_range 1 and 255, similar and unrelated pairs.
MS_SSIM_CASES = [
    (2, 3, 193, 257, 1.0, "pair"),
    (1, 3, 176, 176, 1.0, "pair"),
    (2, 1, 255, 300, 1.0, "pair"),
    (2, 3, 192, 192, 1.0, "pair"),
    (1, 3, 161, 175, 255.0, "pair"),
    (1, 1, 199, 163, 255.0, "pair"),
    (2, 3, 193, 257, 1.0, "noise"),
    (1, 3, 193, 257, 1.0, "inverted"),
]


def _ms_ssim_inputs(
    batch: int, channels: int, height: int, width: int, data_range: float, kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed inputs in [0, data_range] for one of ``MS_SSIM_CASES``."""
    prediction, target = _pair(channels, height, width, seed=height + width, batch=batch)
    if kind == "noise":  # independent uniform noise: MS-SSIM ≈ 0.1, cs at scale 1 ≈ 0.001
        generator = torch.Generator().manual_seed(height * width)
        prediction = torch.rand(prediction.shape, generator=generator, dtype=torch.float64)
        target = torch.rand(target.shape, generator=generator, dtype=torch.float64)
    elif kind == "inverted":  # negative correlation: cs < 0, which the ReLU turns into MS-SSIM 0
        prediction = 1 - target
    return prediction * data_range, target * data_range


@pytest.mark.parametrize("case", MS_SSIM_CASES, ids=lambda c: "{}x{}x{}x{}-r{:g}-{}".format(*c))
def test_ms_ssim_matches_pytorch_msssim(case: tuple) -> None:
    *shape, data_range, kind = case
    prediction, target = _ms_ssim_inputs(*shape, data_range, kind)
    ours = metrics.ms_ssim(prediction, target, data_range=data_range)
    reference = _pytorch_msssim(prediction, target, data_range)
    assert ours.shape == reference.shape == (shape[0],)
    assert (ours - reference).abs().max().item() <= MS_SSIM_TOLERANCE
    if kind == "inverted":
        assert ours.abs().max().item() == reference.abs().max().item() == 0.0
    else:
        assert 0.05 < ours.min().item() and ours.max().item() < 1.0


def test_ms_ssim_window_is_pytorch_msssims_float32_window() -> None:
    from pytorch_msssim.ssim import _fspecial_gauss_1d  # private, but the version is pinned

    window = metrics._gaussian_window(torch.float64, torch.device("cpu"), taps_dtype=torch.float32)
    assert torch.equal(window, _fspecial_gauss_1d(11, 1.5).view(-1).to(torch.float64))
    exact = metrics._gaussian_window(torch.float64, torch.device("cpu"))  # SSIM's window
    assert abs(exact.sum().item() - 1) < 1e-15
    assert window.sum().item() - 1 == pytest.approx(-3.07e-8, rel=1e-2)
    assert (window - exact).abs().max().item() < 1e-8


def test_ms_ssim_odd_sides_pad_top_left_with_counted_zeros() -> None:
    image = torch.arange(15, dtype=torch.float64).view(1, 1, 3, 5) + 1
    halved = metrics._halve(image)
    assert halved.shape == (1, 1, 2, 3)
    # Rows (zero, 0) and (1, 2), columns (zero, 0), (1, 2), (3, 4): each window's sum over 4.
    assert halved[0, 0, 0, 0].item() == image[0, 0, 0, 0].item() / 4
    assert halved[0, 0, 1, 2].item() == image[0, 0, 1:3, 3:5].mean().item()
    torch.testing.assert_close(halved, torch.nn.functional.avg_pool2d(image, 2, padding=(1, 1)))
    assert metrics._halve(image[..., :2, :4]).shape == (1, 1, 1, 2)  # even sides: plain pooling


def test_identical_images_give_ms_ssim_one() -> None:
    _, target = _pair(3, 193, 257, batch=2)
    torch.testing.assert_close(metrics.ms_ssim(target, target), torch.ones(2, dtype=torch.float64))
    assert metrics.ms_ssim_loss(target, target).item() == pytest.approx(0.0, abs=1e-12)


def test_ms_ssim_minimum_size_is_pytorch_msssims() -> None:
    assert metrics.MS_SSIM_MIN_SIZE == 161
    prediction, target = _pair(3, 161, 300, batch=1)
    too_small_prediction, too_small_target = prediction[..., :160, :], target[..., :160, :]
    with pytest.raises(InvalidInputError, match="161"):
        metrics.ms_ssim(too_small_prediction, too_small_target)
    with pytest.raises(InvalidInputError, match="161"):
        metrics.ms_ssim_loss(too_small_prediction.transpose(-1, -2), too_small_target.transpose(-1, -2))
    with pytest.raises(AssertionError):  # the package refuses the same size
        _pytorch_msssim(too_small_prediction, too_small_target, 1.0)
    smallest = metrics.ms_ssim(prediction[..., :161], target[..., :161])  # 161×161
    assert 0.0 < smallest.item() < 1.0


@pytest.mark.parametrize("case", MS_SSIM_CASES[:3], ids=lambda c: "{}x{}x{}x{}".format(*c[:4]))
def test_ms_ssim_loss_is_one_minus_mean_ms_ssim(case: tuple) -> None:
    *shape, data_range, kind = case
    prediction, target = _ms_ssim_inputs(*shape, data_range, kind)
    loss = metrics.ms_ssim_loss(prediction, target, data_range=data_range)
    assert loss.dtype == torch.float64 and loss.ndim == 0
    expected = 1 - metrics.ms_ssim(prediction, target, data_range=data_range).mean()
    assert abs(loss.item() - expected.item()) <= TOLERANCE
    reference = 1 - _pytorch_msssim(prediction, target, data_range, size_average=True)
    assert abs(loss.item() - reference.item()) <= MS_SSIM_TOLERANCE


def test_ms_ssim_loss_gradient_and_value() -> None:
    prediction, target = _pair(3, 177, 185, seed=4)  # odd sides: the zero-padded pooling
    prediction32 = prediction.float().requires_grad_(True)
    loss = metrics.ms_ssim_loss(prediction32, target.float())
    assert loss.dtype == torch.float32 and loss.ndim == 0
    expected = 1 - metrics.ms_ssim(prediction, target).mean().item()
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert torch.isfinite(prediction32.grad).all() and prediction32.grad.abs().sum() > 0

    with torch.autocast("cpu", dtype=torch.bfloat16):  # AMP must not lower the loss's precision
        under_autocast = metrics.ms_ssim_loss(prediction.float(), target.float())
    assert under_autocast.dtype == torch.float32
    assert under_autocast.item() == pytest.approx(expected, abs=1e-5)

    # Directional derivative in float64 against a central finite difference.
    prediction64 = prediction.clone().requires_grad_(True)
    metrics.ms_ssim_loss(prediction64, target).backward()
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(prediction.shape, generator=generator, dtype=torch.float64)
    step = 1e-6
    plus = metrics.ms_ssim_loss(prediction + step * direction, target).item()
    minus = metrics.ms_ssim_loss(prediction - step * direction, target).item()
    numeric = (plus - minus) / (2 * step)
    analytic = (prediction64.grad * direction).sum().item()
    assert analytic == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p, t: metrics.psnr(p.squeeze(0), t.squeeze(0)), "prediction must be 4-D or 5-D"),
        (lambda p, t: metrics.ssim(p, t[..., :-1]), "same shape"),
        (lambda p, t: metrics.psnr(p.clone().fill_(math.nan), t), "prediction contains NaN"),
        (lambda p, t: metrics.psnr(p, t.clone().fill_(math.inf)), "target contains NaN or inf"),
        (lambda p, t: metrics.psnr((p * 255).to(torch.uint8), t), "floating-point"),
        (lambda p, t: metrics.psnr(p, t, data_range=0), "data_range"),
        (lambda p, t: metrics.psnr(p, t, crop_border=20), "crop_border"),
        (lambda p, t: metrics.psnr(p[:, :1], t[:, :1], y_channel=True), "y_channel"),
        (lambda p, t: metrics.ssim(p[..., :10, :], t[..., :10, :]), "at least 11"),
        (lambda p, t: metrics.ssim(p, t, reduction="sum"), "reduction"),
        (lambda p, t: metrics.psnr(p.numpy(), t), "torch.Tensor"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, message: str) -> None:
    prediction, target = _pair(3, 37, 39, batch=1)
    with pytest.raises(InvalidInputError, match=message):
        call(prediction, target)


# --------------------------------------------------------------------------------------
# Warping and warping error
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_integer_flow_is_an_integer_shift(dtype: torch.dtype) -> None:
    image = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(0), dtype=dtype)
    dx, dy = 3, -2
    flow = torch.zeros(2, 2, 13, 17, dtype=dtype)
    flow[:, 0], flow[:, 1] = dx, dy
    warped = metrics.warp(image, flow)
    expected = torch.zeros_like(image)
    expected[:, :, 2:, : 17 - 3] = image[:, :, :-2, 3:]  # out[y, x] = image[y + dy, x + dx]
    torch.testing.assert_close(warped, expected, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-12)
    inside = metrics.inside_mask(flow)
    assert inside.shape == (2, 1, 13, 17) and inside.sum().item() == 2 * 11 * 14


def test_half_pixel_flow_interpolates_bilinearly() -> None:
    image = torch.arange(20, dtype=torch.float64).view(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5, dtype=torch.float64)
    flow[:, 0] = 0.5
    warped = metrics.warp(image, flow)
    torch.testing.assert_close(warped[..., :-1], (image[..., :-1] + image[..., 1:]) / 2)


def _translating_video(shift: tuple[int, int], frames: int = 4) -> torch.Tensor:
    """N=1 video whose content moves by (dx, dy) pixels per frame (wrap-around via roll)."""
    generator = torch.Generator().manual_seed(5)
    first = torch.rand(3, 20, 24, generator=generator, dtype=torch.float64)
    dx, dy = shift
    moved = [torch.roll(first, shifts=(t * dy, t * dx), dims=(1, 2)) for t in range(frames)]
    return torch.stack(moved)[None]


def test_warping_error_is_zero_with_the_true_flow() -> None:
    video = _translating_video((2, 1))
    flow = torch.zeros(1, 3, 2, 20, 24, dtype=torch.float64)
    flow[:, :, 0], flow[:, :, 1] = 2, 1
    assert metrics.warping_error(video, flow).item() == pytest.approx(0.0, abs=1e-20)
    backward = -flow
    with_check = metrics.warping_error(video, flow, backward_flow=backward)
    assert with_check.item() == pytest.approx(0.0, abs=1e-20)


def test_warping_error_matches_numpy_with_zero_flow_and_mask() -> None:
    video = _translating_video((1, 0))
    flow = torch.zeros(1, 3, 2, 20, 24, dtype=torch.float64)
    frames = video[0].numpy()
    squared = ((frames[:-1] - frames[1:]) ** 2).sum(axis=1)  # (T−1)×H×W, summed over channels
    expected = squared.mean(axis=(1, 2)).mean()
    assert metrics.warping_error(video, flow).item() == pytest.approx(expected, rel=1e-12)

    mask = torch.zeros(1, 3, 1, 20, 24, dtype=torch.float64)
    mask[..., :, :10] = 1
    expected = squared[:, :, :10].mean(axis=(1, 2)).mean()
    assert metrics.warping_error(video, flow, mask=mask).item() == pytest.approx(expected, rel=1e-12)
    scaled = metrics.warping_error(video * 255, flow, mask=mask, data_range=255.0)
    assert scaled.item() == pytest.approx(expected, rel=1e-12)


def test_consistency_mask_flags_inconsistent_flow() -> None:
    forward = torch.zeros(1, 2, 10, 12, dtype=torch.float64)
    forward[:, 0] = 3
    backward = -forward.clone()
    backward[..., 6:] = 0  # wrong backward flow on the right half of frame t+1
    mask = metrics.consistency_mask(forward, backward)[0, 0]
    assert mask[:, :3].all()  # matches land at x + 3 < 6: consistent
    assert not mask[:, 3:9].any()  # matches land on the wrong backward flow (or outside)


def test_warping_error_without_valid_pixels_is_nan_and_bad_input_raises() -> None:
    video = _translating_video((0, 0), frames=2)
    flow = torch.full((1, 1, 2, 20, 24), 100.0, dtype=torch.float64)  # every match leaves the frame
    assert math.isnan(metrics.warping_error(video, flow).item())
    with pytest.raises(InvalidInputError, match="not both"):
        metrics.warping_error(video, flow, backward_flow=flow, mask=torch.ones(1, 1, 1, 20, 24))
    with pytest.raises(InvalidInputError, match="flow must have shape"):
        metrics.warping_error(video, flow[..., :-1])
    with pytest.raises(InvalidInputError, match="at least 2 frames"):
        metrics.warping_error(video[:, :1], flow[:, :0])
    with pytest.raises(InvalidInputError, match="flow must have shape"):
        metrics.warp(video[:, 0], flow[:, 0, :1])


# --------------------------------------------------------------------------------------
# ST-RRED
# --------------------------------------------------------------------------------------


def test_gsm_entropy_of_a_checkerboard_by_hand() -> None:
    # Overlapping 3×3 patches of a ±1 checkerboard are ±p with p the 3×3 checker pattern, half of
    # each sign: mean 0, K_U = p pᵀ (one eigenvalue |p|² = 9). Each non-overlapping block is ±p, so
    # s² = cᵀ K_U⁺ c / 9 = (pᵀp)² / 81 / 9 = 1/9; h = log2(s²·9 + 0.1) + ln(2πe) = log2(1.1) + ln(2πe)
    signs = [[(-1.0) ** (i + j) for j in range(6)] for i in range(6)]
    checkerboard = torch.tensor(signs, dtype=torch.float64)
    variance, entropy = metrics._gsm_entropy(checkerboard[None])
    torch.testing.assert_close(variance, torch.full((1, 2, 2), 1 / 9, dtype=torch.float64))
    expected = math.log2(1.1) + math.log(2 * math.pi * math.e)
    torch.testing.assert_close(entropy, torch.full((1, 2, 2), expected, dtype=torch.float64))
    zero_variance, zero_entropy = metrics._gsm_entropy(torch.zeros(1, 6, 6, dtype=torch.float64))
    assert zero_variance.abs().max() == 0 and zero_entropy.abs().max() == 0


def _panning_video(frames: int = 8, height: int = 192, width: int = 192, noise: float = 8.0,
                   seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A T×H×W luma reference on 0..255 (scikit-image's camera, panning 3 px down and 2 px right
    per frame) and a distorted copy (Gaussian noise of σ = ``noise`` grey levels, clipped)."""
    camera = skimage.data.camera().astype(np.float64)  # 512×512
    reference = np.stack([camera[40 + 3 * t : 40 + 3 * t + height, 60 + 2 * t : 60 + 2 * t + width]
                          for t in range(frames)])
    rng = np.random.default_rng(seed)
    return reference, np.clip(reference + noise * rng.standard_normal(reference.shape), 0, 255)


def _gamma_darkened(video: np.ndarray) -> np.ndarray:
    """``255 · (x / 255)^2.2``: the darkening whose scores FACTS.md compares with the paper's."""
    return 255 * (video / 255) ** 2.2


def _as_video(luma: np.ndarray) -> torch.Tensor:
    """T×H×W array -> 1×T×1×H×W float64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(luma, dtype=np.float64))[None, :, None]


@pytest.fixture(scope="module")
def skvideo_strred():
    """scikit-video 1.1.11's ``strred`` (a test-only dependency pinned in requirements.txt).

    It still uses ``np.int``/``np.float``/``np.complex``, removed from NumPy: they are aliased
    to the builtins while this module's tests run (and removed again after), never in llve.
    Skips where scikit-video is not installed, except under ``CI=true`` where it must be.
    """
    with pytest.MonkeyPatch.context() as patch:
        for alias, builtin in (("int", int), ("float", float), ("complex", complex)):
            if alias not in np.__dict__:
                patch.setattr(np, alias, builtin, raising=False)
        try:
            with warnings.catch_warnings():  # it imports the deprecated scipy.misc
                warnings.simplefilter("ignore", DeprecationWarning)
                import skvideo.measure
        except ImportError as error:
            if os.environ.get("CI") == "true":
                pytest.fail(f"scikit-video is required under CI (requirements.txt): {error}")
            pytest.skip(f"scikit-video not installed: {error}")
        yield lambda reference, distorted: float(skvideo.measure.strred(reference, distorted)[1])


STRRED_REFERENCE_CASES = {
    "noise_8x192x192": lambda: _panning_video(8, 192, 192),
    "noise_9x200x232": lambda: _panning_video(9, 200, 232, noise=5.0, seed=1),  # odd T and sides
    "gamma_8x192x192": lambda: (lambda r: (r, _gamma_darkened(r)))(_panning_video(8)[0]),
    "gamma_noise_8x256x256": lambda: (lambda r, d: (r, _gamma_darkened(d)))(
        *_panning_video(8, 256, 256, noise=3.0, seed=2)),
}


# scikit-video uses np.matrix, which warns on every call
SKVIDEO_WARNINGS = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@SKVIDEO_WARNINGS
@pytest.mark.parametrize("case", sorted(STRRED_REFERENCE_CASES))
def test_st_rred_matches_scikit_video(case: str, skvideo_strred) -> None:
    reference, distorted = STRRED_REFERENCE_CASES[case]()
    expected = skvideo_strred(reference.astype(np.float32), distorted.astype(np.float32))
    ours = metrics.st_rred(_as_video(distorted), _as_video(reference), data_range=255.0).item()
    assert expected > 0
    assert ours == pytest.approx(expected, rel=STRRED_TOLERANCE)


@SKVIDEO_WARNINGS
def test_st_rred_rgb_uses_scikit_videos_rgb2gray(skvideo_strred) -> None:
    import skvideo.utils

    rgb = skimage.data.astronaut().astype(np.float64) / 255  # 512×512×3
    reference = np.stack([rgb[50 + 2 * t : 242 + 2 * t, 80 + 3 * t : 272 + 3 * t] for t in range(4)])
    rng = np.random.default_rng(3)
    distorted = np.clip(reference + 0.02 * rng.standard_normal(reference.shape), 0, 1)
    expected = skvideo_strred(skvideo.utils.rgb2gray(reference * 255), skvideo.utils.rgb2gray(distorted * 255))

    def video(frames: np.ndarray) -> torch.Tensor:  # T×H×W×3 -> 1×T×3×H×W
        return torch.from_numpy(frames).permute(0, 3, 1, 2)[None]

    ours = metrics.st_rred(video(distorted), video(reference), data_range=1.0).item()
    assert ours == pytest.approx(expected, rel=STRRED_TOLERANCE)


def test_steerable_band_is_the_sp5_filter_cascade() -> None:
    # Independent reference: scipy's correlate with mirrored borders ('mirror' = reflect without
    # repeating the edge, as matlabPyrTools' 'reflect1'), decimating after each low-pass.
    frames = np.random.default_rng(4).random((2, 61, 70)) * 255
    expected = []
    for frame in frames:
        low = scipy.ndimage.correlate(frame, metrics.STRRED_LOW0_TAPS.numpy(), mode="mirror")
        for _ in range(3):
            low = scipy.ndimage.correlate(low, metrics.STRRED_LOW_TAPS.numpy(), mode="mirror")[::2, ::2]
        expected.append(scipy.ndimage.correlate(low, metrics.STRRED_BAND_TAPS.numpy(), mode="mirror"))
    band = metrics.steerable_band(torch.from_numpy(frames))
    assert band.shape == (2, 8, 9)  # ceil(61/8), ceil(70/8)
    torch.testing.assert_close(band, torch.from_numpy(np.stack(expected)), rtol=0, atol=1e-10)


def test_steerable_band_orientation_and_zero_mean() -> None:
    coordinates = torch.arange(128, dtype=torch.float64)
    along_y = torch.cos(2 * math.pi * coordinates / 32).view(-1, 1).expand(128, 128)[None]
    along_x = along_y.transpose(1, 2)
    strong = metrics.steerable_band(along_y)[:, 2:-2, 2:-2].abs().max()
    assert strong > 0.1
    assert metrics.steerable_band(along_x)[:, 2:-2, 2:-2].abs().max() < 1e-6 * strong
    assert metrics.steerable_band(torch.full((1, 40, 48), 7.0, dtype=torch.float64)).abs().max() < 1e-10


def test_st_rred_properties() -> None:
    reference = _as_video(_panning_video(6)[0])
    noise = torch.randn(reference.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert metrics.st_rred(reference, reference, 255.0).item() == 0.0

    levels = [1, 3, 10, 30]
    components = [
        metrics.st_rred_components(reference + level * noise, reference, 255.0) for level in levels
    ]
    for name in ("srred", "trred", "st_rred"):
        values = [c[name].item() for c in components]
        assert all(a < b for a, b in zip(values, values[1:])), (name, values)
        assert values[0] > 0
    strongest = components[-1]
    torch.testing.assert_close(strongest["st_rred"], strongest["srred"] * strongest["trred"])

    distorted = reference + 10 * noise
    assert metrics.st_rred(distorted, reference, 255.0).item() == metrics.st_rred(reference, distorted, 255.0).item()
    offset = metrics.st_rred(reference + 12.0, reference, 255.0).item()  # the subband has no DC
    assert offset < 1e-6 * components[0]["st_rred"].item()


def test_st_rred_units_follow_data_range() -> None:
    reference, distorted = (_as_video(v) for v in _panning_video(4))
    on_255 = metrics.st_rred(distorted, reference, 255.0)
    torch.testing.assert_close(metrics.st_rred(distorted / 255, reference / 255, 1.0), on_255)
    # σ_N² = 0.1 is absolute: the same videos mis-declared as 0..255 when they are in [0, 1]
    # score on a very different scale, which is why data_range has no default.
    assert metrics.st_rred(distorted / 255, reference / 255, 255.0).item() < 0.01 * on_255.item()


def test_st_rred_pairings_on_a_five_frame_clip() -> None:
    reference, distorted = (_as_video(v) for v in _panning_video(5, noise=8.0))
    skvideo_pairs = metrics.st_rred_components(distorted, reference, 255.0)
    consecutive = metrics.st_rred_components(distorted, reference, 255.0, pairing="consecutive")
    # Both from single-pair clips: skvideo averages (0,1), (2,3) and drops frame 4; the MATLAB
    # release averages (0,1), (1,2), (2,3), (3,4) with the last pair counted twice.
    single = [metrics.st_rred_components(distorted[:, t : t + 2], reference[:, t : t + 2], 255.0)
              for t in range(4)]
    for name in ("srred", "trred"):
        pair_values = torch.stack([s[name] for s in single])
        torch.testing.assert_close(skvideo_pairs[name], (pair_values[0] + pair_values[2]) / 2)
        weights = torch.tensor([1.0, 1.0, 1.0, 2.0], dtype=torch.float64).view(4, 1) / 5
        torch.testing.assert_close(consecutive[name], (pair_values * weights).sum(dim=0))
    torch.testing.assert_close(
        skvideo_pairs["st_rred"], metrics.st_rred(distorted[:, :4], reference[:, :4], 255.0))
    relative = abs(consecutive["st_rred"].item() / skvideo_pairs["st_rred"].item() - 1)
    assert relative > 0.01, relative  # measured 4 % on this clip


def test_st_rred_static_videos_have_zero_trred() -> None:
    static_reference = _as_video(_panning_video(1)[0]).expand(1, 4, 1, 192, 192)
    generator = torch.Generator().manual_seed(8)
    noise = 8 * torch.randn(1, 1, 1, 192, 192, generator=generator, dtype=torch.float64)
    static_distorted = static_reference + noise  # the same noise on every frame: still static
    for pairing in metrics.STRRED_PAIRINGS:
        components = metrics.st_rred_components(static_distorted, static_reference, 255.0, pairing=pairing)
        assert components["srred"].item() > 0
        assert components["trred"].item() == 0.0 and components["st_rred"].item() == 0.0


def test_st_rred_rgb_luma_batches_and_errors() -> None:
    generator = torch.Generator().manual_seed(9)
    rgb_reference = torch.rand(2, 3, 3, 40, 48, generator=generator, dtype=torch.float64)
    noise = torch.randn(rgb_reference.shape, generator=generator, dtype=torch.float64)
    rgb_distorted = (rgb_reference + 0.05 * noise).clamp(0, 1)

    def luma(video: torch.Tensor) -> torch.Tensor:  # 0.2989 R + 0.5870 G + 0.1140 B, on 0..255
        weights = torch.tensor([0.2989, 0.5870, 0.1140], dtype=torch.float64).view(1, 1, 3, 1, 1)
        return 255 * (video * weights).sum(dim=2, keepdim=True)

    ours = metrics.st_rred(rgb_distorted, rgb_reference, 1.0)
    assert ours.shape == (2,)
    torch.testing.assert_close(ours, metrics.st_rred(luma(rgb_distorted), luma(rgb_reference), 255.0))
    torch.testing.assert_close(ours[1:], metrics.st_rred(rgb_distorted[1:], rgb_reference[1:], 1.0))
    averaged = metrics.st_rred(rgb_distorted, rgb_reference, 1.0, reduction="mean")
    torch.testing.assert_close(averaged, ours.mean())
    with pytest.raises(InvalidInputError, match="at least 2 frames"):
        metrics.st_rred(rgb_distorted[:, :1], rgb_reference[:, :1], 1.0)
    with pytest.raises(InvalidInputError, match="prediction must be 5-D"):
        metrics.st_rred(rgb_distorted[0], rgb_reference[0], 1.0)
    with pytest.raises(InvalidInputError, match="pairing must be one of"):
        metrics.st_rred(rgb_distorted, rgb_reference, 1.0, pairing="all")
    with pytest.raises(InvalidInputError, match="at least 25×25 pixels"):
        metrics.st_rred(rgb_distorted[..., :24], rgb_reference[..., :24], 1.0)
    with pytest.raises(TypeError):  # no default data_range: the units must be stated
        metrics.st_rred(rgb_distorted, rgb_reference)


def test_colour_cast_sign_and_zero():
    import torch

    from llve.metrics import colour_cast

    target = torch.full((1, 3, 8, 8), 0.5)
    greener = target.clone()
    greener[:, 1] += 0.1
    assert colour_cast(target, target).item() == 0.0
    assert abs(colour_cast(greener, target).item() - 0.1) < 1e-6  # float32 inputs
    assert colour_cast(target, greener).item() < 0


def test_ssim_scorer_equals_ssim_per_target():
    generator = torch.Generator().manual_seed(3)
    prediction = torch.rand(1, 3, 40, 37, generator=generator, dtype=torch.float64)
    targets = torch.rand(4, 3, 40, 37, generator=generator, dtype=torch.float64)
    score = metrics.ssim_scorer(prediction)
    for target in targets:
        assert score(target[None]) == pytest.approx(float(metrics.ssim(prediction, target[None])),
                                                    abs=1e-12)
    with pytest.raises(InvalidInputError):
        metrics.ssim_scorer(prediction.expand(2, -1, -1, -1))
    with pytest.raises(InvalidInputError):
        metrics.ssim_scorer(prediction[..., :8, :8])
