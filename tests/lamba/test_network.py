"""Lamba & Mitra's network: exact published counts, RDB*/RDB wiring, padding, inference form.

The checks every registered model shares (forward, gradients, state dict, seeds, invalid
input, presets, checkpoints) are in tests/test_models_contract.py.
"""

import pytest
import torch
import torch.nn.functional as F

from llve.complexity import count_macs, count_parameters
from llve.errors import InvalidInputError, UnknownNameError
from llve.models import build
from llve.data.mosaic import crop_output, pad_mosaic
from llve.papers.lamba.network import Lamba, LambaConfig, channel_shuffle, fold_weight_norm
from llve.papers.lamba.operation_counts import (
    equation_1_operations, equation_2_operations, scale_space_costs,
)


def weight_norm_scalars(model):
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith("original0"))


def meta_macs(height, width, config=None):
    with torch.device("meta"):
        model = Lamba(config)
        mosaic = torch.empty(1, 1, height, width)
    return count_macs(model, mosaic)


def test_paper_parameter_count_matches_released_code():
    model = build("lamba", "paper")
    assert count_parameters(model) == 784_768  # what the released code reports (weight norm on)
    assert weight_norm_scalars(model) == 1_336  # one g per output channel of every convolution
    assert count_parameters(fold_weight_norm(model)) == 783_432


def test_paper_macs_at_4k_and_512():
    # Exact integer counts (FlopCounterMode FLOPs / 2, convolutions only, meta device); the
    # paper's 59.8 G / 1.29 G are ptflops-style (bias and activation ops add about 0.4%).
    macs_4k = meta_macs(2848, 4256)
    assert macs_4k == 59_575_147_520
    assert round(macs_4k / 1e6) == 59_575
    macs_512 = meta_macs(512, 512)
    assert macs_512 == 1_288_437_760
    assert round(macs_512 / 1e5) == 12_884  # 1.2884 G


def test_scale_space_costs_add_up_and_match_equation_1():
    costs = scale_space_costs(LambaConfig.paper(), 2848, 4256)
    assert sum(costs.values()) == 59_575_147_520
    assert costs["LSE"] == equation_1_operations(2848, 4256, downsampling=2, kernel=5,
                                                 in_channels=4, out_channels=12)
    assert costs["MSE"] == equation_1_operations(2848, 4256, downsampling=8, kernel=3,
                                                 in_channels=64, out_channels=64, layers=2)
    # Eq. 2 with one RDB* of 5 dense convs = RDB2 plus the 1024->128 grouped conv, measured.
    assert equation_2_operations(2848, 4256, blocks=1) == 2_351_491_072 + 109_089_792
    assert costs["HSE"] > equation_2_operations(2848, 4256, blocks=3) * 0.9


def test_released_layer_list():
    model = build("lamba", "paper")
    assert model.lse.kernel_size == (5, 5) and model.fuse2.kernel_size == (5, 5)
    assert [len(block.dense) for block in model.hse.blocks] == [4, 5, 5]
    grouped = model.hse.reduce[0]
    assert (grouped.in_channels, grouped.out_channels, grouped.groups) == (1024, 128, 128)
    assert (model.fuse1.grouped.in_channels, model.fuse1.grouped.groups) == (128, 4)
    for block in model.hse.blocks:
        assert all(layer.conv.bias is None for layer in block.dense) and block.fusion.bias is None
    # RDB*: first dense conv unrectified, middle ones rectify their input, last one linear.
    assert [layer.rectify_input for layer in model.hse.blocks[1].dense] == [False, True, True, True, False]
    assert not any(layer.rectify_output for block in model.hse.blocks for layer in block.dense)
    canonical = build("lamba", "paper", rdb="canonical")
    assert all(layer.rectify_output and not layer.rectify_input
               for block in canonical.hse.blocks for layer in block.dense)


def test_hse_groups_each_see_one_bayer_colour():
    # The released two-stage unshuffle (by 2, then by 16) is a permutation of a direct unshuffle
    # by 32, and puts 8 same-colour samples in each group of the 1024->128 grouped convolution.
    mosaic = torch.rand(1, 1, 64, 96)
    two_stage = F.pixel_unshuffle(F.pixel_unshuffle(mosaic, 2), 16)
    direct = F.pixel_unshuffle(mosaic, 32)
    assert torch.equal(two_stage.sort(dim=1).values, direct.sort(dim=1).values)
    red_only = torch.zeros(1, 1, 64, 64)
    red_only[..., 0::2, 0::2] = 1.0  # RGGB: red sits at (even row, even column)
    groups = F.pixel_unshuffle(F.pixel_unshuffle(red_only, 2), 16)[0, :, 0, 0].view(128, 8)
    assert torch.equal(groups[:32], torch.ones(32, 8)) and groups[32:].sum() == 0


def test_channel_shuffle_interleaves_two_halves():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize("rdb", ["star", "canonical"])
def test_output_is_clamped_to_the_unit_range(rdb):
    # Forward shape, finiteness, gradients (star), state dict, seeds and invalid input are in
    # tests/test_models_contract.py; the clamp and the canonical RDB's gradients are Lamba's.
    torch.manual_seed(0)
    model = build("lamba", "tiny", rdb=rdb).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 64, 96) * 4.0)  # bright enough for the clamp to act
    assert out.min() >= 0 and out.max() <= 1
    assert ((out == 0) | (out == 1)).any()  # some pixels were clamped, so the clamp is there


def test_canonical_rdb_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = build("lamba", "tiny", rdb="canonical")
    out = model(torch.rand(2, 1, 64, 96) * 0.5)
    # Centre the target on the output so the clamp passes gradient almost everywhere.
    (out - out.detach().mean()).square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_canonical_rdb_same_parameters_different_function():
    star = build("lamba", "tiny")
    canonical = build("lamba", "tiny", rdb="canonical")
    assert count_parameters(star) == count_parameters(canonical)
    canonical.load_state_dict(star.state_dict())  # same weights: only activations differ
    mosaic = torch.rand(1, 1, 64, 64)
    assert not torch.allclose(star(mosaic), canonical(mosaic))
    assert count_parameters(build("lamba", "paper", rdb="canonical")) == 784_768


def test_fold_weight_norm_is_the_same_function():
    torch.manual_seed(1)
    model = build("lamba", "tiny").eval()
    with torch.no_grad():  # move g away from ‖v‖ so folding has something to fold
        for name, parameter in model.named_parameters():
            if name.endswith("original0"):
                parameter.mul_(torch.empty_like(parameter).uniform_(0.5, 1.5))
    folded = fold_weight_norm(model)
    assert weight_norm_scalars(folded) == 0 and weight_norm_scalars(model) > 0  # original kept
    mosaic = torch.rand(2, 1, 64, 96) * 0.5
    with torch.no_grad():
        reference = model(mosaic)
        assert (folded(mosaic) - reference).abs().max() < 1e-5
        channels_last = folded.to(memory_format=torch.channels_last)
        out = channels_last(mosaic.contiguous(memory_format=torch.channels_last))
        assert (out - reference).abs().max() < 1e-5


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("size", [(626, 1472), (2, 2), (4, 6), (64, 96)])
def test_pad_mosaic_keeps_colours_and_crop_inverts(pattern, size):
    height, width = size
    codes = {"R": 1.0, "G": 2.0, "B": 3.0}
    block = torch.tensor([[codes[pattern[0]], codes[pattern[1]]], [codes[pattern[2]], codes[pattern[3]]]])
    mosaic = block.repeat(height // 2, width // 2)[None, None] + 0.0
    padded, crop = pad_mosaic(mosaic, pattern, multiple=32, to_pattern="RGGB")
    assert padded.shape[-2] % 32 == 0 and padded.shape[-1] % 32 == 0
    rggb = torch.tensor([[1.0, 2.0], [2.0, 3.0]])
    expected = rggb.repeat(padded.shape[-2] // 2, padded.shape[-1] // 2)
    assert torch.equal(padded[0, 0], expected)  # every padded sample keeps the RGGB lattice
    values = torch.rand(1, 1, height, width)
    padded_values, crop = pad_mosaic(values, pattern, multiple=32, to_pattern="RGGB")
    assert torch.equal(crop_output(padded_values, crop), values)


def test_real_frame_size_and_pattern_run():
    model = build("lamba", "tiny").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 626, 1472) * 0.3, pattern="GBRG")
    assert out.shape == (1, 3, 626, 1472) and torch.isfinite(out).all()


def test_invalid_inputs_are_named():
    model = build("lamba", "tiny")
    with pytest.raises(InvalidInputError, match="even"):
        model(torch.rand(1, 1, 37, 51))
    with pytest.raises(InvalidInputError, match="N×1×H×W"):
        model(torch.rand(1, 4, 32, 32))
    with pytest.raises(InvalidInputError, match="pattern"):
        model(torch.rand(1, 1, 32, 32), pattern="RGBX")
    with pytest.raises(UnknownNameError):
        build("lamba", "tiny", rdb="plain")
