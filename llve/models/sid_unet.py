"""The SID U-Net: the baseline Lamba and DarkDiff compare against.

Paper: Chen Chen, Qifeng Chen, Jia Xu and Vladlen Koltun, "Learning to See in the Dark", CVPR 2018.
Official code (TensorFlow): https://github.com/cchen156/Learning-to-See-in-the-Dark

Input: the packed Bayer mosaic N×4×(H/2)×(W/2), planes in SID's order R, G1, B, G2, already
black-subtracted, white-normalised, multiplied by the amplification ``min(t_gt / t_in, 300)``
and clipped with ``min(·, 1)``. That preparation belongs to the data pipeline, not the model
(``SidUnetOnMosaic`` below does it for an amplified unpacked mosaic). Output: N×3×H×W sRGB,
unclamped, as SID trains it; SID clips to [0, 1] only when saving, and so does the wrapper.

Network: per encoder stage two 3×3 convolutions (bias, LeakyReLU 0.2) with 32, 64, 128, 256,
512 channels and 2×2 max-pooling between stages; per decoder stage a 2×2 stride-2 transposed
convolution, concatenation [upsampled, skip], two 3×3 convolutions (256, 128, 64, 32); a 1×1
convolution 32→12 and depth-to-space 2. Paper configuration: 7,760,268 parameters, 560.09 G
convolution MACs at packed 1424×2128 (Sony), 562 G in the papers' ptflops-style counting.

Differences from the official TensorFlow code, each for a reason:

1. ``transpose_bias=False`` (default) is TF-faithful: SID's ``upsample_and_concat`` uses a bare
   ``conv2d_transpose`` without bias. Most PyTorch ports add one (+480 parameters:
   7,760,748); the flag reproduces either count.
2. Depth-to-space uses PyTorch's ``pixel_shuffle`` channel order (c·4 + 2·i + j) where TF's
   ``depth_to_space`` uses (2·i + j)·3 + c. The two differ by a fixed permutation of the 12
   output channels of the last 1×1 convolution: identical for training from scratch, only a
   TF checkpoint import would have to permute that layer.
3. Sizes that are not multiples of 16 in packed space are reflect-padded at the bottom/right and
   the output cropped back; the TF code needs divisible sizes (Sony frames already are).
4. Initialisation follows TF-slim's defaults (Xavier-uniform weights, zero biases) and SID's
   truncated normal (σ = 0.02) for the transposed convolutions, rather than PyTorch's defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llve.data.raw import pack
from llve.errors import InvalidInputError, UnknownNameError
from llve.data.mosaic import (
    check_model_input, check_mosaic, check_unpacked_mosaic, crop_output, reflect_pad,
)


@dataclass
class SidUnetConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256, 512)  # encoder stage widths, shallow to deep
    in_channels: int = 4  # packed R, G1, B, G2
    out_channels: int = 12  # 3 colours × a 2×2 depth-to-space block
    negative_slope: float = 0.2
    transpose_bias: bool = False  # TF-faithful: SID's conv2d_transpose has no bias

    @classmethod
    def paper(cls) -> "SidUnetConfig":
        return cls()

    @classmethod
    def small(cls) -> "SidUnetConfig":
        return cls(widths=(16, 32, 64, 128, 256))

    @classmethod
    def tiny(cls) -> "SidUnetConfig":
        return cls(widths=(8, 16, 32, 64, 128))


class DoubleConv(nn.Sequential):
    """Two 3×3 convolutions with bias, each followed by LeakyReLU: one U-Net stage."""

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float = 0.2):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(negative_slope),
            nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.LeakyReLU(negative_slope),
        )


class SidUnet(nn.Module):
    """SID's U-Net on packed planes N×4×h×w -> N×3×2h×2w (unclamped)."""

    input_layout = "packed_rgbg"  # how ``llve.papers.lamba.amplifier.amplify_and_restore`` feeds it

    def __init__(self, config: SidUnetConfig | None = None):
        super().__init__()
        config = config or SidUnetConfig()
        self.config = config
        widths, slope = config.widths, config.negative_slope
        self.encoder = nn.ModuleList(
            DoubleConv(w_in, w_out, slope)
            for w_in, w_out in zip((config.in_channels,) + widths[:-1], widths)
        )
        deep_to_shallow = widths[::-1]
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(w_in, w_out, 2, stride=2, bias=config.transpose_bias)
            for w_in, w_out in zip(deep_to_shallow, deep_to_shallow[1:])
        )
        self.decoder = nn.ModuleList(
            DoubleConv(2 * w_out, w_out, slope) for w_out in deep_to_shallow[1:]
        )
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)
        self.multiple = 2 ** (len(widths) - 1)  # packed sizes must survive every max-pool
        self._init_like_tensorflow()

    def _init_like_tensorflow(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.ConvTranspose2d):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            elif isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        if packed.ndim != 4 or packed.shape[1] != self.config.in_channels:
            raise InvalidInputError(
                f"SID U-Net input must be packed planes N×{self.config.in_channels}×h×w, "
                f"got shape {tuple(packed.shape)}")
        height, width = packed.shape[-2:]
        if height == 0 or width == 0:
            raise InvalidInputError(f"SID U-Net input is empty: shape {tuple(packed.shape)}")
        check_model_input(packed, self.head.weight.dtype, "SID U-Net input")
        x = reflect_pad(packed, right=-width % self.multiple, bottom=-height % self.multiple)
        skips = []
        for index, stage in enumerate(self.encoder):
            x = stage(x)
            if index < len(self.encoder) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for upsample, stage, skip in zip(self.upsample, self.decoder, reversed(skips)):
            x = stage(torch.cat([upsample(x), skip], dim=1))
        rgb = F.pixel_shuffle(self.head(x), 2)
        return crop_output(rgb, (0, 0, 2 * height, 2 * width))


class SidUnetOnMosaic(nn.Module):
    """Call a ``SidUnet`` the way ``Lamba`` is called: amplified mosaic N×1×H×W -> RGB N×3×H×W.

    Does SID's data preparation (``min(·, 1)``, pack R, G1, B, G2 for any Bayer ``pattern``) and
    its test-time clip to [0, 1]. Packing reads the pattern, so no phase shift is needed.
    """

    input_layout = "mosaic"

    def __init__(self, unet: SidUnet):
        super().__init__()
        self.unet = unet

    def forward(self, mosaic: torch.Tensor, pattern: str = "RGGB") -> torch.Tensor:
        check_unpacked_mosaic(mosaic)
        check_mosaic(mosaic, pattern)
        check_model_input(mosaic, self.unet.head.weight.dtype, "SID U-Net input mosaic")
        packed = pack(mosaic.clamp(max=1.0)[:, 0], pattern, order="RGBG")  # N×4×H/2×W/2
        return self.unet(packed).clamp(0.0, 1.0)


PRESETS = {"paper": SidUnetConfig.paper, "small": SidUnetConfig.small, "tiny": SidUnetConfig.tiny}


def build(preset: str = "paper", **overrides) -> SidUnet:
    """``SidUnet`` from a preset name (``paper``/``small``/``tiny``) and config-field overrides."""
    if preset not in PRESETS:
        raise UnknownNameError(f"unknown sid_unet preset {preset!r}: expected one of {sorted(PRESETS)}")
    try:
        config = dataclasses.replace(PRESETS[preset](), **overrides)
    except TypeError as error:
        raise InvalidInputError(f"bad sid_unet config override: {error}") from None
    return SidUnet(config)
