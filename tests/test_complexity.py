"""llve.complexity: hand-computed MACs, parameter counts, meta-device counting, timing keys.

MAC arithmetic is written out next to each assertion. No assertion depends on timings.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from llve import complexity
from llve.errors import InvalidInputError


def test_grouped_strided_conv_macs() -> None:
    conv = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1, groups=4)
    # Hout = (15 + 2 − 3)//2 + 1 = 8, Wout = (17 + 2 − 3)//2 + 1 = 9
    # MACs = Cout · (Cin/groups) · k² · Hout · Wout = 16 · 2 · 9 · 8 · 9 = 20,736
    assert complexity.count_macs(conv, (1, 8, 15, 17)) == 20_736
    assert complexity.count_macs(conv, (3, 8, 15, 17)) == 3 * 20_736


class SelfAttention(nn.Module):
    """Single-head attention through F.scaled_dot_product_attention on B×L×D tokens."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        query, key, value = self.qkv(tokens).chunk(3, dim=-1)
        return F.scaled_dot_product_attention(query, key, value)


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.grouped = nn.Conv2d(4, 16, kernel_size=3, padding=1, groups=2)
        self.shuffle = nn.PixelShuffle(2)
        self.project = nn.Conv2d(4, 8, kernel_size=1)
        self.mha = nn.MultiheadAttention(8, num_heads=2, batch_first=True)
        self.sdpa = SelfAttention(8)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.project(self.shuffle(self.grouped(image)))  # 1×8×16×16
        tokens = features.flatten(2).transpose(1, 2)  # 1×256×8
        attended, _ = self.mha(tokens, tokens, tokens, need_weights=False)
        return self.sdpa(attended)


# 1×4×8×8 input. grouped conv: 16 · (4/2) · 3·3 · 8·8 = 18,432
# pixel shuffle: 16×8×8 -> 4×16×16, 0 MACs. 1×1 conv: 8 · 4 · 1 · 16·16 = 8,192
# MultiheadAttention (E = 8, 2 heads of d = 4, L = 256 tokens):
#   in-projection 3 · 8·8 · 256 = 49,152; QKᵀ and AV 2 heads · 2 · 256·256·4 = 1,048,576;
#   out-projection 8·8 · 256 = 16,384 -> 1,114,112
# SelfAttention (1 head, d = 8): qkv 8·24 · 256 = 49,152; QKᵀ and AV 2 · 256·256·8 = 1,048,576
SMALL_NET_MACS = {
    "grouped": 18_432,
    "shuffle": 0,
    "project": 8_192,
    "mha": 49_152 + 1_048_576 + 16_384,
    "mha.out_proj": 0,  # MultiheadAttention applies out_proj's weights itself: counted under "mha"
    "sdpa": 49_152 + 1_048_576,
    "sdpa.qkv": 49_152,
}


def test_small_net_macs_by_hand_including_attention() -> None:
    model = SmallNet()
    total = sum(SMALL_NET_MACS[name] for name in ("grouped", "project", "mha", "sdpa"))
    assert total == 2_238_464
    assert complexity.count_macs(model, (1, 4, 8, 8)) == total
    # A real input tensor is only used for its shape and dtype.
    assert complexity.count_macs(model, torch.rand(1, 4, 8, 8)) == total
    per_module = complexity.macs_by_module(model, (1, 4, 8, 8))
    assert per_module[""] == total
    for name, macs in SMALL_NET_MACS.items():
        assert per_module[name] == macs, name
    assert set(per_module) == {name for name, _ in model.named_modules()}


def test_attention_is_counted_on_every_device() -> None:
    # The fused CPU SDPA kernel has no FlopCounterMode formula; count_macs forces the math path.
    attention = SelfAttention(8)
    assert complexity.count_macs(attention, torch.rand(2, 100, 8)) == 2 * (8 * 24 * 100 + 2 * 100 * 100 * 8)


def test_weight_norm_model_on_meta_at_sony_size_without_memory() -> None:
    conv = weight_norm(nn.Conv2d(4, 12, kernel_size=5, padding=2))
    model = nn.Sequential(nn.PixelUnshuffle(2), conv, nn.LeakyReLU(0.2))
    # Sony full size 2848×4256 packs to 1424×2128: 12 · 4 · 5·5 · 1424 · 2128 = 3,636,326,400
    measured = complexity.peak_memory(lambda: complexity.count_macs(model, (1, 1, 2848, 4256)))
    assert complexity.count_macs(model, (1, 1, 2848, 4256)) == 3_636_326_400
    assert measured["peak_increase_bytes"] < 100 * 2**20  # a real run would need > 250 MB
    assert conv.parametrizations.weight.original1.device.type == "cpu"  # model left untouched
    # parameters: v 12·4·5·5 = 1,200, g 12 (one per output channel), bias 12
    assert complexity.count_parameters(model) == 1_224


def test_count_macs_on_4k_input_and_nested_inputs() -> None:
    class TwoFrames(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(6, 16, kernel_size=3, padding=1)

        def forward(self, frames: list[torch.Tensor], scale: float = 1.0) -> torch.Tensor:
            return self.conv(torch.cat(frames, dim=1)) * scale

    model = TwoFrames()
    frames = [torch.empty(1, 3, 2160, 3840, device="meta")] * 2
    # 16 · 6 · 3·3 · 2160 · 3840 = 7,166,361,600
    assert complexity.count_macs(model, frames, scale=0.5) == 7_166_361_600


def test_count_macs_explains_models_that_need_real_values() -> None:
    class ReadsValues(nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return image * image.max().item()

    with pytest.raises(RuntimeError, match="meta device"):
        complexity.count_macs(ReadsValues(), (1, 3, 8, 8))


def test_count_parameters() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(8, 4))
    # conv 8·3·3·3 + 8 = 224; linear 8·4 + 4 = 36
    assert complexity.count_parameters(model) == 260
    model[1].requires_grad_(False)
    assert complexity.count_parameters(model, trainable_only=True) == 224
    shared = nn.Linear(5, 5)
    assert complexity.count_parameters(nn.Sequential(shared, shared)) == 30


def test_latency_reports_protocol_keys() -> None:
    calls = []
    result = complexity.latency(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5
    assert set(result) == {"median_s", "all_s", "device", "threads", "warmup", "repeats"}
    assert len(result["all_s"]) == 3 and result["median_s"] in result["all_s"]
    assert result["device"].startswith("CPU") and result["threads"] == torch.get_num_threads()
    with pytest.raises(InvalidInputError, match="repeats"):
        complexity.latency(lambda: None, repeats=0)


def test_peak_memory_on_cpu_sees_a_large_allocation() -> None:
    def allocate() -> None:
        buffer = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del buffer

    result = complexity.peak_memory(allocate)
    assert set(result) == {"peak_increase_bytes", "peak_bytes", "baseline_bytes", "method", "device"}
    assert result["peak_increase_bytes"] >= 48 * 2**20


@pytest.mark.gpu
def test_latency_and_peak_memory_on_cuda() -> None:
    conv = nn.Conv2d(3, 16, 3, padding=1).cuda()
    image = torch.rand(1, 3, 256, 256, device="cuda")
    with torch.no_grad():
        timing = complexity.latency(lambda: conv(image), warmup=1, repeats=3, device="cuda")
        memory = complexity.peak_memory(lambda: conv(image), device="cuda")
    assert len(timing["all_s"]) == 3 and timing["device"] == torch.cuda.get_device_name()
    assert memory["peak_increase_bytes"] >= 16 * 256 * 256 * 4
