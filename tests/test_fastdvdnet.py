"""FastDVDnet baseline: exact paper counts, padding, noise maps and input checks.

The checks every registered model shares (forward, gradients, state dict, seeds, invalid
input, presets, checkpoints) are in tests/test_models_contract.py.
"""

import pytest
import torch
import torch.nn.functional as F

from llve.complexity import count_macs, count_parameters
from llve.data.mosaic import reflect_pad
from llve.errors import InvalidInputError
from llve.models import build
from llve.models.fastdvdnet import FastDvdnet


def test_paper_parameter_count_and_the_biased_variant():
    assert count_parameters(build("fastdvdnet", "paper")) == 2_479_096
    assert count_parameters(build("fastdvdnet", "paper", conv_bias=True)) == 2_482_098


def test_paper_macs_for_five_512_frames():
    with torch.device("meta"):
        model = FastDvdnet()
        frames, noise_map = torch.empty(1, 5, 3, 512, 512), torch.empty(1, 1, 512, 512)
    macs = count_macs(model, frames, noise_map)  # convolutions only (FlopCounterMode / 2)
    assert macs == 166_773_915_648
    assert round(macs / 1e8) / 10 == 166.8
    # Four block passes: three of stage 1 (one shared block) and one of stage 2.
    assert count_macs(model, frames, 0.1) == macs


def test_grouped_input_convolution_sees_one_frame_per_group():
    first = build("fastdvdnet", "paper").stage1.inc[0]
    assert first.groups == 3 and tuple(first.weight.shape) == (90, 4, 3, 3)


def test_sizes_not_multiple_of_4_are_reflect_padded_and_cropped_back():
    torch.manual_seed(0)
    model = build("fastdvdnet", "tiny").eval()
    frames, sigma = torch.rand(1, 5, 3, 17, 22), torch.full((1, 1, 17, 22), 0.1)
    pad = {"right": 2, "bottom": 3}
    with torch.no_grad():
        out = model(frames, sigma)
        reflected = model(reflect_pad(frames[0], **pad)[None], reflect_pad(sigma, **pad))
        zero_padded = model(F.pad(frames, (0, 2, 0, 3)), F.pad(sigma, (0, 2, 0, 3)))
    assert out.shape == (1, 3, 17, 22)
    assert torch.equal(out, reflected[..., :17, :22])
    assert not torch.equal(out, zero_padded[..., :17, :22])  # the padding mode shows


def test_scalar_sigma_and_broadcast_noise_maps_equal_the_full_map():
    torch.manual_seed(0)
    model = build("fastdvdnet", "tiny").eval()
    frames = torch.rand(2, 5, 3, 12, 16)
    with torch.no_grad():
        full = model(frames, torch.full((2, 1, 12, 16), 0.2))
        assert torch.equal(model(frames, 0.2), full)
        assert torch.equal(model(frames, torch.tensor(0.2)), full)
        assert torch.equal(model(frames, torch.full((2, 1, 1, 1), 0.2)), full)
        assert not torch.equal(model(frames, 0.05), full)  # the noise map is used


def test_wrong_frame_count_names_frames():
    model = build("fastdvdnet", "tiny")
    with pytest.raises(InvalidInputError, match="frames must be N×5×3×H×W.*3, 3, 12"):
        model(torch.rand(1, 3, 3, 12, 16), 0.1)
    with pytest.raises(InvalidInputError, match="frames must be N×5×3×H×W"):
        model(torch.rand(1, 15, 12, 16), 0.1)  # the release's stacked layout


def test_bad_noise_maps_are_refused_naming_noise_map():
    model = build("fastdvdnet", "tiny")
    frames = torch.rand(1, 5, 3, 12, 16)
    with pytest.raises(InvalidInputError, match="noise_map must be a scalar or N×1×H×W"):
        model(frames, torch.rand(1, 3, 12, 16))
    with pytest.raises(InvalidInputError, match="noise_map contains 1 NaN"):
        model(frames, torch.tensor(float("nan")))
    with pytest.raises(InvalidInputError, match="noise_map sigma must be a finite number"):
        model(frames, -0.1)
    with pytest.raises(InvalidInputError, match="noise_map has negative"):
        model(frames, torch.full((1, 1, 12, 16), -0.1))
    with pytest.raises(InvalidInputError, match="noise_map has dtype torch.float64"):
        model(frames, torch.full((1, 1, 12, 16), 0.1, dtype=torch.float64))
    with pytest.raises(InvalidInputError, match="noise_map must be a number"):
        model(frames, "25")
