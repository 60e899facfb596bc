"""llve.data.isp: demosaic, colour, gamma, rendering and the papers' raw -> RGB targets."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_file
import rawpy
import torch

from llve.data.cfa import BAYER_PATTERNS, colour_index_grid, plane_positions
from llve.data.isp import (
    apply_colour_matrix, demosaic_bilinear, linear_rgb_from_raw, render_srgb, sid_ground_truth,
    srgb_gamma, white_balance,
)
from llve.data.raw import SRGB_TO_XYZ, camera_to_srgb_from_xyz, read_raw, write_dng
from llve.errors import InvalidInputError, RawFileError

REAL_RAW = (Path(__file__).parents[1] / "../shared/data/real_raw").resolve()
CHART = REAL_RAW / "canon550d_magiclantern_colorchart.dng"
REAL_FILES = sorted(REAL_RAW.glob("*.dng"))

# OpenCV names a Bayer pattern by the colours of the second row's 2nd and 3rd pixels.
OPENCV_BAYER_CODES = {"RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
                      "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB}


def needs(path: Path) -> Path:
    return shared_file(path)


def smooth_colour_image(height: int = 96, width: int = 128) -> np.ndarray:
    """Slowly varying colours in [0.1, 0.9]: what bilinear interpolation handles well."""
    y, x = np.meshgrid(np.arange(height) / height, np.arange(width) / width, indexing="ij")
    return np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (x + 0.3 * y)),
                     0.5 + 0.4 * np.cos(2 * np.pi * (0.7 * x - y)),
                     0.5 + 0.4 * np.sin(2 * np.pi * (x * y + 0.5 * y))], axis=-1).astype(np.float32)


def mosaic_of(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Keep, at every pixel, only the colour the CFA lets through."""
    height, width = rgb.shape[:2]
    colour = np.tile(colour_index_grid(pattern), (height // 2, width // 2))
    return np.take_along_axis(rgb, colour[..., None], axis=2)[..., 0]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_bilinear_demosaic_recovers_a_smooth_colour_image(pattern):
    truth = smooth_colour_image()
    mosaic = mosaic_of(truth, pattern)
    recovered = demosaic_bilinear(mosaic, pattern)
    assert recovered.shape == truth.shape and recovered.dtype == np.float32
    assert psnr(recovered, truth) > 50.0  # measured 54-56 dB; 68 dB away from the 2-pixel border
    np.testing.assert_array_equal(mosaic_of(recovered, pattern), mosaic)  # samples kept exactly
    wrong_phase = {"RGGB": "BGGR", "BGGR": "RGGB", "GRBG": "GBRG", "GBRG": "GRBG"}[pattern]
    assert psnr(demosaic_bilinear(mosaic, wrong_phase), truth) < 25.0


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_bilinear_demosaic_matches_opencv_inside_the_border(pattern):
    mosaic16 = np.rint(mosaic_of(smooth_colour_image(), pattern) * 65535).astype(np.uint16)
    ours = demosaic_bilinear(mosaic16.astype(np.float32), pattern)
    opencv = cv2.cvtColor(mosaic16, OPENCV_BAYER_CODES[pattern]).astype(np.float32)
    assert np.abs(ours - opencv)[2:-2, 2:-2].max() <= 1.0  # OpenCV rounds to integers


def test_white_balance_scales_each_colour_site():
    mosaic = np.ones((4, 4), dtype=np.float32)
    balanced = white_balance(mosaic, "GRBG", (2.0, 1.0, 3.0))
    np.testing.assert_array_equal(balanced[:2, :2], [[1.0, 2.0], [3.0, 1.0]])


def test_srgb_gamma_known_values():
    linear = np.array([-0.1, 0.0, 0.0031308, 0.18, 0.5, 1.0, 1.5])
    expected = [0.0, 0.0, 0.04045, 0.46135, 0.73536, 1.0, 1.0]
    np.testing.assert_allclose(srgb_gamma(linear), expected, atol=2e-5)
    ramp = srgb_gamma(np.linspace(0, 1, 1001))
    assert np.all(np.diff(ramp) > 0)


def test_apply_colour_matrix():
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(apply_colour_matrix(rgb, np.eye(3)), rgb)
    swap = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(apply_colour_matrix(rgb, swap), rgb[..., ::-1])
    with pytest.raises(InvalidInputError, match="3×3"):
        apply_colour_matrix(rgb, np.eye(4))


def test_camera_to_srgb_from_xyz():
    # A camera whose raw colours are linear sRGB needs no colour correction.
    np.testing.assert_allclose(camera_to_srgb_from_xyz(np.linalg.inv(SRGB_TO_XYZ)), np.eye(3), atol=1e-9)
    # Scaling the camera's channels (a different white balance) changes nothing after balancing.
    scaled = np.diag([2.0, 1.0, 0.5]) @ np.linalg.inv(SRGB_TO_XYZ)
    np.testing.assert_allclose(camera_to_srgb_from_xyz(scaled), np.eye(3), atol=1e-9)


def test_render_srgb_of_a_grey_mosaic():
    grey = np.full((32, 48), 0.18, dtype=np.float32)
    rendered = render_srgb(grey, pattern="RGGB")
    assert rendered.shape == (32, 48, 3)
    np.testing.assert_allclose(rendered, srgb_gamma(np.float32(0.18)), atol=1e-6)
    np.testing.assert_allclose(render_srgb(grey / 4, pattern="RGGB", gain=4.0), rendered, atol=1e-6)
    with pytest.raises(InvalidInputError, match="pattern"):
        render_srgb(grey)


def test_render_srgb_of_a_real_file():
    image = read_raw(needs(CHART))
    rendered = render_srgb(image)
    assert rendered.shape == (1156, 1734, 3) and rendered.dtype == np.float32
    assert rendered.min() >= 0.0 and rendered.max() <= 1.0
    assert 0.1 < rendered.mean() < 0.5


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda path: path.name)
def test_linear_rgb_matches_libraw_half_size_linear_output(path):
    # LibRaw's half-size pipeline (no demosaic: one RGB pixel per 2×2 block, greens averaged,
    # camera white balance, rgb_cam matrix), linear gamma and white level as given, must equal
    # our pack -> white balance -> colour matrix. This checks black levels, plane order, white
    # balance and the meaning of the colour matrix against LibRaw at once.
    image = read_raw(path)
    ours = linear_rgb_from_raw(image, colour_matrix=image.camera_to_srgb)
    assert ours.shape == (3, image.shape[0] // 2, image.shape[1] // 2)
    with rawpy.imread(str(path)) as raw:
        libraw = raw.postprocess(use_camera_wb=True, half_size=True, no_auto_bright=True,
                                 output_bps=16, gamma=(1, 1), adjust_maximum_thr=0) / 65535
    np.testing.assert_allclose(np.clip(ours, 0, 1).transpose(1, 2, 0), libraw, atol=1e-4)


def test_linear_rgb_from_a_synthetic_mosaic_numpy_and_torch():
    planes = {"R": 0.1, "G1": 0.2, "B": 0.3, "G2": 0.4}
    mosaic = np.zeros((2, 6, 8), dtype=np.float32)  # a batch of two
    for plane, (row, column) in plane_positions("GBRG").items():
        mosaic[:, row::2, column::2] = planes[plane]
    rgb = linear_rgb_from_raw(mosaic, "GBRG", white_balance_gains=(4.0, 2.0, 1.0), gain=10.0)
    assert rgb.shape == (2, 3, 3, 4) and rgb.dtype == np.float32
    # Gains are normalised to green: (2, 1, 0.5); greens averaged: 0.3.
    np.testing.assert_allclose(rgb[0, :, 0, 0], [0.1 * 2 * 10, 0.3 * 10, 0.3 * 0.5 * 10], rtol=1e-6)
    as_tensor = linear_rgb_from_raw(torch.from_numpy(mosaic), "GBRG", (4.0, 2.0, 1.0), gain=10.0)
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), rgb, rtol=1e-6)
    with pytest.raises(InvalidInputError, match="pattern"):
        linear_rgb_from_raw(mosaic)


def test_sid_ground_truth_on_a_real_file():
    truth = sid_ground_truth(needs(CHART), half_size=True)
    assert truth.shape == (578, 867, 3) and truth.dtype == np.float32
    assert truth.min() >= 0.0 and truth.max() <= 1.0 and 0.1 < truth.mean() < 0.5


def test_sid_ground_truth_on_our_own_dng(tmp_path):
    mosaic = mosaic_of(smooth_colour_image(48, 64), "BGGR")
    path = write_dng(tmp_path / "synthetic.dng", mosaic, "BGGR", 512, 16383, (1.0, 1.0, 1.0))
    assert sid_ground_truth(path).shape == (48, 64, 3)
    assert sid_ground_truth(path, half_size=True).shape == (24, 32, 3)


def test_sid_ground_truth_bad_file(tmp_path):
    path = tmp_path / "empty.ARW"
    path.write_bytes(b"")
    with pytest.raises(RawFileError, match="empty.ARW"):
        sid_ground_truth(path)
