"""Lamba & Mitra's real-time extremely-dark-image restoration network (LSE/MSE/HSE, RDB*, Fuse).

Paper: Mohit Lamba and Kaushik Mitra, "Restoring Extremely Dark Images in Real Time", CVPR 2021.
Official code: https://github.com/MohitLamba94/Restoring-Extremely-Dark-Images-In-Real-Time
(``train_test_ours/network.py``; our layer list was read from it and our counts match it).

The network reads the *unpacked* Bayer mosaic (N×1×H×W, black-subtracted, white-normalised,
multiplied by the amplification and NOT clipped) and returns sRGB N×3×H×W in [0, 1]. It works
at three scale spaces that all read the input directly, so they could run in parallel:

- LSE, the Lower Scale Encoder, at 1/2 resolution: one 5×5 convolution on the packed mosaic.
- MSE, the Medium Scale Encoder, at 1/8 resolution: one residual block.
- HSE, the Higher Scale Encoder, at 1/32 resolution: three RDB* (modified Residual Dense
  Blocks) where most of the layers live, because a layer there costs 1/256 of one at 1/2.
- Fuse 1 mixes MSE and HSE at 1/8; Fuse 2 mixes that with LSE at 1/2 and produces RGB.

Differences from the paper text (we follow the released code, which produced the paper's
numbers: 784,768 parameters with weight norm, 59.6 G conv MACs at 4256×2848; see FACTS.md):

1. LSE and Fuse 2 use 5×5 kernels; the text says 7×7 for LSE (Fuse 2's kernel is not stated).
   5×5 is what reproduces the published parameter and MAC counts. ``lse_kernel`` and
   ``fuse2_kernel`` let a notebook try 7.
2. RDB1 has 4 dense convolutions, RDB2 and RDB3 have 5; the text says η = 5 for every RDB*.
3. Channel shuffle happens only in Fuse 1 (MSE and HSE features interleaved before its grouped
   convolution). The text also shuffles the HSE's 1024 channels before its grouped 1024→128
   convolution so that "each group sees each Bayer colour in equal proportion". The code has
   no such shuffle: it unshuffles the 1/2-scale planes by 16 (two-stage unshuffle, a fixed
   permutation of a direct unshuffle by 32), so each group of 8 input channels holds 8
   neighbouring samples (one row of a 16×16 block) of ONE colour plane. We keep the code's wiring (counts are equal either
   way, but the trained behaviour is the code's).
4. RDB* activation placement, as released: the first dense convolution reads its input
   unrectified, the middle ones apply LeakyReLU to their (concatenated) input, and the last one
   is linear (the code builds it with a LeakyReLU of slope 1). Every convolution's raw output
   is what gets concatenated, so the final 1×1 sees non-rectified features, as the paper says.
5. Loss as released is L1 + 0.2·(1 − MS-SSIM); the text says weights 0.8 and 0.2. (Training
   lives in ``llve.train``; recorded here because it changes what a reproduction optimises.)
6. Amplifier scale: the released estimator multiplies by m/10, not by m as printed in Eq. 5
   (see ``llve.papers.lamba.amplifier``).

Differences from the released code, each for a reason:

1. Sizes that are not multiples of 32 are reflect-padded (CFA phase kept) and the output is
   cropped back; the code instead cropped the input to a multiple of 32, losing border pixels.
   Mosaics whose pattern is not RGGB are shifted to the RGGB phase by padding one row and/or
   column (reflect padding keeps every pixel's colour; see ``pad_mosaic``), because the network
   was trained on Sony RGGB and its pixel-unshuffle order bakes that phase in. Odd sizes are
   rejected: a Bayer mosaic is made of whole 2×2 blocks.
2. Inference form: ``fold_weight_norm`` materialises the weights once, which is what the paper
   means by testing "with no weight normalization"; the released demo keeps the weight-norm
   hooks and recomputes g·v/‖v‖ at every call (FACTS.md: 4.1 s -> 1.6 s at 4K on 2 cores).
   ``LambaInference`` goes further (channels-last, single-pass unshuffles and shuffles, no
   concatenation copies, optional bf16 and concurrent scale spaces): the same function to
   float rounding, arranged for speed; the training modules stay the readable network.
3. Augmentation (the data pipeline's job, recorded here): the code flips the unpacked mosaic,
   which changes the CFA phase of a training crop (a flipped RGGB crop is GRBG/GBRG/BGGR but is
   still unshuffled as RGGB); flip in packed space, or shift the crop by one pixel, instead.
4. ``rdb="canonical"`` adds the ablation's original RDB (LeakyReLU after every dense
   convolution) with the same widths, which the code does not ship.
5. ``torch.nn.utils.parametrizations.weight_norm`` replaces the deprecated
   ``torch.nn.utils.weight_norm`` (same g/v parametrisation, dim 0).
"""


from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from llve.data.mosaic import check_model_input, check_unpacked_mosaic, crop_output, pad_mosaic
from llve.errors import CheckpointError, InvalidInputError, UnknownNameError
from llve.train import is_llve_checkpoint, load_model_weights, load_torch_file

MULTIPLE = 32  # the HSE works at 1/32 resolution, so the mosaic must tile into 32×32 blocks
MSE_CHANNELS = 64  # 4 packed planes × 4×4 unshuffle: fixed by the scale, not a free width


@dataclass
class LambaConfig:
    lse_kernel: int = 5  # the paper text says 7; the released code (and the paper's counts) use 5
    fuse2_kernel: int = 5
    hse_grouped_channels: int = 128  # 1024 -> this many channels, one output per group
    hse_channels: int = 64  # width inside the RDB* chain
    growth: int = 32  # channels each dense convolution adds
    dense_convs: tuple[int, ...] = (4, 5, 5)  # dense convolutions in RDB1, RDB2, RDB3
    fuse_channels: int = 32  # Fuse 1's grouped convolution output
    fuse_groups: int = 4
    negative_slope: float = 0.2  # LeakyReLU slope, as in SID
    rdb: str = "star"  # "star": the paper's RDB*; "canonical": RDB with LeakyReLU after every conv

    @classmethod
    def paper(cls) -> "LambaConfig":
        return cls()

    @classmethod
    def small(cls) -> "LambaConfig":
        return cls(hse_grouped_channels=64, hse_channels=32, growth=16, fuse_channels=16)

    @classmethod
    def tiny(cls) -> "LambaConfig":
        return cls(hse_grouped_channels=32, hse_channels=16, growth=8, dense_convs=(3, 3, 3),
                   fuse_channels=8)


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, groups: int = 1,
         bias: bool = True, init_slope: float = 0.2) -> nn.Module:
    """A same-padded convolution with kaiming-normal init, then weight norm (dim 0).

    ``init_slope`` is the LeakyReLU slope the init assumes: 0.2 where a LeakyReLU touches the
    layer, 1.0 (gain 1) for linear layers, as in the released code. Weight norm starts with
    g = ‖v‖, so the initial function is exactly the kaiming-initialised one.
    """
    layer = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                      groups=groups, bias=bias)
    nn.init.kaiming_normal_(layer.weight, a=init_slope, mode="fan_in", nonlinearity="leaky_relu")
    return weight_norm(layer, name="weight", dim=0)


class DenseConv(nn.Module):
    """One dense layer: a 3×3 convolution whose output is concatenated to its input."""

    def __init__(self, in_channels: int, growth: int, rectify_input: bool = False,
                 rectify_output: bool = False, negative_slope: float = 0.2, init_slope: float = 0.2):
        super().__init__()
        self.rectify_input = rectify_input
        self.rectify_output = rectify_output
        self.negative_slope = negative_slope
        self.conv = conv(in_channels, growth, bias=False, init_slope=init_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(x, self.negative_slope) if self.rectify_input else x
        y = self.conv(y)
        if self.rectify_output:
            y = F.leaky_relu(y, self.negative_slope)
        return torch.cat([x, y], dim=1)


class ResidualDenseBlock(nn.Module):
    """RDB* (``star=True``) or the canonical RDB: dense convolutions, 1×1 fusion, + input.

    RDB* as released: the first dense convolution sees its input unrectified, the middle ones
    rectify their input, the last is linear; the concatenation keeps every raw output, so the
    1×1 fusion sees rectified and non-rectified information. The canonical RDB rectifies every
    dense output, so the 1×1 sees only rectified dense features. Same parameters either way.
    """

    def __init__(self, channels: int = 64, dense_convs: int = 5, growth: int = 32, star: bool = True,
                 negative_slope: float = 0.2):
        super().__init__()
        if dense_convs < 2:
            raise InvalidInputError(f"an RDB needs at least 2 dense convolutions, got {dense_convs}")
        layers = []
        for index in range(dense_convs):
            middle = 0 < index < dense_convs - 1
            last = index == dense_convs - 1
            layers.append(DenseConv(channels + index * growth, growth,
                                    rectify_input=star and middle, rectify_output=not star,
                                    negative_slope=negative_slope,
                                    init_slope=1.0 if star and last else negative_slope))
        self.dense = nn.Sequential(*layers)
        self.fusion = conv(channels + dense_convs * growth, channels, kernel_size=1, bias=False,
                           init_slope=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fusion(self.dense(x)) + x


class ResidualBlock(nn.Module):
    """conv3×3 → LeakyReLU → conv3×3, plus the input (the whole MSE)."""

    def __init__(self, channels: int = 64, negative_slope: float = 0.2):
        super().__init__()
        self.conv1 = conv(channels, channels, init_slope=negative_slope)
        self.conv2 = conv(channels, channels, init_slope=1.0)
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.leaky_relu(self.conv1(x), self.negative_slope)) + x


class HigherScaleEncoder(nn.Module):
    """HSE: 1/32-scale features from 1024 unshuffled channels, three RDB*, back to 1/8 scale."""

    def __init__(self, config: LambaConfig):
        super().__init__()
        c = config
        planes = 4 * 16 * 16  # the 4 packed 1/2-scale planes unshuffled by 16 -> 1/32 scale
        self.reduce = nn.Sequential(
            conv(planes, c.hse_grouped_channels, groups=c.hse_grouped_channels, init_slope=1.0),
            conv(c.hse_grouped_channels, c.hse_channels, init_slope=1.0),
        )
        self.blocks = nn.ModuleList(
            ResidualDenseBlock(c.hse_channels, n, c.growth, star=c.rdb == "star",
                               negative_slope=c.negative_slope)
            for n in c.dense_convs
        )
        self.fusion = conv(len(c.dense_convs) * c.hse_channels, c.hse_channels, kernel_size=1,
                           bias=False, init_slope=1.0)
        # PixelShuffle 4 takes the 1/32 features to 1/8; a conv restores MSE's width there.
        self.upsample = nn.PixelShuffle(4)
        self.expand = conv(c.hse_channels // 16, MSE_CHANNELS, init_slope=1.0)

    def forward(self, half: torch.Tensor) -> torch.Tensor:
        return self.encode(F.pixel_unshuffle(half, 16))

    def encode(self, unshuffled: torch.Tensor) -> torch.Tensor:
        """The HSE after its pixel unshuffle: 1024 channels at 1/32 -> 64 channels at 1/8."""
        return self.refine(self.reduce(unshuffled))

    def refine(self, x: torch.Tensor) -> torch.Tensor:
        """The RDB* chain with its global residual, then PixelShuffle + conv up to 1/8 scale."""
        outputs, y = [], x
        for block in self.blocks:
            y = block(y)
            outputs.append(y)
        y = self.fusion(torch.cat(outputs, dim=1)) + x  # global residual over the RDB* chain
        return self.expand(self.upsample(y))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: with 2 groups [a0, a1, ..., b0, b1, ...] -> [a0, b0, a1, b1, ...]."""
    return x.unflatten(1, (groups, x.shape[1] // groups)).transpose(1, 2).flatten(1, 2)


class FuseBlock1(nn.Module):
    """Fuse 1: interleave MSE and HSE channels, grouped conv, conv + LeakyReLU, up to 1/2 scale."""

    def __init__(self, config: LambaConfig):
        super().__init__()
        c = config
        self.grouped = conv(2 * MSE_CHANNELS, c.fuse_channels, groups=c.fuse_groups, init_slope=1.0)
        self.expand = conv(c.fuse_channels, 12 * 16, init_slope=c.negative_slope)  # 12 ch after ×4 up
        self.upsample = nn.PixelShuffle(4)
        self.negative_slope = c.negative_slope

    def forward(self, medium: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        # Interleave so that every group of the grouped convolution sees both scale spaces.
        x = channel_shuffle(torch.cat([medium, high], dim=1), groups=2)
        x = F.leaky_relu(self.expand(self.grouped(x)), self.negative_slope)
        return self.upsample(x)


class Lamba(nn.Module):
    """The full network: unpacked mosaic N×1×H×W (amplified) -> sRGB N×3×H×W in [0, 1].

    ``forward(mosaic, pattern)`` accepts any even size and any Bayer ``pattern``: the mosaic is
    reflect-padded to the RGGB phase the network was trained on (Sony) and to a multiple of
    32, and the output is cropped back to the input's pixels (see ``pad_mosaic``).
    """

    input_layout = "mosaic"  # how ``llve.papers.lamba.amplifier.amplify_and_restore`` feeds it

    def __init__(self, config: LambaConfig | None = None):
        super().__init__()
        config = config or LambaConfig()
        if config.rdb not in ("star", "canonical"):
            raise UnknownNameError(f"rdb must be 'star' or 'canonical', got {config.rdb!r}")
        if config.hse_channels % 16:
            raise InvalidInputError(
                f"hse_channels must be a multiple of 16 (PixelShuffle 4), got {config.hse_channels}")
        self.config = config
        self.lse = conv(4, 12, kernel_size=config.lse_kernel, init_slope=1.0)
        self.mse = ResidualBlock(MSE_CHANNELS, config.negative_slope)
        self.hse = HigherScaleEncoder(config)
        self.fuse1 = FuseBlock1(config)
        self.fuse2 = conv(24, 12, kernel_size=config.fuse2_kernel, init_slope=1.0)

    def forward(self, mosaic: torch.Tensor, pattern: str = "RGGB") -> torch.Tensor:
        check_unpacked_mosaic(mosaic)
        check_model_input(mosaic, self.fuse2.bias.dtype, "Lamba input mosaic")
        padded, crop = pad_mosaic(mosaic, pattern, multiple=MULTIPLE, to_pattern="RGGB")
        half = F.pixel_unshuffle(padded, 2)  # 4 planes in RGGB reading order: R, G1, G2, B
        low = self.lse(half)
        medium = self.mse(F.pixel_unshuffle(half, 4))
        high = self.hse(half)
        fused = self.fuse1(medium, high)
        rgb = F.pixel_shuffle(self.fuse2(torch.cat([low, fused], dim=1)), 2)
        return crop_output(rgb.clamp(0.0, 1.0), crop)




def fold_weight_norm(model: Lamba) -> Lamba:
    """A new ``Lamba`` with weight norm folded into plain weights: the inference form.

    Same function (to float rounding), but g·v/‖v‖ is no longer recomputed at every call. The
    result has ordinary ``weight`` parameters, so ``.to(memory_format=torch.channels_last)``
    and ``torch.compile`` see a plain convolution network. It is built fresh rather than
    deep-copied: a deep copy shares each parametrised layer's generated class with the original,
    and removing the parametrisation from the copy would break the original.
    """
    plain_state = model.state_dict()
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            prefix = f"{name}.parametrizations.weight."
            del plain_state[prefix + "original0"], plain_state[prefix + "original1"]
            plain_state[f"{name}.weight"] = module.weight.detach()
    reference = next(model.parameters())
    folded = Lamba(model.config).to(device=reference.device, dtype=reference.dtype)
    for module in folded.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    folded.load_state_dict(plain_state)
    return folded.train(model.training)


# --------------------------------------------------------------------------------------
# Inference form: the same function, arranged for speed


PRESETS = {"paper": LambaConfig.paper, "small": LambaConfig.small, "tiny": LambaConfig.tiny}


def build(preset: str = "paper", **overrides) -> Lamba:
    """``Lamba`` from a preset name (``paper``/``small``/``tiny``) and config-field overrides."""
    if preset not in PRESETS:
        raise UnknownNameError(f"unknown lamba preset {preset!r}: expected one of {sorted(PRESETS)}")
    config = PRESETS[preset]()
    try:
        config = dataclasses.replace(config, **overrides)
    except TypeError as error:
        raise InvalidInputError(f"bad lamba config override: {error}") from None
    return Lamba(config)


# --------------------------------------------------------------------------------------
# The official release's checkpoint (``demo_imgs/weights``: ``{'model': state_dict}``)
# --------------------------------------------------------------------------------------

# Official module prefix -> ours. The release names layers by scale (``conv2x`` is LSE at 1/2,
# ``resblock8x`` the MSE at 1/8, ``conv32x``/``RDB*``/``rdball``/``conv_rdb8x`` the HSE,
# ``conv32_8_cat`` Fuse 1, ``conv_2_8_32`` Fuse 2). Its dense layers are Sequential(LeakyReLU,
# conv) except the first (conv only), hence ``conv.0`` / ``conv.1``.
OFFICIAL_PREFIXES = (
    (r"conv2x\.0", "lse"),
    (r"resblock8x\.conv([12])\.0", r"mse.conv\1"),
    (r"conv32x\.([01])\.0", r"hse.reduce.\1"),
    (r"RDB1\.dense_layers\.(\d)\.conv\.[01]", r"hse.blocks.0.dense.\1.conv"),
    (r"RDB2\.dense_layers\.(\d)\.conv\.[01]", r"hse.blocks.1.dense.\1.conv"),
    (r"RDB3\.dense_layers\.(\d)\.conv\.[01]", r"hse.blocks.2.dense.\1.conv"),
    (r"RDB([123])\.conv_1x1\.0", None),  # block index shifts by one: see official_key
    (r"rdball\.0", "hse.fusion"),
    (r"conv_rdb8x\.0", "hse.expand"),
    (r"conv32_8_cat\.0\.0", "fuse1.grouped"),
    (r"conv32_8_cat\.1\.0", "fuse1.expand"),
    (r"conv_2_8_32\.0", "fuse2"),
)
OFFICIAL_SUFFIXES = {"weight_g": "parametrizations.weight.original0",
                     "weight_v": "parametrizations.weight.original1", "bias": "bias"}


def official_key(key: str) -> str | None:
    """Our state-dict key for a key of the official checkpoint, None for an unknown one."""
    prefix, _, suffix = key.rpartition(".")
    if suffix not in OFFICIAL_SUFFIXES:
        return None
    for pattern, replacement in OFFICIAL_PREFIXES:
        match = re.fullmatch(pattern, prefix)
        if match is None:
            continue
        ours = (f"hse.blocks.{int(match.group(1)) - 1}.fusion" if replacement is None
                else match.expand(replacement))
        return f"{ours}.{OFFICIAL_SUFFIXES[suffix]}"
    return None


def is_official_state(state: object) -> bool:
    """Whether ``state`` looks like the release's state dict (weight-norm ``weight_g`` keys)."""
    return isinstance(state, Mapping) and any(str(key).endswith(".weight_g") for key in state)


def from_official_state(state: Mapping[str, torch.Tensor], source: str = "state dict"
                        ) -> dict[str, torch.Tensor]:
    """The official state dict under our key names, every tensor one-to-one (no copies).

    Raises ``CheckpointError`` naming the keys it cannot map.
    """
    mapped, unknown = {}, []
    for key, tensor in state.items():
        ours = official_key(key)
        if ours is None:
            unknown.append(key)
        else:
            mapped[ours] = tensor
    if unknown:
        raise CheckpointError(f"{source}: {len(unknown)} key(s) of no Lamba layer: "
                              f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    return mapped


def load_weights(model: Lamba, path: str | os.PathLike) -> Lamba:
    """Load ``path`` into ``model`` (``strict=True``): the official release's checkpoint
    (``{'model': state_dict}`` with ``weight_g``/``weight_v``, also the legacy CUDA-saved file,
    read with ``map_location="cpu"``) or an llve training checkpoint.

    A file of another network or configuration raises ``CheckpointError`` naming the missing,
    unexpected or wrongly shaped keys. Returns ``model``.
    """
    payload = load_torch_file(path)
    if is_llve_checkpoint(payload):
        load_model_weights(model, path)
        return model
    state = payload.get("model") if isinstance(payload, Mapping) and "model" in payload else payload
    if not is_official_state(state):
        raise CheckpointError(f"{path}: neither an llve checkpoint nor Lamba's official release "
                              "format ({'model': state dict with weight_g/weight_v keys})")
    try:
        model.load_state_dict(from_official_state(state, str(path)), strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: does not match this Lamba configuration "
                              f"({model.config}): {error}") from error
    return model
