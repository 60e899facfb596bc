"""FastDVDnet: a two-stage, flow-free video denoiser, a baseline of the CFA and JFFRA papers.

Paper: Matias Tassano, Julie Delon and Thomas Veit, "FastDVDnet: Towards Real-Time Deep Video
Denoising Without Flow Estimation", CVPR 2020. Official code (PyTorch):
https://github.com/m-tassano/fastdvdnet

Input: ``frames`` N×5×3×H×W, five consecutive RGB frames in [0, 1] centred on the frame to
denoise (at a clip's ends the caller mirrors frames in time, as the release does), and
``noise_map`` N×1×H×W, the noise standard deviation per pixel on the same [0, 1] scale — or one
number (a Python float or a 0-d tensor) for spatially uniform Gaussian noise, which is how the
paper trains and tests it. Any shape that broadcasts to N×1×H×W is also accepted (N×1×1×1: one
sigma per clip). Output: the denoised centre frame N×3×H×W, unclamped; the release clips to
[0, 1] at test time only, so do that for viewing or saving.

Network: one "denoising block" is a small U-Net over three frames. Each frame, concatenated
with the noise map, goes through its own group of a grouped 3×3 convolution (4 -> 30 channels
per frame), then a 3×3 convolution fuses the three groups to 32 channels; two stride-2 stages
(stride-2 conv then two convs) reach 64 and 128 channels at 1/4 scale; two upsampling stages
(two convs, a conv to 4× channels, pixel shuffle) come back, with additive skips; an output
conv-BN-ReLU-conv predicts the noise, which is subtracted from the middle frame. Every conv
but the last is followed by BatchNorm and ReLU; no conv has a bias. Stage 1 runs ONE block
(shared weights) on frame triplets (0,1,2), (1,2,3), (2,3,4); stage 2, a second block, fuses
the three stage-1 outputs. Paper configuration: 2,479,096 parameters; 166.8 G MACs for five
512×512 frames (four block passes, convolutions only).

Differences from the official code, each for a reason:

1. Frames come as N×5×3×H×W, the release takes them stacked as N×15×H×W: a frame axis makes
   a wrong frame count a clear error instead of a silent channel mix-up.
2. Padding to a multiple of 4 (two scales) and the crop back happen inside ``forward``; the
   release does them in its test-time wrapper (reflect at the bottom/right, as here). The
   scalar-sigma noise map is also built here. The release's wrapper also clamps the output;
   ``forward`` does not, so training sees the raw residual output as in the release.
3. Initialisation as in the release: Kaiming-normal (ReLU gain) convolution weights, PyTorch's
   default BatchNorm parameters (and biases, where ``conv_bias`` asks for them).
4. ``conv_bias=False`` (default) follows the version of the release's ``models.py`` in which
   no convolution has a bias: it gives the paper's 2,479,096 parameters. Another version has a
   bias on every convolution (+3,002 parameters: 2,482,098); ``conv_bias=True`` reproduces it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from llve.data.mosaic import check_model_input, crop_output, reflect_pad
from llve.errors import InvalidInputError, UnknownNameError

NUM_FRAMES = 5  # frames per forward: two stages of three-frame blocks
BLOCK_FRAMES = 3  # frames one denoising block reads
MULTIPLE = 4  # two stride-2 stages: sides must divide by 4


@dataclass
class FastDvdnetConfig:
    widths: tuple[int, int, int] = (32, 64, 128)  # U-Net widths at scales 1, 1/2, 1/4
    frame_features: int = 30  # per-frame channels of the grouped input convolution
    colour_channels: int = 3  # RGB frames
    conv_bias: bool = False  # the release's final version: no convolution has a bias

    @classmethod
    def paper(cls) -> "FastDvdnetConfig":
        return cls()

    @classmethod
    def small(cls) -> "FastDvdnetConfig":
        return cls(widths=(16, 32, 64), frame_features=16)

    @classmethod
    def tiny(cls) -> "FastDvdnetConfig":
        return cls(widths=(8, 16, 32), frame_features=6)


def conv_bn_relu(in_channels: int, out_channels: int, bias: bool, stride: int = 1,
                 groups: int = 1) -> list[nn.Module]:
    """3×3 convolution -> BatchNorm -> ReLU, as a list of layers."""
    return [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups,
                      bias=bias),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


class DenoisingBlock(nn.Module):
    """Three frames plus noise map -> the denoised middle frame (FastDVDnet's "DenBlock")."""

    def __init__(self, config: FastDvdnetConfig):
        super().__init__()
        c0, c1, c2 = config.widths
        colours, features, bias = config.colour_channels, config.frame_features, config.conv_bias
        # Grouped: group k sees only frame k and the noise map (colours + 1 channels).
        self.inc = nn.Sequential(
            *conv_bn_relu(BLOCK_FRAMES * (colours + 1), BLOCK_FRAMES * features, bias,
                          groups=BLOCK_FRAMES),
            *conv_bn_relu(BLOCK_FRAMES * features, c0, bias))
        self.down1 = nn.Sequential(*conv_bn_relu(c0, c1, bias, stride=2),
                                   *conv_bn_relu(c1, c1, bias), *conv_bn_relu(c1, c1, bias))
        self.down2 = nn.Sequential(*conv_bn_relu(c1, c2, bias, stride=2),
                                   *conv_bn_relu(c2, c2, bias), *conv_bn_relu(c2, c2, bias))
        # Upsampling: a conv to 4× the target width, then pixel shuffle (sub-pixel convolution).
        self.up2 = nn.Sequential(*conv_bn_relu(c2, c2, bias), *conv_bn_relu(c2, c2, bias),
                                 nn.Conv2d(c2, 4 * c1, 3, padding=1, bias=bias),
                                 nn.PixelShuffle(2))
        self.up1 = nn.Sequential(*conv_bn_relu(c1, c1, bias), *conv_bn_relu(c1, c1, bias),
                                 nn.Conv2d(c1, 4 * c0, 3, padding=1, bias=bias),
                                 nn.PixelShuffle(2))
        self.outc = nn.Sequential(*conv_bn_relu(c0, c0, bias),
                                  nn.Conv2d(c0, colours, 3, padding=1, bias=bias))

    def forward(self, triplet: list[torch.Tensor], noise_map: torch.Tensor) -> torch.Tensor:
        # [f0, σ, f1, σ, f2, σ]: N×3(colours+1)×H×W, ordered for the grouped convolution
        interleaved = torch.cat([t for frame in triplet for t in (frame, noise_map)], dim=1)
        x0 = self.inc(interleaved)  # N×c0×H×W
        x1 = self.down1(x0)  # N×c1×H/2×W/2
        x2 = self.up2(self.down2(x1))  # N×c1×H/2×W/2 after the 1/4-scale round trip
        x1 = self.up1(x1 + x2)  # N×c0×H×W
        noise = self.outc(x0 + x1)  # N×colours×H×W
        return triplet[1] - noise  # residual: the block predicts the noise of the middle frame


class FastDvdnet(nn.Module):
    """FastDVDnet: frames N×5×3×H×W and a noise map (or sigma) -> centre frame N×3×H×W."""

    input_layout = "frames5"

    def __init__(self, config: FastDvdnetConfig | None = None):
        super().__init__()
        config = config or FastDvdnetConfig()
        self.config = config
        self.stage1 = DenoisingBlock(config)  # shared by the three triplets
        self.stage2 = DenoisingBlock(config)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def _check_frames(self, frames: torch.Tensor) -> None:
        colours = self.config.colour_channels
        if (not isinstance(frames, torch.Tensor) or frames.ndim != 5
                or frames.shape[1] != NUM_FRAMES or frames.shape[2] != colours):
            shape = tuple(frames.shape) if hasattr(frames, "shape") else type(frames).__name__
            raise InvalidInputError(
                f"FastDVDnet frames must be N×{NUM_FRAMES}×{colours}×H×W ({NUM_FRAMES} "
                f"consecutive frames centred on the one to denoise), got shape {shape}")
        if frames.shape[-1] == 0 or frames.shape[-2] == 0:
            raise InvalidInputError(f"FastDVDnet frames are empty: shape {tuple(frames.shape)}")
        check_model_input(frames, self.stage1.outc[-1].weight.dtype, "FastDVDnet frames")

    def _noise_map(self, noise_map, frames: torch.Tensor) -> torch.Tensor:
        """``noise_map`` as an N×1×H×W tensor like ``frames``, checked."""
        batch, height, width = frames.shape[0], frames.shape[-2], frames.shape[-1]
        if isinstance(noise_map, (int, float)) and not isinstance(noise_map, bool):
            if not math.isfinite(noise_map) or noise_map < 0:
                raise InvalidInputError(
                    f"FastDVDnet noise_map sigma must be a finite number ≥ 0, got {noise_map}")
            return torch.full((batch, 1, height, width), float(noise_map), dtype=frames.dtype,
                              device=frames.device)
        if not isinstance(noise_map, torch.Tensor):
            raise InvalidInputError(
                "FastDVDnet noise_map must be a number (sigma) or a tensor N×1×H×W, got "
                f"{type(noise_map).__name__}")
        check_model_input(noise_map, frames.dtype, "FastDVDnet noise_map")
        if noise_map.ndim == 0:
            noise_map = noise_map.reshape(1, 1, 1, 1)
        target = (batch, 1, height, width)
        if noise_map.ndim != 4 or any(s not in (1, t) for s, t in zip(noise_map.shape, target)):
            raise InvalidInputError(
                f"FastDVDnet noise_map must be a scalar or N×1×H×W = {target} (or broadcast to "
                f"it), got shape {tuple(noise_map.shape)}")
        if noise_map.device.type != "meta" and bool((noise_map < 0).any()):
            raise InvalidInputError("FastDVDnet noise_map has negative values: it is a standard "
                                    "deviation, expected ≥ 0")
        return noise_map.expand(target)

    def forward(self, frames: torch.Tensor, noise_map: torch.Tensor | float) -> torch.Tensor:
        self._check_frames(frames)
        sigma = self._noise_map(noise_map, frames)
        batch, _, colours, height, width = frames.shape
        pad = {"right": -width % MULTIPLE, "bottom": -height % MULTIPLE}
        # N×5×3×H×W -> N×15×H×W for padding, then back to five N×3×H'×W' frames
        stacked = reflect_pad(frames.reshape(batch, NUM_FRAMES * colours, height, width), **pad)
        sigma = reflect_pad(sigma, **pad)
        frame_list = list(stacked.split(colours, dim=1))
        # Stage 1: one block, three overlapping triplets (0,1,2), (1,2,3), (2,3,4).
        first = [self.stage1(frame_list[k:k + BLOCK_FRAMES], sigma)
                 for k in range(NUM_FRAMES - BLOCK_FRAMES + 1)]
        # Stage 2: fuse the three partially denoised frames.
        centre = self.stage2(first, sigma)
        return crop_output(centre, (0, 0, height, width))


PRESETS = {"paper": FastDvdnetConfig.paper, "small": FastDvdnetConfig.small,
           "tiny": FastDvdnetConfig.tiny}


def build(preset: str = "paper", **overrides) -> FastDvdnet:
    """``FastDvdnet`` from a preset name (``paper``/``small``/``tiny``) and config overrides."""
    if preset not in PRESETS:
        raise UnknownNameError(
            f"unknown fastdvdnet preset {preset!r}: expected one of {sorted(PRESETS)}")
    try:
        config = dataclasses.replace(PRESETS[preset](), **overrides)
    except TypeError as error:
        raise InvalidInputError(f"bad fastdvdnet config override: {error}") from None
    return FastDvdnet(config)
