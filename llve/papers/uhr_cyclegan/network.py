"""The generator and discriminator of the UHR CycleGAN (contextual colorization and denoising).

Paper: N. Anantrasirichai and D. Bull, "Contextual colorization and denoising for low-light
ultra-high-resolution sequences", ICIP 2021.
Official code: released in part by the authors (generator, discriminator, losses, patch
scripts; the adaptive temporal smoothing is not in it). Facts read from it are in
``../shared/papers/FACTS.md`` ("uhr_cyclegan"); nothing of it is copied here.

The network input is a *6-channel* patch: the local RGB crop (channels 0–2, N_l × N_l pixels)
and the RGB region crop centred on it (channels 3–5, N_r × N_r pixels resized to N_l × N_l;
see ``llve.papers.uhr_cyclegan.patches``). Values are in [-1, 1] (CycleGAN's convention), and
so is the Tanh output. ``in_channels=out_channels=3`` with ``encoder_activation="relu"`` is
the plain CycleGAN the paper compares against.

Generator (CycleGAN's ResNet-9, as the paper and release describe):

- encoder: reflect-pad 3, conv 7×7 in->64, InstanceNorm, act; two stride-2 conv 3×3
  (64->128->256), each InstanceNorm, act. ``act`` is the **learnable soft-shrink** (paper
  Sec. 3.2: "inspired by wavelet soft shrinkage", because the low-light input is noisy);
- 9 residual blocks at 1/4 resolution: reflect-pad 1, conv 3×3, IN, ReLU, reflect-pad 1,
  conv 3×3, IN, plus the skip, no activation after the sum;
- decoder: two transposed conv 3×3 stride 2 (256->128->64, output_padding 1), IN, ReLU;
  reflect-pad 3, conv 7×7 64->out, Tanh.

InstanceNorm has no affine parameters and every convolution has a bias (CycleGAN's defaults).

The soft-shrink thresholds are **per channel**: one λ for each of the 64 + 128 + 256 = 448
encoder channels of a generator (at base width 64), shaped 1×C×1×1. Per channel because each
channel after InstanceNorm is one feature map, like one wavelet subband in soft-shrinkage
denoising, whose noise level (and so its best threshold) differs from channel to channel; a
scalar per layer would be 3 numbers. The function is ``relu(x - |λ|) - relu(-x - |λ|)``: the
absolute value keeps it a shrinkage for any learned λ (a negative λ would otherwise amplify
small values). λ starts at ``shrink_init`` (0.5, PyTorch's ``Softshrink`` default; the
release's fixed value is not recorded in FACTS.md).

Discriminator: PatchGAN with ``n_layers=3`` (the paper's "five convolutional blocks"): conv
4×4 stride 2 in->64, LeakyReLU 0.2 (no norm); 64->128 and 128->256 stride 2 with IN and
LeakyReLU; 256->512 stride 1 with IN and LeakyReLU; 512->1 stride 1; padding 1 everywhere, no
sigmoid (the LSGAN/RaLSGAN losses read raw scores). It sees all 6 channels.

Differences from the paper text:

1. The text lists the encoder as "three convolutional blocks (3×3 conv with stride 2)". Like
   the release (and CycleGAN), the first block is a 7×7 stride-1 convolution and only the
   other two downsample; the published counts (FACTS.md) are those of this layout.
2. The text's decoder has "three convolutional blocks + ReLU"; the third is the 7×7 output
   convolution followed by Tanh, not ReLU (the release; an image in [-1, 1] needs a signed
   output).

Differences from the released code, each for a reason:

1. The released soft-shrink threshold is a fixed float that is never learned; the paper says
   *learnable*, so here the thresholds are ``nn.Parameter``s that receive gradient (through
   ``relu(x - |λ|) - relu(-x - |λ|)``), per channel as explained above.
2. The released training loader crops the local and region patches (and flips them)
   independently, so the region is not centred on its local patch; here one crop position and
   one flip serve both halves (``patches.training_pair``).
3. The released merge script swaps x and y when placing tiles; ``patches.enhance_frame`` places
   each tile at its own (row, column) and a test on a non-square frame checks it.
4. Inputs whose height or width is not a multiple of 4 are reflect-padded to one and the output
   is cropped back, so the two transposed convolutions return the input size exactly (the
   release only ever feeds 360/512 crops).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llve.data.mosaic import check_model_input
from llve.errors import InvalidInputError, UnknownNameError

DOWNSAMPLING = 4  # two stride-2 convolutions: H and W must be multiples of 4 inside the network
ENCODER_ACTIVATIONS = ("softshrink", "relu")


@dataclass
class UHRCycleGANConfig:
    in_channels: int = 6  # local RGB + resized region RGB; 3 for the plain CycleGAN baseline
    out_channels: int = 6  # the generator translates both halves (only 0–2 make the frame)
    base_width: int = 64  # stem width; the two downsamplings double it (64, 128, 256)
    residual_blocks: int = 9  # ResNet-9 (CycleGAN's choice for 256+ px crops)
    encoder_activation: str = "softshrink"  # "softshrink" (learnable, paper) or "relu" (ablation)
    shrink_init: float = 0.5  # initial soft-shrink threshold λ of every encoder channel
    discriminator_width: int = 64  # PatchGAN's first layer width (doubles, capped at 8×)
    discriminator_layers: int = 3  # PatchGAN n_layers: stride-2 layers after the first conv
    discriminator_in_channels: int = 6  # what the discriminator sees: all 6 channels

    @classmethod
    def paper(cls) -> "UHRCycleGANConfig":
        return cls()

    @classmethod
    def cyclegan(cls) -> "UHRCycleGANConfig":
        """The paper's baseline: the original 3-channel CycleGAN with ReLU everywhere."""
        return cls(in_channels=3, out_channels=3, encoder_activation="relu",
                   discriminator_in_channels=3)

    @classmethod
    def small(cls) -> "UHRCycleGANConfig":
        return cls(base_width=32, residual_blocks=6, discriminator_width=32)

    @classmethod
    def tiny(cls) -> "UHRCycleGANConfig":
        return cls(base_width=8, residual_blocks=2, discriminator_width=8)


def check_config(config: UHRCycleGANConfig) -> None:
    if config.encoder_activation not in ENCODER_ACTIVATIONS:
        raise UnknownNameError(f"encoder_activation must be one of {ENCODER_ACTIVATIONS}, "
                               f"got {config.encoder_activation!r}")
    for name in ("in_channels", "out_channels", "base_width", "discriminator_width",
                 "discriminator_in_channels", "discriminator_layers"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"UHRCycleGANConfig.{name}={value!r}: expected an integer >= 1")
    if not isinstance(config.residual_blocks, int) or config.residual_blocks < 0:
        raise InvalidInputError(f"UHRCycleGANConfig.residual_blocks={config.residual_blocks!r}: "
                                "expected an integer >= 0")
    if not config.shrink_init >= 0:
        raise InvalidInputError(f"UHRCycleGANConfig.shrink_init={config.shrink_init!r}: "
                                "expected a threshold >= 0")


# --------------------------------------------------------------------------------------
# Generator


class LearnableSoftShrink(nn.Module):
    """Soft-shrink with one learnable threshold per channel: sign(x)·max(|x| − |λ_c|, 0).

    Written as ``relu(x − |λ|) − relu(−x − |λ|)`` so that autograd gives λ its gradient
    (−sign(x) where |x| > |λ|, else 0); ``F.softshrink`` takes λ as a Python float.
    """

    def __init__(self, channels: int, init: float = 0.5):
        super().__init__()
        self.threshold = nn.Parameter(torch.full((1, channels, 1, 1), float(init)))  # 1×C×1×1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threshold = self.threshold.abs()
        return F.relu(x - threshold) - F.relu(-x - threshold)


def encoder_activation(config: UHRCycleGANConfig, channels: int) -> nn.Module:
    if config.encoder_activation == "softshrink":
        return LearnableSoftShrink(channels, config.shrink_init)
    return nn.ReLU(inplace=True)


class ConvBlock(nn.Module):
    """(reflect pad) → conv (with bias) → InstanceNorm (no affine) → activation.

    The bias is kept as in CycleGAN although the normalisation right after removes it (its
    gradient is zero): the published parameter counts include it.
    """

    def __init__(self, conv: nn.Module, channels: int, activation: nn.Module | None,
                 reflect: int = 0):
        super().__init__()
        self.pad = nn.ReflectionPad2d(reflect) if reflect else nn.Identity()
        self.conv = conv
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class ResidualBlock(nn.Module):
    """x + [reflect-pad 1, conv 3×3, IN, ReLU, reflect-pad 1, conv 3×3, IN](x); no act after."""

    def __init__(self, channels: int):
        super().__init__()
        self.first = ConvBlock(nn.Conv2d(channels, channels, 3), channels, nn.ReLU(inplace=True),
                               reflect=1)
        self.second = ConvBlock(nn.Conv2d(channels, channels, 3), channels, None, reflect=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.second(self.first(x))


class Generator(nn.Module):
    """CycleGAN ResNet generator, soft-shrink encoder: N×C_in×H×W in [-1, 1] -> N×C_out×H×W."""

    def __init__(self, config: UHRCycleGANConfig | None = None):
        super().__init__()
        config = config or UHRCycleGANConfig()
        check_config(config)
        self.config = config
        c = config.base_width
        self.encoder = nn.Sequential(
            ConvBlock(nn.Conv2d(config.in_channels, c, 7), c, encoder_activation(config, c),
                      reflect=3),
            ConvBlock(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), 2 * c,
                      encoder_activation(config, 2 * c)),
            ConvBlock(nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), 4 * c,
                      encoder_activation(config, 4 * c)),
        )
        self.blocks = nn.Sequential(*(ResidualBlock(4 * c) for _ in range(config.residual_blocks)))
        self.decoder = nn.Sequential(
            ConvBlock(nn.ConvTranspose2d(4 * c, 2 * c, 3, stride=2, padding=1, output_padding=1),
                      2 * c, nn.ReLU(inplace=True)),
            ConvBlock(nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1),
                      c, nn.ReLU(inplace=True)),
        )
        # The output layer has no normalisation: its bias is a real parameter (named ``head``).
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, config.out_channels, 7),
                                  nn.Tanh())

    def shrink_thresholds(self) -> list[nn.Parameter]:
        """The learnable soft-shrink thresholds (empty for ``encoder_activation="relu"``)."""
        return [m.threshold for m in self.modules() if isinstance(m, LearnableSoftShrink)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_model_input(x, self.head[1].bias.dtype, "UHR CycleGAN generator input")
        check_image_batch(x, self.config.in_channels, "UHR CycleGAN generator input")
        height, width = x.shape[-2:]
        # Reflect-pad to a multiple of 4 so the two transposed convolutions restore H×W exactly.
        pad_h, pad_w = -height % DOWNSAMPLING, -width % DOWNSAMPLING
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.head(self.decoder(self.blocks(self.encoder(x))))
        return y[..., :height, :width]


def check_image_batch(x: torch.Tensor, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise InvalidInputError(f"{what} must be N×{channels}×H×W, got shape {tuple(x.shape)}")


# --------------------------------------------------------------------------------------
# Discriminator


class PatchDiscriminator(nn.Module):
    """PatchGAN (n_layers=3 at paper size): N×C×H×W in [-1, 1] -> raw scores N×1×h×w.

    For 256×256 input the score map is 30×30 (each score sees a 70×70 receptive field).
    """

    def __init__(self, config: UHRCycleGANConfig | None = None):
        super().__init__()
        config = config or UHRCycleGANConfig()
        check_config(config)
        self.config = config
        width = config.discriminator_width
        self.stem = nn.Sequential(nn.Conv2d(config.discriminator_in_channels, width, 4, stride=2,
                                            padding=1),
                                  nn.LeakyReLU(0.2, inplace=True))
        layers, channels = [], width
        for index in range(1, config.discriminator_layers + 1):
            # Stride 2 for layers 1..n-1, stride 1 for the n-th; width doubles up to 8×.
            stride = 2 if index < config.discriminator_layers else 1
            out = width * min(2 ** index, 8)
            layers.append(ConvBlock(nn.Conv2d(channels, out, 4, stride=stride, padding=1), out,
                                    nn.LeakyReLU(0.2, inplace=True)))
            channels = out
        self.layers = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 1, 4, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_model_input(x, self.head.bias.dtype, "PatchGAN discriminator input")
        check_image_batch(x, self.config.discriminator_in_channels, "PatchGAN discriminator input")
        return self.head(self.layers(self.stem(x)))


def score_map_size(size: int, layers: int = 3) -> int:
    """Side of the PatchGAN score map for a ``size``-pixel side (conv 4×4, padding 1)."""
    for _ in range(layers):  # stride-2 layers: floor((s + 2 − 4) / 2) + 1
        size = (size - 2) // 2 + 1
    return size - 2  # the stride-1 IN layer and the head each remove one pixel


# --------------------------------------------------------------------------------------
# Builders (registered as "uhr_cyclegan" and "uhr_cyclegan_discriminator")


PRESETS = {"paper": UHRCycleGANConfig.paper, "cyclegan": UHRCycleGANConfig.cyclegan,
           "small": UHRCycleGANConfig.small, "tiny": UHRCycleGANConfig.tiny}


def make_config(preset: str = "paper", **overrides) -> UHRCycleGANConfig:
    """A preset (``paper``/``cyclegan``/``small``/``tiny``) with config-field overrides."""
    if preset not in PRESETS:
        raise UnknownNameError(f"unknown uhr_cyclegan preset {preset!r}: expected one of "
                               f"{sorted(PRESETS)}")
    try:
        return dataclasses.replace(PRESETS[preset](), **overrides)
    except TypeError as error:
        raise InvalidInputError(f"bad uhr_cyclegan config override: {error}") from None


def build(preset: str = "paper", **overrides) -> Generator:
    """The generator of a preset, with config-field overrides."""
    return Generator(make_config(preset, **overrides))


def build_discriminator(preset: str = "paper", **overrides) -> PatchDiscriminator:
    """The PatchGAN discriminator of a preset, with config-field overrides."""
    return PatchDiscriminator(make_config(preset, **overrides))
