"""RAFT-small: recurrent all-pairs field transforms for optical flow, the small model.

Paper: Zachary Teed and Jia Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical
Flow", ECCV 2020. Official code (PyTorch, BSD 3-Clause): https://github.com/princeton-vl/RAFT
(``core/raft.py`` with ``small=True``). This file is llve's own implementation from the paper
and ``../shared/papers/FACTS.md``; only the official weights' key names are mapped onto it
(:func:`official_key`, :func:`load_weights`).

Input: two RGB frames N×3×H×W as floats in [0, 255] (the official convention; the network
normalises with ``2·(x/255) − 1`` itself). Output: the flow from frame 1 to frame 2, N×2×H×W,
channels (u = x, v = y) in full-resolution pixels.

Network (small model, paper §3 and the release):

- feature encoder (instance norm, no affine parameters) and context encoder (no norm) of the
  same shape: a 7×7 stride-2 stem to 32 channels, three stages of two bottleneck residual blocks
  (32; 64 stride 2; 96 stride 2), a 1×1 convolution to 128 features (feature encoder) or to
  hidden 96 + context 64 (context encoder: GRU state ``tanh``, context ``relu``), all at 1/8;
- all-pairs correlation of the 1/8 features (dot product / √C), average-pooled into a 4-level
  pyramid, looked up bilinearly in a (2r+1)² window of radius 3 around the current estimate at
  every level;
- a small motion encoder (correlation 1×1 -> 96; flow 7×7 -> 64, 3×3 -> 32; fused 3×3 -> 80,
  plus the flow itself), one 3×3 ConvGRU of hidden size 96 fed [context, motion], and a flow
  head (3×3 -> 128, 3×3 -> 2) predicting the update Δf; 12 iterations at test time;
- the small update block predicts no convex-upsampling mask: the full-resolution flow is the
  1/8 flow upsampled ×8 bilinearly (align_corners) and multiplied by 8.

Paper configuration: 990,162 parameters.

Differences from the paper text and the official code, each for a reason:

1. The correlation lookup keeps the release's window layout: lookup channel
   ``level·(2r+1)² + a·(2r+1) + b`` holds the offset (x + a − r, y + b − r), i.e. the x
   offset runs along the slower window axis. The paper does not fix an order; the released
   weights (the motion encoder's first 1×1 convolution) were trained with this one.
2. Bilinear lookup maps pixel coordinates to ``grid_sample``'s grid with ``align_corners=False``
   and ``(2x + 1)/W − 1``, which samples the same points as the release's ``align_corners=True``
   and ``2x/(W − 1) − 1`` (to float rounding) but stays finite for a 1-pixel-wide pyramid level,
   where the release divides by zero. Out-of-range samples read zero, as in the release.
3. Sizes not divisible by 8 are padded by edge replication, split top/bottom and left/right as
   the release's ``InputPadder`` does in its default ('sintel') mode, and the flow is cropped
   back. Inputs whose coarsest pyramid level would be empty raise ``InvalidInputError`` (the
   release fails inside ``avg_pool2d``).
4. Only the test-time path is implemented: ``forward`` returns the final flow, not the
   per-iteration list RAFT trains with (sequence loss); ``flows`` also returns the 1/8 flow.
   There is no ``flow_init`` warm start, mixed precision or memory-saving ("alternate") lookup.
5. Convolution weights are initialised He-normal (fan-out) with zero biases; the paper gives no
   initialisation. Dropout is 0 (the release's default), so train and eval modes compute the
   same function.
6. The ``small``/``tiny`` presets are llve's reduced widths for fast tests, not released models.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llve.data.mosaic import check_model_input
from llve.errors import CheckpointError, InvalidInputError, UnknownNameError
from llve.train import is_llve_checkpoint, load_model_weights, load_torch_file

STRIDE = 8  # the encoders' output resolution is 1/8 of the (padded) input


@dataclass
class RaftConfig:
    stem_channels: int = 32  # 7×7 stride-2 stem output width
    stage_channels: tuple[int, ...] = (32, 64, 96)  # widths of the three residual stages
    bottleneck_ratio: int = 4  # bottleneck blocks squeeze to width / ratio inside
    feature_channels: int = 128  # feature encoder output (correlated), 1/8 resolution
    hidden_channels: int = 96  # ConvGRU state, from the context encoder via tanh
    context_channels: int = 64  # context features, from the context encoder via relu
    corr_levels: int = 4  # correlation pyramid levels (average-pooled ×2 each)
    corr_radius: int = 3  # lookup window radius r: (2r+1)² samples per level
    motion_corr_channels: int = 96  # motion encoder: 1×1 conv of the looked-up correlation
    motion_flow_channels: tuple[int, int] = (64, 32)  # motion encoder: 7×7 then 3×3 on the flow
    motion_channels: int = 80  # motion encoder output before the flow is appended
    flow_head_channels: int = 128  # hidden width of the flow head
    iterations: int = 12  # GRU updates at test time

    @classmethod
    def paper(cls) -> "RaftConfig":
        """The released RAFT-small (990,162 parameters)."""
        return cls()

    @classmethod
    def small(cls) -> "RaftConfig":
        return cls(stem_channels=16, stage_channels=(16, 32, 48), feature_channels=64,
                   hidden_channels=48, context_channels=32, motion_corr_channels=48,
                   motion_flow_channels=(32, 16), motion_channels=40, flow_head_channels=64,
                   iterations=6)

    @classmethod
    def tiny(cls) -> "RaftConfig":
        return cls(stem_channels=8, stage_channels=(8, 16, 24), feature_channels=16,
                   hidden_channels=16, context_channels=8, corr_levels=2, corr_radius=2,
                   motion_corr_channels=16, motion_flow_channels=(8, 8), motion_channels=14,
                   flow_head_channels=16, iterations=3)


# ----------------------------------------------------------------------------------------------
# Encoders


class Bottleneck(nn.Module):
    """1×1 squeeze, 3×3 (carrying the stride), 1×1 expand, each normed + relu; residual sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, ratio: int,
                 norm: bool):
        super().__init__()
        mid = out_channels // ratio

        def normed(channels: int) -> nn.Module:
            return nn.InstanceNorm2d(channels) if norm else nn.Identity()

        self.reduce = nn.Conv2d(in_channels, mid, 1)
        self.spatial = nn.Conv2d(mid, mid, 3, stride=stride, padding=1)
        self.expand = nn.Conv2d(mid, out_channels, 1)
        self.norms = nn.ModuleList(normed(c) for c in (mid, mid, out_channels))
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride) if stride > 1 \
            else None
        self.shortcut_norm = normed(out_channels) if stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv, norm in zip((self.reduce, self.spatial, self.expand), self.norms):
            y = F.relu(norm(conv(y)))
        if self.shortcut is not None:
            x = self.shortcut_norm(self.shortcut(x))
        return F.relu(x + y)


class Encoder(nn.Module):
    """Image N×3×H×W (normalised to [−1, 1]) -> features N×out×H/8×W/8."""

    def __init__(self, config: RaftConfig, out_channels: int, norm: bool):
        super().__init__()
        self.stem = nn.Conv2d(3, config.stem_channels, 7, stride=2, padding=3)
        self.stem_norm = nn.InstanceNorm2d(config.stem_channels) if norm else nn.Identity()
        stages, width = [], config.stem_channels
        for index, channels in enumerate(config.stage_channels):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(
                Bottleneck(width, channels, stride, config.bottleneck_ratio, norm),
                Bottleneck(channels, channels, 1, config.bottleneck_ratio, norm)))
            width = channels
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_norm(self.stem(x)))
        for stage in self.stages:
            x = stage(x)
        return self.head(x)


# ----------------------------------------------------------------------------------------------
# Correlation pyramid


def correlation_pyramid(features1: torch.Tensor, features2: torch.Tensor, levels: int
                        ) -> list[torch.Tensor]:
    """All-pairs correlation of N×C×h×w features, pooled: level l is (N·h·w)×1×h/2^l×w/2^l."""
    n, c, h, w = features1.shape
    corr = torch.einsum("nci,ncj->nij", features1.flatten(2), features2.flatten(2))  # N×hw×hw
    corr = corr.reshape(n * h * w, 1, h, w) / math.sqrt(c)  # one target map per source pixel
    pyramid = [corr]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))
    return pyramid


def lookup(pyramid: list[torch.Tensor], coords: torch.Tensor, radius: int) -> torch.Tensor:
    """Sample every level in a (2r+1)² window around ``coords`` (N×2×h×w, x then y, in 1/8
    pixels): returns N×(levels·(2r+1)²)×h×w, window channels ordered as deviation 1 says."""
    n, _, h, w = coords.shape
    side = 2 * radius + 1
    offsets = torch.arange(-radius, radius + 1, dtype=coords.dtype, device=coords.device)
    # window[a, b] = (x offset offsets[a], y offset offsets[b]): side×side×2
    window = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), dim=-1)
    centres = coords.permute(0, 2, 3, 1).reshape(n * h * w, 1, 1, 2)  # (N·h·w)×1×1×(x, y)
    samples = []
    for level, corr in enumerate(pyramid):
        points = centres / 2 ** level + window  # (N·h·w)×side×side×2, level pixels
        size = torch.tensor([corr.shape[-1], corr.shape[-2]], dtype=coords.dtype,
                            device=coords.device)
        grid = (2 * points + 1) / size - 1  # pixel centres -> [−1, 1] (deviation 2)
        sampled = F.grid_sample(corr, grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)  # (N·h·w)×1×side×side
        samples.append(sampled.reshape(n, h, w, side * side))  # N×h×w×side²
    return torch.cat(samples, dim=-1).permute(0, 3, 1, 2)  # N×(levels·side²)×h×w


# ----------------------------------------------------------------------------------------------
# Update block


class MotionEncoder(nn.Module):
    """(looked-up correlation, flow) -> motion features N×(motion + 2)×h×w (flow appended)."""

    def __init__(self, config: RaftConfig):
        super().__init__()
        corr_channels = config.corr_levels * (2 * config.corr_radius + 1) ** 2
        flow1, flow2 = config.motion_flow_channels
        self.corr = nn.Conv2d(corr_channels, config.motion_corr_channels, 1)
        self.flow1 = nn.Conv2d(2, flow1, 7, padding=3)
        self.flow2 = nn.Conv2d(flow1, flow2, 3, padding=1)
        self.fuse = nn.Conv2d(config.motion_corr_channels + flow2, config.motion_channels, 3,
                              padding=1)

    def forward(self, corr: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        c = F.relu(self.corr(corr))
        f = F.relu(self.flow2(F.relu(self.flow1(flow))))
        return torch.cat([F.relu(self.fuse(torch.cat([c, f], dim=1))), flow], dim=1)


class ConvGRU(nn.Module):
    """A GRU whose gates are 3×3 convolutions over [hidden, input] (paper Eq. 3)."""

    def __init__(self, hidden: int, inputs: int):
        super().__init__()
        self.update_gate = nn.Conv2d(hidden + inputs, hidden, 3, padding=1)
        self.reset_gate = nn.Conv2d(hidden + inputs, hidden, 3, padding=1)
        self.candidate = nn.Conv2d(hidden + inputs, hidden, 3, padding=1)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.update_gate(hx))
        r = torch.sigmoid(self.reset_gate(hx))
        q = torch.tanh(self.candidate(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


class FlowHead(nn.Sequential):
    """GRU state -> flow update Δf (N×2×h×w)."""

    def __init__(self, hidden: int, channels: int):
        super().__init__()
        self.hidden = nn.Conv2d(hidden, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.out = nn.Conv2d(channels, 2, 3, padding=1)


class UpdateBlock(nn.Module):
    """One RAFT iteration: (state, context, correlation, flow) -> (new state, Δf)."""

    def __init__(self, config: RaftConfig):
        super().__init__()
        self.motion = MotionEncoder(config)
        self.gru = ConvGRU(config.hidden_channels,
                           config.context_channels + config.motion_channels + 2)
        self.flow_head = FlowHead(config.hidden_channels, config.flow_head_channels)

    def forward(self, state, context, corr, flow):
        state = self.gru(state, torch.cat([context, self.motion(corr, flow)], dim=1))
        return state, self.flow_head(state)


# ----------------------------------------------------------------------------------------------
# RAFT


def pixel_grid(n: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """N×2×h×w pixel coordinates, channel 0 = x (column), channel 1 = y (row)."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=like.dtype, device=like.device),
                            torch.arange(w, dtype=like.dtype, device=like.device),
                            indexing="ij")
    return torch.stack([xs, ys]).expand(n, 2, h, w)


class Raft(nn.Module):
    """RAFT-small: frames N×3×H×W in [0, 255] -> flow N×2×H×W (frame 1 -> frame 2)."""

    def __init__(self, config: RaftConfig | None = None):
        super().__init__()
        config = config or RaftConfig()
        self.config = config
        self.feature_encoder = Encoder(config, config.feature_channels, norm=True)
        self.context_encoder = Encoder(config, config.hidden_channels + config.context_channels,
                                       norm=False)
        self.update = UpdateBlock(config)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def _check(self, image1: torch.Tensor, image2: torch.Tensor) -> None:
        dtype = self.feature_encoder.stem.weight.dtype
        for what, image in (("RAFT image1", image1), ("RAFT image2", image2)):
            check_model_input(image, dtype, what)
            if image.ndim != 4 or image.shape[1] != 3:
                raise InvalidInputError(f"{what} must be RGB frames N×3×H×W in [0, 255], got "
                                        f"shape {tuple(image.shape)}")
        if image1.shape != image2.shape:
            raise InvalidInputError(f"RAFT frames differ in shape: {tuple(image1.shape)} and "
                                    f"{tuple(image2.shape)}")
        smallest = 2 ** (self.config.corr_levels - 1)  # the coarsest level needs 1 pixel
        h8, w8 = (-(-size // STRIDE) for size in image1.shape[-2:])
        if min(h8, w8) < smallest:
            raise InvalidInputError(
                f"RAFT frames of {image1.shape[-2]}×{image1.shape[-1]} are too small for "
                f"{self.config.corr_levels} correlation levels: each side needs at least "
                f"{STRIDE * (smallest - 1) + 1} pixels")

    def flows(self, image1: torch.Tensor, image2: torch.Tensor, iterations: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1/8 flow of the padded frames N×2×h×w in 1/8 pixels, full flow N×2×H×W)."""
        self._check(image1, image2)
        config = self.config
        iterations = config.iterations if iterations is None else iterations
        height, width = image1.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        frames = torch.cat([image1, image2]) / 255 * 2 - 1  # 2N×3×H×W in [−1, 1]
        if pad_h or pad_w:
            frames = F.pad(frames, pads, mode="replicate")  # deviation 3
        n = image1.shape[0]
        features1, features2 = self.feature_encoder(frames).split(n)  # each N×C×h×w
        state, context = self.context_encoder(frames[:n]).split(
            [config.hidden_channels, config.context_channels], dim=1)
        state, context = torch.tanh(state), F.relu(context)
        pyramid = correlation_pyramid(features1, features2, config.corr_levels)
        h, w = features1.shape[-2:]
        coords0 = pixel_grid(n, h, w, features1)
        coords1 = coords0
        for _ in range(iterations):
            coords1 = coords1.detach()  # the release stops gradients through the estimate
            corr = lookup(pyramid, coords1, config.corr_radius)
            state, delta = self.update(state, context, corr, coords1 - coords0)
            coords1 = coords1 + delta
        low = coords1 - coords0
        up = STRIDE * F.interpolate(low, size=(STRIDE * h, STRIDE * w), mode="bilinear",
                                    align_corners=True)  # N×2×8h×8w, full-resolution pixels
        return low, up[..., pads[2]:pads[2] + height, pads[0]:pads[0] + width]

    def forward(self, image1: torch.Tensor, image2: torch.Tensor,
                iterations: int | None = None) -> torch.Tensor:
        return self.flows(image1, image2, iterations)[1]


# ----------------------------------------------------------------------------------------------
# Registry and official weights


PRESETS = {"paper": RaftConfig.paper, "small": RaftConfig.small, "tiny": RaftConfig.tiny}


def build(preset: str = "paper", **overrides) -> Raft:
    """``Raft`` from a preset name (``paper``/``small``/``tiny``) and config-field overrides."""
    if preset not in PRESETS:
        raise UnknownNameError(
            f"unknown raft_small preset {preset!r}: expected one of {sorted(PRESETS)}")
    try:
        config = dataclasses.replace(PRESETS[preset](), **overrides)
    except TypeError as error:
        raise InvalidInputError(f"bad raft_small config override: {error}") from None
    return Raft(config)


_MODULES = {"feature_encoder": "fnet", "context_encoder": "cnet", "update": "update_block"}
_ENCODER = {"stem": "conv1", "head": "conv2"}
_BLOCK = {"reduce": "conv1", "spatial": "conv2", "expand": "conv3", "shortcut": "downsample.0"}
_UPDATE = {"motion.corr": "encoder.convc1", "motion.flow1": "encoder.convf1",
           "motion.flow2": "encoder.convf2", "motion.fuse": "encoder.conv",
           "gru.update_gate": "gru.convz", "gru.reset_gate": "gru.convr",
           "gru.candidate": "gru.convq", "flow_head.hidden": "flow_head.conv1",
           "flow_head.out": "flow_head.conv2"}


def official_key(key: str) -> str:
    """The release's name (without ``module.``) of llve parameter ``key``:
    ``feature_encoder.stages.1.0.shortcut.weight`` -> ``fnet.layer2.0.downsample.0.weight``."""
    top, rest = key.split(".", 1)
    if top not in _MODULES:
        raise KeyError(key)
    layer, kind = rest.rsplit(".", 1)  # kind: weight / bias
    if top == "update":
        mapped = _UPDATE[layer]
    elif match := re.fullmatch(r"stages\.(\d+)\.(\d+)\.(\w+)", layer):
        stage, block, conv = match.groups()
        mapped = f"layer{int(stage) + 1}.{block}.{_BLOCK[conv]}"
    else:
        mapped = _ENCODER[layer]
    return f"{_MODULES[top]}.{mapped}.{kind}"


def from_official_state(model: Raft, state: Mapping[str, torch.Tensor], source: str
                        ) -> dict[str, torch.Tensor]:
    """The release's state dict (``module.``-prefixed or not) under llve's key names. Raises
    ``CheckpointError`` naming missing, unexpected and wrongly shaped keys."""
    state = {re.sub(r"^module\.", "", str(key)): value for key, value in state.items()}
    expected = {official_key(key): (key, value.shape)
                for key, value in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [f"{key}: file {tuple(state[key].shape)}, model {tuple(shape)}"
                  for key, (_, shape) in expected.items()
                  if key in state and state[key].shape != shape]
    if missing or unexpected or mismatched:
        problems = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
                    for label, keys in (("Missing keys", missing), ("Unexpected keys", unexpected),
                                        ("size mismatch", mismatched)) if keys]
        raise CheckpointError(f"{source}: does not match RAFT-small ({model.config}) in the "
                              f"official key layout: " + "; ".join(problems))
    return {llve_key: state[key] for key, (llve_key, _) in expected.items()}


def load_weights(model: Raft, path: str | os.PathLike) -> Raft:
    """Load ``path`` into ``model`` (``strict=True``): the official ``raft-small.pth`` (a state
    dict saved from ``nn.DataParallel``, keys ``module.fnet...``; also without the prefix, and
    the legacy CUDA-saved file) or an llve training checkpoint. Returns ``model``."""
    payload = load_torch_file(path)
    if is_llve_checkpoint(payload):
        load_model_weights(model, path)
        return model
    if not (isinstance(payload, Mapping) and payload
            and all(torch.is_tensor(value) for value in payload.values())):
        raise CheckpointError(f"{path}: neither an llve checkpoint nor RAFT's official release "
                              "format (a state dict of tensors, keys module.fnet..., "
                              "module.cnet..., module.update_block...)")
    try:
        model.load_state_dict(from_official_state(model, payload, str(path)), strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: does not match this RAFT configuration "
                              f"({model.config}): {error}") from error
    return model
