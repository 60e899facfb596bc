"""Lamba & Mitra's amplifier (Eq. 4–7 as released), SID's Eq. 3, and off-the-shelf restoration."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from llve.papers.lamba.amplifier import (
    BIN_EDGES, BIN_WEIGHTS, amplify_and_restore, estimate_amplification,
    exposure_ratio_amplification, mean_amplification, pixel_weights,
)
from llve.data import read_raw, write_dng
from llve.errors import InvalidInputError
from llve.models import build
from llve.models.sid_unet import SidUnetOnMosaic
from llve.papers.lamba.inference import LambaInference


def reference_released(image: np.ndarray, m: float) -> float:
    """Independent statement of the released estimator: loop over bins with boolean masks.

    The released edges are float32: 2^(8k/127) − 1 rounded to float32, then divided by 255 in
    float32 (30 of them differ by one ulp from the rounded exact value, which matters for
    samples lying exactly on an edge).
    """
    edges = [np.float32(2.0 ** (8 * k / 127) - 1) / np.float32(255) for k in range(128)]
    weights = [10.0 ** (5 * (126 - k) / 126) / 1e5 for k in range(127)]
    weight_sum = weighted_sum = 0.0
    for k in range(127):
        inside = (image >= edges[k]) & (image < edges[k + 1])
        weight_sum += weights[k] * inside.sum()
        weighted_sum += weights[k] * image[inside].astype(np.float64).sum()
    return min(max(0.01 * (10 * m) * weight_sum / weighted_sum, 1.0), 300.0)


def test_bins_and_weights():
    assert len(BIN_EDGES) == 128 and BIN_EDGES[0] == 0 and BIN_EDGES[-1] == 1.0
    assert (BIN_EDGES.diff() > 0).all() and (BIN_EDGES.diff().diff() > 0).all()  # finer when dark
    assert len(BIN_WEIGHTS) == 127 and BIN_WEIGHTS[0] == 1.0
    assert math.isclose(BIN_WEIGHTS[-1], 1e-5, rel_tol=1e-6)
    assert (BIN_WEIGHTS.diff() < 0).all()
    weights = pixel_weights(torch.linspace(0, 0.999, 1000))
    assert (weights.diff() <= 0).all()  # monotone: brighter never weighs more
    assert pixel_weights(torch.tensor([1.0, 1.5, -0.1])).tolist() == [0.0, 0.0, 0.0]


def test_constant_image_values_and_conventions():
    image = np.full((8, 8), 0.001)
    assert math.isclose(estimate_amplification(image, m=0.5), 50.0, rel_tol=1e-9)  # 0.05 / I
    assert estimate_amplification(image, m=0.5, convention="printed") == 300.0  # 500, clamped
    printed = estimate_amplification(image, m=0.5, convention="printed", max_amplification=1000.0)
    assert math.isclose(printed, 500.0, rel_tol=1e-9)  # printed Eq. 5 is 10× the released code
    assert math.isclose(mean_amplification(image, m=0.5), 50.0, rel_tol=1e-9)


def test_clamp_edges_and_m_linearity():
    assert estimate_amplification(np.full((4, 4), 0.5)) == 1.0  # 0.1 -> clamped up to 1
    assert estimate_amplification(np.full((4, 4), 1e-5)) == 300.0  # 5000 -> clamped to 300
    image = np.random.default_rng(0).random((32, 32)) * 0.01
    factors = [estimate_amplification(image, m) for m in (0.1, 0.2, 0.4)]
    assert all(1 < factor < 300 for factor in factors)
    assert math.isclose(factors[1], 2 * factors[0]) and math.isclose(factors[2], 4 * factors[0])


def test_matches_independent_statement_of_released_code():
    rng = np.random.default_rng(1)
    for scale in (0.002, 0.02, 0.3):
        image = (rng.random((48, 64)) ** 3 * scale).astype(np.float32)
        image[rng.random(image.shape) < 0.03] = 1.0  # saturated highlights
        image.flat[:128] = BIN_EDGES.numpy().astype(np.float32)  # samples exactly on edges
        for m in (0.1, 0.5, 0.8):
            assert math.isclose(estimate_amplification(image, m), reference_released(image, m),
                                rel_tol=1e-6)  # the released weights are float32


def test_saturated_pixels_are_ignored_but_not_by_eq4():
    dark = np.random.default_rng(2).random((16, 16)) * 0.01
    with_highlights = np.concatenate([dark, np.ones((4, 16)), np.full((2, 16), 1.7)])
    assert estimate_amplification(with_highlights) == estimate_amplification(dark)
    assert mean_amplification(with_highlights) < mean_amplification(dark) / 5  # Eq. 4's flaw


def test_batches_and_types():
    rng = np.random.default_rng(3)
    images = (rng.random((3, 1, 16, 16)) * np.array([0.001, 0.01, 0.05])[:, None, None, None])
    images = images.astype(np.float32)
    factors = estimate_amplification(images)
    assert isinstance(factors, np.ndarray) and factors.shape == (3,) and factors.dtype == np.float32
    for factor, image in zip(factors, images):
        assert math.isclose(factor, estimate_amplification(image[0]), rel_tol=1e-6)
    tensor_factors = estimate_amplification(torch.from_numpy(images))
    assert isinstance(tensor_factors, torch.Tensor) and tensor_factors.shape == (3,)
    assert np.allclose(tensor_factors.numpy(), factors)
    assert estimate_amplification(torch.from_numpy(images[:, 0])).shape == (3,)  # N×H×W


def test_degenerate_inputs():
    assert estimate_amplification(np.zeros((8, 8))) == 300.0  # black frame: as dark as it gets
    assert estimate_amplification(np.ones((8, 8))) == 1.0  # nothing weighted left
    assert mean_amplification(np.zeros((8, 8))) == 300.0
    for bad in (np.array([[np.nan, 0.1]]), np.array([[np.inf, 0.1]])):
        with pytest.raises(InvalidInputError, match="mosaic"):
            estimate_amplification(bad)
    with pytest.raises(InvalidInputError, match="empty"):
        estimate_amplification(np.zeros((0, 4)))
    with pytest.raises(InvalidInputError, match="normalised"):
        estimate_amplification(np.zeros((4, 4), dtype=np.uint16))
    with pytest.raises(InvalidInputError, match="N×1×H×W"):
        estimate_amplification(np.zeros((2, 4, 4, 4)))
    for m in (0, -1.0, float("nan")):
        with pytest.raises(InvalidInputError, match="m must"):
            estimate_amplification(np.full((4, 4), 0.01), m=m)
    with pytest.raises(InvalidInputError, match="convention"):
        estimate_amplification(np.full((4, 4), 0.01), convention="paper")


def test_exposure_ratio():
    assert exposure_ratio_amplification(10.0, 0.1) == pytest.approx(100.0)
    assert exposure_ratio_amplification(30.0, 0.033) == 300.0
    with pytest.raises(InvalidInputError, match="t_in"):
        exposure_ratio_amplification(10.0, 0.0)


class Passthrough(nn.Module):
    """A 'model' that returns its (amplified) input, to check what amplify_and_restore feeds."""

    input_layout = "mosaic"

    def forward(self, mosaic, pattern="RGGB"):
        return mosaic.expand(-1, 3, -1, -1)


def test_amplify_and_restore_feeds_the_amplified_mosaic():
    mosaic = torch.full((2, 1, 8, 8), 0.001)
    mosaic[1] = 0.01
    out, factors = amplify_and_restore(Passthrough(), mosaic)
    assert torch.allclose(factors, torch.tensor([50.0, 5.0]))
    assert torch.allclose(out[:, 0], torch.full((2, 8, 8), 0.05))
    out, factors = amplify_and_restore(Passthrough(), mosaic.numpy(), amplifier=100.0)
    assert torch.allclose(out[0], torch.full((3, 8, 8), 0.1)) and factors.tolist() == [100.0, 100.0]
    out, factors = amplify_and_restore(Passthrough(), mosaic, amplifier=lambda x: torch.tensor([2.0, 3.0]))
    assert factors.tolist() == [2.0, 3.0]


@pytest.mark.parametrize("name", ["lamba", "sid_unet"])
def test_amplify_and_restore_with_registry_models(name):
    mosaic = torch.rand(2, 1, 64, 96) * 0.01
    out, factors = amplify_and_restore(build(name, "tiny").eval(), mosaic, amplifier="mean",
                                       pattern="BGGR")
    assert out.shape == (2, 3, 64, 96) and factors.shape == (2,)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_amplify_and_restore_rejects_unknown_layouts():
    with pytest.raises(InvalidInputError, match="input_layout"):
        amplify_and_restore(nn.Conv2d(1, 3, 1), torch.rand(1, 1, 8, 8))
    with pytest.raises(InvalidInputError, match="amplifier"):
        amplify_and_restore(Passthrough(), torch.rand(1, 1, 8, 8), amplifier="magic")


@pytest.fixture(scope="module")
def tiny_lamba():
    torch.manual_seed(4)
    return build("lamba", "tiny").eval()


def dark_mosaic(batch=2, height=64, width=96, seed=5):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, height, width, generator=generator) * 0.01


def test_amplify_and_restore_training_and_inference_forms_agree(tiny_lamba):
    mosaic = dark_mosaic()
    out, factors = amplify_and_restore(tiny_lamba, mosaic, pattern="GBRG")
    fast, fast_factors = amplify_and_restore(LambaInference(tiny_lamba), mosaic, pattern="GBRG")
    assert torch.equal(factors, fast_factors)
    assert out.shape == fast.shape == (2, 3, 64, 96)
    assert (out - fast).abs().max().item() < 1e-5
    # and it is the network applied to the amplified mosaic (Eq. 5–7 as released)
    expected_factors = estimate_amplification(mosaic)
    assert torch.allclose(factors, expected_factors)
    with torch.no_grad():
        expected = tiny_lamba(mosaic * expected_factors.view(-1, 1, 1, 1), "GBRG")
    assert (out - expected).abs().max().item() < 1e-6


def test_amplify_and_restore_feeds_a_sid_unet_packed_and_clipped():
    torch.manual_seed(6)
    unet = build("sid_unet", "tiny").eval()
    mosaic = dark_mosaic()
    out, factors = amplify_and_restore(unet, mosaic, amplifier=[150.0, 250.0], pattern="BGGR")
    assert factors.tolist() == [150.0, 250.0]
    with torch.no_grad():
        expected = SidUnetOnMosaic(unet)(mosaic * factors.view(-1, 1, 1, 1), "BGGR")
    assert out.shape == (2, 3, 64, 96) and torch.equal(out, expected)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("factor", [0.0, -10.0, float("nan"), float("inf")])
def test_amplify_and_restore_refuses_bad_fixed_factors(tiny_lamba, factor):
    with pytest.raises(InvalidInputError, match="finite positive factor"):
        amplify_and_restore(tiny_lamba, dark_mosaic(), amplifier=factor)
    with pytest.raises(InvalidInputError, match="finite positive factor"):
        amplify_and_restore(tiny_lamba, dark_mosaic(), amplifier=[100.0, factor])


def test_amplify_and_restore_refuses_the_wrong_number_of_factors(tiny_lamba):
    with pytest.raises(InvalidInputError, match="one finite positive factor per image"):
        amplify_and_restore(tiny_lamba, dark_mosaic(), amplifier=[100.0, 100.0, 100.0])


def test_amplify_and_restore_refuses_integer_digital_numbers(tiny_lamba):
    digital_numbers = (dark_mosaic() * 16383).to(torch.int32)
    for mosaic in (digital_numbers.numpy().astype(np.uint16), digital_numbers.to(torch.uint16)):
        with pytest.raises(InvalidInputError, match="normalised"):
            amplify_and_restore(tiny_lamba, mosaic, amplifier=100.0)


def test_amplify_and_restore_casts_float64_numpy_to_float32(tiny_lamba):
    mosaic = dark_mosaic().numpy()
    out32, factors32 = amplify_and_restore(tiny_lamba, mosaic)
    out64, factors64 = amplify_and_restore(tiny_lamba, mosaic.astype(np.float64))
    assert out64.dtype == torch.float32 and factors64.dtype == torch.float32
    assert torch.equal(factors64, factors32) and torch.equal(out64, out32)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_amplify_and_restore_refuses_a_non_finite_pixel(tiny_lamba, value):
    mosaic = dark_mosaic()
    mosaic[1, 0, 10, 20] = value
    for amplifier in ("weighted", 100.0):  # refused before any estimator or the model runs
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            amplify_and_restore(tiny_lamba, mosaic, amplifier=amplifier)


def grbg_raw_image(tmp_path):
    """A real file round trip: a dark GRBG mosaic written as a DNG and read back by read_raw."""
    mosaic = np.random.default_rng(7).random((64, 96)) * 0.01
    path = write_dng(tmp_path / "grbg.dng", mosaic, "GRBG", black_level=512, white_level=16383,
                     white_balance=(2.0, 1.0, 1.5))
    image = read_raw(path)
    assert image.pattern == "GRBG" and image.shape == (64, 96)
    return image


def test_amplify_and_restore_takes_a_raw_images_own_pattern(tiny_lamba, tmp_path):
    image = grbg_raw_image(tmp_path)
    out, factors = amplify_and_restore(tiny_lamba, image)
    explicit, explicit_factors = amplify_and_restore(tiny_lamba, image.mosaic[None, None],
                                                     pattern="GRBG")
    assert out.shape == (1, 3, 64, 96)
    assert torch.equal(out, explicit) and torch.equal(factors, explicit_factors)
    as_rggb, _ = amplify_and_restore(tiny_lamba, image.mosaic[None, None], pattern="RGGB")
    assert (out - as_rggb).abs().max().item() > 1e-3  # the phase matters: colours differ
    # An explicit pattern equal to the file's is accepted; a contradicting one is refused.
    same, _ = amplify_and_restore(tiny_lamba, image, pattern="GRBG")
    assert torch.equal(same, out)
    with pytest.raises(InvalidInputError, match="contradicts the RawImage's own CFA pattern"):
        amplify_and_restore(tiny_lamba, image, pattern="RGGB")


def test_amplify_and_restore_bare_mosaics_default_to_rggb(tiny_lamba):
    mosaic = dark_mosaic()
    default, _ = amplify_and_restore(tiny_lamba, mosaic)
    rggb, _ = amplify_and_restore(tiny_lamba, mosaic, pattern="RGGB")
    assert torch.equal(default, rggb)
