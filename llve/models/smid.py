"""SMID: the "Seeing Motion in the Dark" U-Net, a per-frame baseline of the CFA and JFFRA papers.

Paper: Chen Chen, Qifeng Chen, Minh N. Do and Vladlen Koltun, "Seeing Motion in the Dark",
ICCV 2019. Official code (TensorFlow): https://github.com/cchen156/Seeing-Motion-in-the-Dark

Input: one frame N×C×H×W, C = ``in_channels`` (3 in the paper configuration). SMID feeds it the
amplified raw video after VBM4D denoising and demosaicking to three "raw RGB" planes (the DRV
``VBM4D_rawRGB`` files); the CFA paper also trains it on static sRGB frames. The network does
not know which: preparing the frame belongs to the data pipeline. Output: N×3×H×W sRGB,
unclamped (the last convolution has no activation), as SMID trains it; clip to [0, 1] only for
viewing or saving. Video is processed frame by frame; temporal stability comes from training
with :func:`siamese_loss` on two noisy captures of one static scene, not from the network.

Network: a SID-style U-Net with 32, 64, 128, 256, 512 channels and 2×2 max-pooling between
stages. Every 3×3 convolution is followed by LayerNorm (over C, H, W with a per-channel scale
and shift: TensorFlow's ``layer_norm`` on NHWC, ≡ ``GroupNorm(1, C)``) and LeakyReLU 0.2, and
has no bias (the norm's shift replaces it); only the very first convolution has a bias and no
norm. The 512-channel bottleneck carries 16 residual blocks (conv-norm-LeakyReLU, conv-norm,
+ skip), one more conv-norm and a long skip around all of them. The decoder upsamples with a
2×2 stride-2 transposed convolution (no bias), concatenates [upsampled, skip] and applies two
conv-norm-LeakyReLU; a 1×1 convolution with bias gives the 3 output channels.
Paper configuration (3 in, 3 out): 85,653,155 parameters.

Differences from the official TensorFlow code, each for a reason:

1. Sizes that are not multiples of 16 are reflect-padded at the bottom/right and the output
   cropped back; the TF code relies on ``SAME`` max-pooling and ``conv2d_transpose`` to the
   skip's shape, which only round-trips for divisible sizes (DRV frames are cropped to them).
2. LayerNorm's epsilon is TF's default 1e-12 (``norm_eps``); PyTorch's GroupNorm default is
   1e-5. Raise it for half-precision training, where 1e-12 underflows.
3. The official code's ``demosaic`` branch (12 output channels and depth-to-space, for packed
   Bayer input) is not the paper's configuration and is not offered here.
4. Initialisation follows TF-slim's defaults (Xavier-uniform weights, zero biases, unit norm
   scale) and the release's truncated normal (σ = 0.02) for the transposed convolutions.
5. :func:`siamese_loss` takes the feature distance as a callable (default L1 on pixels);
   the release uses a sum of L1 distances on pixels (×255, mean-subtracted) and VGG-19
   ``conv1_2``, ``conv2_2``, ``conv3_2``, ``conv4_2`` features, which llve does not ship.
6. Channels are in RGB order; the release reads frames with OpenCV (BGR) and flips them only
   for VGG. Training from scratch, the two orders give the same network up to a permutation
   of the first and last layers' channels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llve.data.mosaic import check_model_input, crop_output, reflect_pad
from llve.errors import InvalidInputError, UnknownNameError

SIAMESE_ALPHA = 0.05  # weight of the output-to-output term of SMID's Siamese loss


@dataclass
class SmidConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)  # encoder stage widths, shallow to deep
    residual_blocks: int = 16  # residual blocks at the bottleneck width
    in_channels: int = 3  # VBM4D-denoised, demosaicked raw RGB (or sRGB) frame
    out_channels: int = 3  # sRGB
    negative_slope: float = 0.2  # LeakyReLU, as in SID
    norm_eps: float = 1e-12  # TF layer_norm's variance epsilon

    @classmethod
    def paper(cls) -> "SmidConfig":
        return cls()

    @classmethod
    def small(cls) -> "SmidConfig":
        return cls(widths=(16, 32, 64, 128, 256), residual_blocks=8)

    @classmethod
    def tiny(cls) -> "SmidConfig":
        return cls(widths=(8, 16, 32, 64, 128), residual_blocks=2)


class ConvNorm(nn.Sequential):
    """3×3 convolution without bias -> LayerNorm (GroupNorm with one group) -> optional LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, eps: float,
                 negative_slope: float | None):
        layers = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                  nn.GroupNorm(1, out_channels, eps=eps)]
        if negative_slope is not None:
            layers.append(nn.LeakyReLU(negative_slope))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """conv-norm-LeakyReLU, conv-norm, plus the block's input (no activation after the sum)."""

    def __init__(self, channels: int, eps: float, negative_slope: float):
        super().__init__()
        self.body = nn.Sequential(ConvNorm(channels, channels, eps, negative_slope),
                                  ConvNorm(channels, channels, eps, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Smid(nn.Module):
    """SMID's U-Net on one frame N×in_channels×H×W -> N×out_channels×H×W (unclamped)."""

    input_layout = "frame"

    def __init__(self, config: SmidConfig | None = None):
        super().__init__()
        config = config or SmidConfig()
        self.config = config
        widths, eps, slope = config.widths, config.norm_eps, config.negative_slope
        # The first stage's first convolution has a bias and no norm, as in the release.
        first = nn.Sequential(nn.Conv2d(config.in_channels, widths[0], 3, padding=1),
                              nn.LeakyReLU(slope), ConvNorm(widths[0], widths[0], eps, slope))
        self.encoder = nn.ModuleList([first] + [
            nn.Sequential(ConvNorm(w_in, w_out, eps, slope), ConvNorm(w_out, w_out, eps, slope))
            for w_in, w_out in zip(widths[:-1], widths[1:])
        ])
        deepest = widths[-1]
        self.residual = nn.Sequential(
            *(ResidualBlock(deepest, eps, slope) for _ in range(config.residual_blocks)),
            ConvNorm(deepest, deepest, eps, None),  # closes the chain before the long skip
        )
        deep_to_shallow = widths[::-1]
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(w_in, w_out, 2, stride=2, bias=False)
            for w_in, w_out in zip(deep_to_shallow, deep_to_shallow[1:])
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(ConvNorm(2 * w_out, w_out, eps, slope), ConvNorm(w_out, w_out, eps, slope))
            for w_out in deep_to_shallow[1:]
        )
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)
        self.multiple = 2 ** (len(widths) - 1)  # sizes must survive every max-pool
        self._init_like_tensorflow()

    def _init_like_tensorflow(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.ConvTranspose2d):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            elif isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        channels = self.config.in_channels
        if not isinstance(frame, torch.Tensor) or frame.ndim != 4 or frame.shape[1] != channels:
            shape = tuple(frame.shape) if hasattr(frame, "shape") else type(frame).__name__
            raise InvalidInputError(
                f"SMID input frame must be one frame N×{channels}×H×W (a clip is processed "
                f"frame by frame), got shape {shape}")
        height, width = frame.shape[-2:]
        if height == 0 or width == 0:
            raise InvalidInputError(f"SMID input frame is empty: shape {tuple(frame.shape)}")
        check_model_input(frame, self.head.weight.dtype, "SMID input frame")
        x = reflect_pad(frame, right=-width % self.multiple, bottom=-height % self.multiple)
        skips = []
        for index, stage in enumerate(self.encoder):
            x = stage(x)
            if index < len(self.encoder) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        x = x + self.residual(x)  # long skip around the residual chain
        for upsample, stage, skip in zip(self.upsample, self.decoder, reversed(skips)):
            x = stage(torch.cat([upsample(x), skip], dim=1))
        return crop_output(self.head(x), (0, 0, height, width))


def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference: the default feature distance of :func:`siamese_loss`."""
    return (a - b).abs().mean()


def siamese_loss(gt: torch.Tensor, out1: torch.Tensor, out2: torch.Tensor,
                 feature_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 alpha: float = SIAMESE_ALPHA) -> torch.Tensor:
    """SMID's Siamese loss ``F(gt, out1) + F(gt, out2) + alpha · F(out1, out2)``.

    ``out1`` and ``out2`` are the network's outputs for two different noisy captures of the same
    static scene, whose ground truth is ``gt`` (all N×3×H×W). The first two terms fit each output
    to the ground truth; the third (``alpha`` = 0.05 in the paper) pulls the two outputs
    together, so the network learns to give the same answer for different noise: that is what
    keeps it temporally stable on video. ``out2`` is not detached: the term trains both
    branches, as in the release where both outputs come from one batch through one network.
    ``feature_loss(a, b)`` returns a scalar distance; default :func:`l1_distance` on pixels (the
    release sums L1 on pixels and on VGG-19 features; see deviation 5).
    """
    shapes = {"gt": tuple(gt.shape), "out1": tuple(out1.shape), "out2": tuple(out2.shape)}
    if len(set(shapes.values())) != 1:
        raise InvalidInputError(f"siamese_loss needs gt, out1 and out2 of one shape, got {shapes}")
    distance = feature_loss or l1_distance
    return distance(gt, out1) + distance(gt, out2) + alpha * distance(out1, out2)


PRESETS = {"paper": SmidConfig.paper, "small": SmidConfig.small, "tiny": SmidConfig.tiny}


def build(preset: str = "paper", **overrides) -> Smid:
    """``Smid`` from a preset name (``paper``/``small``/``tiny``) and config-field overrides."""
    if preset not in PRESETS:
        raise UnknownNameError(f"unknown smid preset {preset!r}: expected one of {sorted(PRESETS)}")
    try:
        config = dataclasses.replace(PRESETS[preset](), **overrides)
    except TypeError as error:
        raise InvalidInputError(f"bad smid config override: {error}") from None
    return Smid(config)
