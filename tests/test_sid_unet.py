"""SID U-Net baseline: exact counts, shapes, padding, and the mosaic-level wrapper."""

import pytest
import torch

from llve.complexity import count_macs, count_parameters
from llve.data.raw import pack
from llve.errors import InvalidInputError, UnknownNameError
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


def test_tiny_forward_shapes_padding_and_gradients():
    torch.manual_seed(0)
    model = build("sid_unet", "tiny")
    packed = torch.rand(2, 4, 40, 56)  # not multiples of 16: padded, then cropped back
    out = model(packed)
    assert out.shape == (2, 3, 80, 112) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert all(up.bias is None for up in model.upsample)


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
    with pytest.raises(UnknownNameError):
        build("sid_unet", "medium")
