"""SMID baseline: exact paper count, layer facts, padding, input checks and the Siamese loss.

The checks every registered model shares (forward, gradients, state dict, seeds, invalid
input, presets, checkpoints) are in tests/test_models_contract.py.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llve.complexity import count_parameters
from llve.data.mosaic import reflect_pad
from llve.errors import InvalidInputError
from llve.models import build
from llve.models.smid import Smid, SmidConfig, siamese_loss


def test_paper_parameter_count():
    with torch.device("meta"):  # shapes only: no 85M-parameter initialisation on the CPU
        model = Smid(SmidConfig.paper())
    assert count_parameters(model) == 85_653_155


def test_paper_layer_facts():
    with torch.device("meta"):
        model = Smid(SmidConfig.paper())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    with_bias = [m for m in convs if m.bias is not None]
    # Only the first convolution (no norm after it) and the 1×1 head carry a bias.
    assert with_bias == [model.encoder[0][0], model.head]
    assert (model.encoder[0][0].in_channels, model.head.out_channels) == (3, 3)
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == 1 for m in norms)  # LayerNorm over C, H, W
    assert len(model.residual) == 16 + 1  # 16 residual blocks and the closing conv-norm
    assert all(up.bias is None for up in model.upsample)


def test_group_norm_with_one_group_is_tensorflow_layer_norm():
    # TF's layer_norm on NHWC: statistics over H, W, C per sample, scale and shift per channel.
    torch.manual_seed(0)
    norm = nn.GroupNorm(1, 6, eps=1e-12)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 5, 7)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
    expected = (x - mean) / torch.sqrt(var + 1e-12) * norm.weight[:, None, None] \
        + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), expected)


def test_sizes_not_multiple_of_16_are_reflect_padded_and_cropped_back():
    torch.manual_seed(0)
    model = build("smid", "tiny").eval()
    frame = torch.rand(1, 3, 27, 41)  # padded to 32×48
    with torch.no_grad():
        out = model(frame)
        reflected = model(reflect_pad(frame, right=7, bottom=5))
        zero_padded = model(F.pad(frame, (0, 7, 0, 5)))
    assert out.shape == (1, 3, 27, 41)
    assert torch.equal(out, reflected[..., :27, :41])
    assert not torch.equal(out, zero_padded[..., :27, :41])  # the padding mode shows


def test_in_channels_is_configurable():
    model = build("smid", "tiny", in_channels=4).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 4, 16, 16)).shape == (1, 3, 16, 16)


def test_a_clip_or_wrong_channels_is_refused_naming_the_frame():
    model = build("smid", "tiny")
    with pytest.raises(InvalidInputError, match="frame.*N×3×H×W.*frame by frame"):
        model(torch.rand(1, 5, 3, 16, 16))  # a clip: SMID takes one frame
    with pytest.raises(InvalidInputError, match="N×3×H×W"):
        model(torch.rand(1, 4, 16, 16))
    with pytest.raises(InvalidInputError, match="empty"):
        model(torch.rand(1, 3, 0, 16))


def test_siamese_loss_by_hand():
    gt = torch.zeros(1, 3, 2, 2)
    out1, out2 = torch.full_like(gt, 1.0), torch.full_like(gt, 3.0)
    # L1: |0-1| + |0-3| + 0.05·|1-3| = 1 + 3 + 0.1
    assert siamese_loss(gt, out1, out2).item() == pytest.approx(4.1)
    # Any feature distance: MSE gives 1 + 9 + 0.05·4
    assert siamese_loss(gt, out1, out2, F.mse_loss).item() == pytest.approx(10.2)
    assert siamese_loss(gt, out1, out2, alpha=0.0).item() == pytest.approx(4.0)


def test_siamese_loss_trains_both_outputs_and_checks_shapes():
    gt = torch.zeros(1, 3, 2, 2)
    out1 = torch.full_like(gt, 1.0).requires_grad_()
    out2 = torch.full_like(gt, 3.0).requires_grad_()
    siamese_loss(gt, out1, out2).backward()
    n = gt.numel()
    # d/d out1 of mean|out1| + 0.05·mean|out1 - out2| = (1 - 0.05) / n per pixel
    torch.testing.assert_close(out1.grad, torch.full_like(gt, 0.95 / n))
    torch.testing.assert_close(out2.grad, torch.full_like(gt, 1.05 / n))
    with pytest.raises(InvalidInputError, match="one shape"):
        siamese_loss(gt, out1, torch.zeros(1, 3, 2, 3))
