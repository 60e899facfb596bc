"""SID U-Net baseline: exact counts, padding, and the mosaic-level wrapper.

The checks every registered model shares (forward, gradients, state dict, seeds, invalid
input, presets, checkpoints) are in tests/test_models_contract.py.
"""

import pytest
import torch
import torch.nn.functional as F

from llve.complexity import count_macs, count_parameters
from llve.data.raw import pack
from llve.data.mosaic import reflect_pad
from llve.errors import InvalidInputError
from llve.models import build
from llve.models.sid_unet import SidUnet, SidUnetOnMosaic


def test_paper_parameter_count_tf_faithful_and_with_transpose_bias():
    assert count_parameters(build("sid_unet", "paper")) == 7_760_268
    assert count_parameters(build("sid_unet", "paper", transpose_bias=True)) == 7_760_748


def test_paper_macs_at_sony_size():
    with torch.device("meta"):
        model = SidUnet()
        packed = torch.empty(1, 4, 1424, 2128)
    macs = count_macs(model, packed)  # exact integer, convolutions only (FlopCounterMode / 2)
    assert macs == 560_091_234_304
    assert round(macs / 1e7) / 100 == 560.09  # the paper's 562 G is ptflops-style


def test_transposed_convolutions_have_no_bias_unless_asked():
    assert all(up.bias is None for up in build("sid_unet", "tiny").upsample)  # TF-faithful
    with_bias = build("sid_unet", "tiny", transpose_bias=True)
    assert all(up.bias is not None for up in with_bias.upsample)


def test_sizes_not_multiple_of_16_are_reflect_padded_and_cropped_back():
    # Forward shape, finiteness and gradients are in tests/test_models_contract.py.
    torch.manual_seed(0)
    model = build("sid_unet", "tiny").eval()
    packed = torch.rand(1, 4, 40, 56)  # padded to 48×64
    with torch.no_grad():
        out = model(packed)
        reflected = model(reflect_pad(packed, right=8, bottom=8))
        zero_padded = model(F.pad(packed, (0, 8, 0, 8)))
    assert out.shape == (1, 3, 80, 112)
    assert torch.equal(out, reflected[..., :80, :112])
    assert not torch.equal(out, zero_padded[..., :80, :112])  # the padding mode shows


def test_wrapper_packs_clips_and_keeps_mosaic_size():
    model = SidUnetOnMosaic(build("sid_unet", "tiny")).eval()
    mosaic = torch.rand(1, 1, 626, 1472) * 3.0  # amplified and unclipped, as Lamba takes it
    with torch.no_grad():
        out = model(mosaic, pattern="GRBG")
        assert out.shape == (1, 3, 626, 1472) and out.min() >= 0 and out.max() <= 1
        # SID's data preparation: min(·, 1) before packing.
        assert torch.equal(out, model(mosaic.clamp(max=1.0), pattern="GRBG"))
        # The pattern decides the packing: planes in R, G1, B, G2 order for every phase.
        packed_direct = model.unet(pack(mosaic.clamp(max=1.0)[:, 0], "GRBG")).clamp(0, 1)
        assert torch.equal(out, packed_direct)


def test_pack_order_is_sid_rgbg():
    block = torch.tensor([[5.0, 7.0], [1.0, 3.0]])  # GRBG: G1=5 (red row), R=7, B=1, G2=3
    mosaic = block.repeat(2, 3)[None]
    assert pack(mosaic, "GRBG", order="RGBG")[0, :, 0, 0].tolist() == [7.0, 5.0, 1.0, 3.0]


def test_invalid_inputs():
    with pytest.raises(InvalidInputError, match="packed"):
        build("sid_unet", "tiny")(torch.rand(1, 1, 32, 32))
    with pytest.raises(InvalidInputError, match="even"):
        SidUnetOnMosaic(build("sid_unet", "tiny"))(torch.rand(1, 1, 33, 32))
