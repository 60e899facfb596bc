"""UHR CycleGAN generator and discriminator: exact counts, learnable soft-shrink, score maps.

The checks every registered model shares are in tests/test_models_contract.py.
"""

import pytest
import torch

from llve.complexity import count_parameters
from llve.errors import InvalidInputError, UnknownNameError
from llve.models import build
from llve.papers.uhr_cyclegan.network import (
    LearnableSoftShrink, UHRCycleGANConfig, score_map_size,
)

THRESHOLDS = 64 + 128 + 256  # one per encoder channel at base width 64


def meta_build(name, preset="paper", **overrides):
    with torch.device("meta"):
        return build(name, preset, **overrides)


def test_generator_counts_match_the_release_plus_thresholds():
    model = meta_build("uhr_cyclegan")
    thresholds = sum(t.numel() for t in model.shrink_thresholds())
    assert thresholds == THRESHOLDS
    assert count_parameters(model) - thresholds == 11_396_998
    assert count_parameters(model) == 11_397_446


def test_plain_cyclegan_baseline_count():
    model = meta_build("uhr_cyclegan", "cyclegan")
    assert model.shrink_thresholds() == []
    assert count_parameters(model) == 11_378_179
    # The same baseline through overrides of the paper preset.
    assert count_parameters(meta_build("uhr_cyclegan", in_channels=3, out_channels=3,
                                       encoder_activation="relu")) == 11_378_179


def test_relu_ablation_keeps_six_channels_and_drops_only_the_thresholds():
    model = meta_build("uhr_cyclegan", encoder_activation="relu")
    assert count_parameters(model) == 11_396_998


@pytest.mark.parametrize("preset, channels, expected", [("paper", 6, 2_767_809),
                                                        ("cyclegan", 3, 2_764_737)])
def test_discriminator_counts(preset, channels, expected):
    model = meta_build("uhr_cyclegan_discriminator", preset)
    assert model.config.discriminator_in_channels == channels
    assert count_parameters(model) == expected


@pytest.mark.parametrize("size, side", [(256, 30), (360, 43), (512, 62)])
def test_discriminator_score_map(size, side):
    model = meta_build("uhr_cyclegan_discriminator")
    with torch.device("meta"):
        scores = model(torch.empty(1, 6, size, size))
    assert tuple(scores.shape) == (1, 1, side, side)
    assert score_map_size(size) == side


def test_soft_shrink_is_the_soft_threshold_and_learns_its_threshold():
    shrink = LearnableSoftShrink(2, init=0.5)
    x = torch.tensor([-2.0, -0.5, -0.2, 0.0, 0.3, 0.5, 1.5]).view(1, 1, 7, 1).repeat(1, 2, 1, 1)
    expected = torch.nn.functional.softshrink(x, 0.5)
    assert torch.allclose(shrink(x), expected)
    # d/dλ of sign(x)(|x| − λ) is −sign(x) where |x| > λ, 0 elsewhere; per channel: 1.0 and
    # 2.0 pass the threshold (gradient −1 each), 0.1 does not.
    positive = torch.tensor([1.0, 2.0, 0.1]).view(1, 1, 3, 1).repeat(1, 2, 1, 1)
    (shrink(positive) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)).sum().backward()
    assert torch.allclose(shrink.threshold.grad.flatten(), torch.tensor([-2.0, -6.0]))


def test_thresholds_get_gradient_and_move_in_training():
    torch.manual_seed(0)
    model = build("uhr_cyclegan", "tiny")
    before = [t.detach().clone() for t in model.shrink_thresholds()]
    assert len(before) == 3 and [t.numel() for t in before] == [8, 16, 32]
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(1, 6, 32, 32) * 2 - 1
    (model(x) - 0.3).square().mean().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in model.shrink_thresholds())
    optimiser.step()
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, model.shrink_thresholds()))


def test_soft_shrink_only_in_the_encoder():
    model = build("uhr_cyclegan", "tiny")
    names = [name for name, module in model.named_modules()
             if isinstance(module, LearnableSoftShrink)]
    assert names == ["encoder.0.act", "encoder.1.act", "encoder.2.act"]
    relus = [name for name, module in model.named_modules() if isinstance(module, torch.nn.ReLU)]
    assert relus and all(name.startswith(("blocks.", "decoder.")) for name in relus)


def test_generator_keeps_odd_sizes_and_outputs_tanh_range():
    torch.manual_seed(0)
    model = build("uhr_cyclegan", "tiny").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 6, 37, 50) * 2 - 1)
    assert tuple(out.shape) == (1, 6, 37, 50)
    assert out.abs().max() <= 1


def test_wrong_channel_count_and_bad_config_are_refused():
    model = build("uhr_cyclegan", "tiny")
    with pytest.raises(InvalidInputError, match="N×6×H×W"):
        model(torch.zeros(1, 3, 16, 16))
    with pytest.raises(UnknownNameError, match="encoder_activation"):
        build("uhr_cyclegan", "tiny", encoder_activation="gelu")
    with pytest.raises(InvalidInputError, match="in_channels"):
        build("uhr_cyclegan", "tiny", in_channels=0)


def test_presets_are_distinct():
    assert UHRCycleGANConfig.paper().base_width == 64
    assert UHRCycleGANConfig.paper().residual_blocks == 9
    assert UHRCycleGANConfig.small() != UHRCycleGANConfig.tiny()
