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
   (see ``llve.amplifier``).

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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from llve.complexity import macs_by_module
from llve.data.cfa import BAYER_PATTERNS
from llve.errors import InvalidInputError, UnknownNameError

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

    input_layout = "mosaic"  # how ``llve.amplifier.amplify_and_restore`` feeds it

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
        _check_unpacked(mosaic)
        padded, crop = pad_mosaic(mosaic, pattern, multiple=MULTIPLE, to_pattern="RGGB")
        half = F.pixel_unshuffle(padded, 2)  # 4 planes in RGGB reading order: R, G1, G2, B
        low = self.lse(half)
        medium = self.mse(F.pixel_unshuffle(half, 4))
        high = self.hse(half)
        fused = self.fuse1(medium, high)
        rgb = F.pixel_shuffle(self.fuse2(torch.cat([low, fused], dim=1)), 2)
        return crop_output(rgb.clamp(0.0, 1.0), crop)


def _check_unpacked(mosaic: torch.Tensor) -> None:
    if mosaic.ndim != 4 or mosaic.shape[1] != 1:
        raise InvalidInputError(
            f"mosaic must be an unpacked Bayer mosaic N×1×H×W, got shape {tuple(mosaic.shape)}")


def check_mosaic(mosaic: torch.Tensor, pattern: str) -> None:
    """Raise ``InvalidInputError`` unless ``mosaic`` is N×C×H×W with even, nonzero H and W."""
    if mosaic.ndim != 4:
        raise InvalidInputError(f"mosaic must be N×C×H×W, got shape {tuple(mosaic.shape)}")
    if pattern not in BAYER_PATTERNS:
        raise InvalidInputError(f"pattern must be one of {BAYER_PATTERNS}, got {pattern!r}")
    height, width = mosaic.shape[-2:]
    if height == 0 or width == 0 or height % 2 or width % 2:
        raise InvalidInputError(
            f"mosaic height and width must be even and nonzero (whole 2×2 Bayer blocks), "
            f"got {height}×{width}")


def pad_mosaic(mosaic: torch.Tensor, pattern: str, multiple: int = MULTIPLE,
               to_pattern: str | None = None) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflect-pad an N×C×H×W mosaic to a multiple of ``multiple``; return it and the crop box.

    Reflect padding never changes a pixel's colour: the padded sample at distance d outside an
    edge copies the sample at distance d inside it, and those two sit 2d apart, an even step.
    With ``to_pattern`` the top/left pads are 0 or 1 so the padded mosaic starts at that Bayer
    phase (for example BGGR -> RGGB pads one row and one column). The crop box
    (top, left, height, width) cuts a full-resolution output back to the input's pixels.
    Returns the input itself (no copy) when nothing needs padding.
    """
    check_mosaic(mosaic, pattern)
    height, width = mosaic.shape[-2:]
    top = left = 0
    if to_pattern is not None:
        # One padded row (column) in front swaps the pattern's rows (columns): the new first
        # row copies the old second one. Exactly one of the four shifts reaches ``to_pattern``.
        top, left = next((rows, columns) for rows in (0, 1) for columns in (0, 1)
                         if _shifted(pattern, rows, columns) == to_pattern)
    padded = reflect_pad(mosaic, left=left, right=-(width + left) % multiple,
                         top=top, bottom=-(height + top) % multiple)
    return padded, (top, left, height, width)


def reflect_pad(x: torch.Tensor, left: int = 0, right: int = 0, top: int = 0,
                bottom: int = 0) -> torch.Tensor:
    """Reflect padding of the last two dimensions by any amount (the input itself if none).

    ``F.pad(mode="reflect")`` needs each pad smaller than the size, so tiny inputs are padded in
    steps; every step is itself a reflection, so the colour argument above still holds.
    """
    while left or right or top or bottom:
        height, width = x.shape[-2:]
        step = (min(left, width - 1), min(right, width - 1), min(top, height - 1),
                min(bottom, height - 1))
        if not any(step):  # a 1-pixel-wide side cannot reflect: repeat its edge instead
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x


def _shifted(pattern: str, rows: int, columns: int) -> str:
    """The Bayer pattern after padding (or dropping) ``rows`` rows and ``columns`` columns in front."""
    grid = [pattern[0:2], pattern[2:4]]
    if rows:
        grid = grid[::-1]
    if columns:
        grid = [row[::-1] for row in grid]
    return "".join(grid)


def crop_output(image: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
    """Cut a full-resolution N×C×H'×W' output back to the box ``pad_mosaic`` returned."""
    top, left, height, width = crop
    if image.shape[-2:] == (height, width):
        return image
    return image[..., top:top + height, left:left + width]


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
# --------------------------------------------------------------------------------------


def unshuffle_mosaic(mosaic: torch.Tensor, factor: int = 1, channels_last: bool = False,
                     dtype: torch.dtype | None = None) -> torch.Tensor:
    """``F.pixel_unshuffle(F.pixel_unshuffle(mosaic, 2), factor)`` of an N×1×H×W mosaic, one copy.

    Channel ``(2a + b)·f² + f·i + j`` at (Y, X) holds ``mosaic[2f·Y + 2i + a, 2f·X + 2j + b]``:
    Bayer plane (a, b), then the f×f neighbourhood inside that plane, exactly the training
    form's two-stage unshuffle. The result is written once, straight into the requested memory
    format and ``dtype``; the training form writes the 1/2-scale planes, unshuffles them again,
    then converts to channels-last inside each convolution (three passes over memory).
    """
    n, _, height, width = mosaic.shape
    step = 2 * factor
    rows, columns, channels = height // step, width // step, 4 * factor * factor
    shape = (n, rows, columns, channels) if channels_last else (n, channels, rows, columns)
    out = torch.empty(shape, dtype=dtype or mosaic.dtype, device=mosaic.device)
    if factor == 1 and channels_last:
        # One strided copy per Bayer plane: a single 4-D copy would run an inner loop of 2.
        for a in range(2):
            for b in range(2):
                out[..., 2 * a + b].copy_(mosaic[:, 0, a::2, b::2])
        return out.permute(0, 3, 1, 2)  # N×C×h×w with channels-last strides
    grid = mosaic.reshape(n, rows, factor, 2, columns, factor, 2)  # N Y i a X j b
    if channels_last:
        out.view(n, rows, columns, 2, 2, factor, factor).copy_(grid.permute(0, 1, 4, 3, 6, 2, 5))
        return out.permute(0, 3, 1, 2)
    out.view(n, 2, 2, factor, factor, rows, columns).copy_(grid.permute(0, 3, 6, 2, 5, 1, 4))
    return out


def _pixel_shuffle_source(x: torch.Tensor, factor: int) -> torch.Tensor:
    """N×(C·r²)×h×w viewed as N×C×h×r×w×r: what ``F.pixel_shuffle(x, r)`` reads, no copy."""
    return x.unflatten(1, (x.shape[1] // factor ** 2, factor, factor)).permute(0, 1, 4, 2, 5, 3)


def _pixel_shuffle_target(y: torch.Tensor, factor: int) -> torch.Tensor:
    """N×C×(h·r)×(w·r) viewed as N×C×h×r×w×r, the shape ``_pixel_shuffle_source`` gives."""
    return y.unflatten(2, (y.shape[2] // factor, factor)).unflatten(4, (y.shape[3] // factor, factor))


def _pixel_shuffle_last_order(channels: int, factor: int) -> torch.Tensor:
    """Channel permutation (c, i, j) -> (i, j, c): index k of the new order is old channel
    ``perm[k]``. With it a channels-last PixelShuffle copies runs of r·C contiguous values."""
    out = channels // factor ** 2
    return torch.tensor([c * factor ** 2 + i * factor + j
                         for i in range(factor) for j in range(factor) for c in range(out)])


_BRANCH_THREADS: dict[str, object] = {}  # one shared thread pool for the CPU branch tasks
_BRANCH_STREAMS: dict[torch.device, list] = {}  # three CUDA streams per device


def _branch_pool():
    from concurrent.futures import ThreadPoolExecutor

    if "pool" not in _BRANCH_THREADS:
        _BRANCH_THREADS["pool"] = ThreadPoolExecutor(max_workers=2,
                                                     thread_name_prefix="lamba-branch")
    return _BRANCH_THREADS["pool"]


def _in_inference_mode(fn, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():  # grad mode is per thread: a pool thread needs its own
        return fn(x)


class LambaInference(nn.Module):
    """The inference form of a ``Lamba``: the same function, arranged for speed.

    ``LambaInference(model)(mosaic, pattern)`` returns what ``model(mosaic, pattern)`` returns
    (float32 sRGB N×3×H×W in [0, 1]; max abs difference < 1e-5 in float32, tested),
    computed from a weight-norm-folded copy of ``model`` (``self.net``, a plain ``Lamba``
    from ``fold_weight_norm``; ``model`` itself is not changed) under
    ``torch.inference_mode``. The stages are methods
    named after the paper's blocks (``lse``, ``mse``, ``hse``, ``fuse1``, ``fuse2``, ``output``)
    so they can be timed one by one. What it does differently from the training form, all
    outside the training modules so that those stay the readable paper network:

    * ``channels_last`` (default): weights and activations in NHWC, which oneDNN convolutions
      on CPU want (the training form's NCHW tensors are converted inside every convolution).
    * The three pixel unshuffles read the mosaic directly, one copy each, already channels-last
      (``unshuffle_mosaic``); the training form unshuffles twice and converts.
    * Fuse 1's channel shuffle + grouped convolution is computed as two grouped convolutions,
      one on MSE's and one on HSE's features, with the shuffle moved into their weights
      (grouped(shuffle(cat(m, h)), W) = grouped(m, W[:, 0::2]) + grouped(h, W[:, 1::2])):
      no concatenation, no shuffled copy.
    * Fuse 1's last convolution has its output channels reordered (c, i, j) -> (i, j, c), so
      its LeakyReLU + PixelShuffle(4) is one channels-last pass over runs of 48 values.
    * Fuse 2 on [LSE, Fuse 1] is computed as conv(LSE, W[:, :12]) + conv(Fuse 1, W[:, 12:]):
      no concatenated 24-channel copy at 1/2 scale.
    * Fuse 2's output channels are reordered the same way, so its clamp + PixelShuffle(2) is
      one pass into the float32 output, which is then channels-last like the activations (a
      channels-last network's output; the values are the training form's, ``.contiguous()``
      gives NCHW memory, ``out[0].permute(1, 2, 0)`` is already an H×W×3 array's layout).
    * HSE's first convolution (1024 -> 128 channels, one output per group), which oneDNN runs
      slowly, is a depthwise convolution followed by a sum over each group's channels.
    * In-place LeakyReLU and residual additions.
    * ``dtype=torch.bfloat16`` (CPU with AVX-512 BF16/AMX, or GPU) or ``torch.float16`` (GPU):
      weights and activations in that type, output float32. Not the same function: report
      its PSNR against the float32 output beside its speed.
    * ``parallel=True``: LSE, MSE and HSE run concurrently (the paper's Sec. 4.5): on CUDA on
      three streams; on CPU as tasks in a 2-thread pool (torch ops release the GIL; the
      caller runs HSE). ``torch.jit.fork`` would not do: outside TorchScript it runs the
      task synchronously. Whether this helps depends on the device: measure
      (``llve.experiments.lamba_speed.parallel_branch_speedup``).

    Call ``torch.set_num_threads`` yourself (the benchmark reports the count). On Linux,
    ``THP_MEM_ALLOC_ENABLE=1`` in the environment before torch starts lets PyTorch's CPU
    allocator use transparent huge pages, which makes the ~1 GB of fresh activations per 4K
    frame much cheaper to fault in (``benchmarks/lamba_speed.py`` sets it).
    """

    def __init__(self, model: Lamba, channels_last: bool = True,
                 dtype: torch.dtype = torch.float32, parallel: bool = False):
        super().__init__()
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise InvalidInputError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
        net = fold_weight_norm(model).eval().requires_grad_(False).to(dtype=dtype)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(memory_format=memory_format)
        self.net = net
        self.channels_last = channels_last
        self.dtype = dtype
        self.parallel = parallel

        def weight(name: str, tensor: torch.Tensor) -> None:
            self.register_buffer(name, tensor.contiguous(memory_format=memory_format)
                                 if tensor.ndim == 4 else tensor.contiguous(), persistent=False)

        # Channel shuffle moved into the weights: even shuffled inputs are MSE's, odd are HSE's.
        grouped, expand, fuse2 = net.fuse1.grouped, net.fuse1.expand, net.fuse2
        weight("fuse1_medium_weight", grouped.weight[:, 0::2])
        weight("fuse1_high_weight", grouped.weight[:, 1::2])
        order = (_pixel_shuffle_last_order(expand.out_channels, 4) if channels_last
                 else torch.arange(expand.out_channels)).to(expand.weight.device)
        weight("fuse1_expand_weight", expand.weight[order])
        weight("fuse1_expand_bias", expand.bias[order])
        # Fuse 2's output channels reordered too, (c, i, j) -> (i, j, c), for the same reason.
        order = (_pixel_shuffle_last_order(fuse2.out_channels, 2) if channels_last
                 else torch.arange(fuse2.out_channels)).to(fuse2.weight.device)
        low_channels = net.lse.out_channels
        weight("fuse2_low_weight", fuse2.weight[order, :low_channels])
        weight("fuse2_fused_weight", fuse2.weight[order, low_channels:])
        weight("fuse2_bias", fuse2.bias[order])
        grouped = net.hse.reduce[0]  # one output per group: as a depthwise conv + group sums
        weight("hse_depthwise_weight", grouped.weight.reshape(grouped.in_channels, 1,
                                                              *grouped.kernel_size))

    def extra_repr(self) -> str:
        return f"channels_last={self.channels_last}, dtype={self.dtype}, parallel={self.parallel}"

    def forward(self, mosaic: torch.Tensor, pattern: str = "RGGB") -> torch.Tensor:
        with torch.inference_mode():
            return self.restore(mosaic, pattern)

    def restore(self, mosaic: torch.Tensor, pattern: str = "RGGB") -> torch.Tensor:
        """The forward without its ``inference_mode`` context."""
        _check_unpacked(mosaic)
        padded, crop = pad_mosaic(mosaic, pattern, multiple=MULTIPLE, to_pattern="RGGB")
        half, medium_in, high_in = self.unshuffle(padded)
        low, medium, high = self.encoders(half, medium_in, high_in)
        rgb = self.fuse2(low, self.fuse1(medium, high))
        return self.output(rgb, crop)

    def unshuffle(self, padded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The inputs of LSE (1/2 scale), MSE (1/8) and HSE (1/32) from the padded mosaic."""
        return tuple(unshuffle_mosaic(padded, factor, self.channels_last, self.dtype)
                     for factor in (1, 4, 16))

    # The three scale spaces -----------------------------------------------------------

    def lse(self, half: torch.Tensor) -> torch.Tensor:
        return self.net.lse(half)

    def mse(self, unshuffled: torch.Tensor) -> torch.Tensor:
        block = self.net.mse
        y = F.leaky_relu(block.conv1(unshuffled), block.negative_slope, inplace=True)
        return block.conv2(y).add_(unshuffled)

    def hse(self, unshuffled: torch.Tensor) -> torch.Tensor:
        encoder = self.net.hse
        grouped, dense = encoder.reduce
        if self.channels_last and unshuffled.device.type == "cpu":
            # oneDNN runs a grouped convolution with one output per group slowly on CPU (about
            # 2 GFLOP/s here); a depthwise convolution, then a sum over each group's input
            # channels, is the same sum and twice as fast.
            y = F.conv2d(unshuffled, self.hse_depthwise_weight, None, padding=grouped.padding,
                         groups=grouped.in_channels)
            y = y.permute(0, 2, 3, 1).unflatten(3, (grouped.groups, -1)).sum(-1)
            x = y.add_(grouped.bias).permute(0, 3, 1, 2)
        else:
            x = grouped(unshuffled)
        return encoder.refine(dense(x))

    def encoders(self, half: torch.Tensor, medium_in: torch.Tensor,
                 high_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(LSE, MSE, HSE) outputs, one after another or concurrently (``self.parallel``)."""
        jobs = ((self.lse, half), (self.mse, medium_in), (self.hse, high_in))
        if not self.parallel:
            return tuple(branch(x) for branch, x in jobs)
        if half.device.type == "cuda":
            return self._encoders_on_streams(jobs)
        pool = _branch_pool()
        futures = [pool.submit(_in_inference_mode, branch, x) for branch, x in jobs[:2]]
        high = jobs[2][0](jobs[2][1])
        return futures[0].result(), futures[1].result(), high

    @staticmethod
    def _encoders_on_streams(jobs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = jobs[0][1].device
        current = torch.cuda.current_stream(device)
        if device not in _BRANCH_STREAMS:
            _BRANCH_STREAMS[device] = [torch.cuda.Stream(device) for _ in jobs]
        streams = _BRANCH_STREAMS[device]
        outputs = []
        for (branch, x), stream in zip(jobs, streams):
            stream.wait_stream(current)  # the inputs were written on the current stream
            with torch.cuda.stream(stream):
                outputs.append(branch(x))
        for stream, y in zip(streams, outputs):
            current.wait_stream(stream)
            y.record_stream(current)  # keep the allocator from reusing it on the side stream
        return tuple(outputs)

    # Fusion -------------------------------------------------------------------------------

    def fuse1(self, medium: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Fuse 1: MSE and HSE features at 1/8 -> 12 channels at 1/2 (after its PixelShuffle)."""
        block = self.net.fuse1
        grouped = block.grouped
        x = F.conv2d(medium, self.fuse1_medium_weight, grouped.bias, padding=grouped.padding,
                     groups=grouped.groups)
        x = x.add_(F.conv2d(high, self.fuse1_high_weight, None, padding=grouped.padding,
                            groups=grouped.groups))
        x = F.conv2d(x, self.fuse1_expand_weight, self.fuse1_expand_bias,
                     padding=block.expand.padding)
        if not self.channels_last:
            return F.pixel_shuffle(F.leaky_relu(x, block.negative_slope, inplace=True), 4)
        # Channels (i, j, c): LeakyReLU while copying [N, Y, X, i, j·c] -> [N, Y, i, X, j·c].
        n, channels, rows, columns = x.shape
        out = torch.empty(n, rows, 4, columns, 4 * channels // 16, dtype=x.dtype, device=x.device)
        source = x.permute(0, 2, 3, 1).view(n, rows, columns, 4, 4 * channels // 16)
        if x.dtype == torch.float32:
            torch.ops.aten.leaky_relu.out(source.transpose(2, 3), block.negative_slope, out=out)
        else:  # a strided reduced-precision LeakyReLU is slow on CPU: rectify, then copy
            F.leaky_relu(x, block.negative_slope, inplace=True)
            out.copy_(source.transpose(2, 3))
        return out.view(n, 4 * rows, 4 * columns, channels // 16).permute(0, 3, 1, 2)

    def fuse2(self, low: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        """Fuse 2's convolution of [LSE, Fuse 1], as the sum of one convolution of each."""
        padding = self.net.fuse2.padding
        rgb = F.conv2d(low, self.fuse2_low_weight, self.fuse2_bias, padding=padding)
        return rgb.add_(F.conv2d(fused, self.fuse2_fused_weight, None, padding=padding))

    def output(self, rgb: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
        """12 channels at 1/2 -> clamp + PixelShuffle(2) in one pass -> cropped float32 RGB."""
        rgb = rgb.float()  # reduced precision: convert first (a strided converting copy is slow)
        n, channels, height, width = rgb.shape
        if not self.channels_last:
            out = torch.empty(n, channels // 4, 2 * height, 2 * width, device=rgb.device)
            torch.clamp(_pixel_shuffle_source(rgb, 2), 0.0, 1.0,
                        out=_pixel_shuffle_target(out, 2))
            return crop_output(out, crop)
        # Channels (i, j, c): copy [N, y, x, i, j·c] -> [N, y, i, x, j·c], a channels-last image.
        out = torch.empty(n, height, 2, width, channels // 2, device=rgb.device)
        source = rgb.permute(0, 2, 3, 1).view(n, height, width, 2, channels // 2)
        torch.clamp(source.transpose(2, 3), 0.0, 1.0, out=out)
        out = out.view(n, 2 * height, 2 * width, channels // 4).permute(0, 3, 1, 2)
        return crop_output(out, crop)


def inference_form(model: Lamba, channels_last: bool = True, dtype: torch.dtype = torch.float32,
                   parallel: bool = False) -> LambaInference:
    """``LambaInference(model, ...)``: the folded, channels-last, inference-mode network."""
    return LambaInference(model, channels_last=channels_last, dtype=dtype, parallel=parallel)


def scale_space_costs(config: LambaConfig, height: int, width: int) -> dict[str, int]:
    """Convolution MACs of each block (LSE, MSE, HSE, Fuse 1, Fuse 2) for an H×W mosaic.

    Counted by ``llve.complexity.macs_by_module`` on the meta device (no memory). The notebook
    sets these beside the paper's Eq. 1–2 to show why deep processing is cheap at 1/32.
    """
    with torch.device("meta"):
        model = Lamba(config)
    macs = macs_by_module(model, (1, 1, height, width))
    return {"LSE": macs["lse"], "MSE": macs["mse"], "HSE": macs["hse"], "Fuse 1": macs["fuse1"],
            "Fuse 2": macs["fuse2"]}


def equation_1_operations(height: int, width: int, downsampling: int, kernel: int,
                          in_channels: int, out_channels: int, layers: int = 1) -> int:
    """Paper Eq. 1: (H/r)(W/r)·k²·C_in·C_out·n, the cost of n same-size convolutions at scale 1/r."""
    pixels = (height // downsampling) * (width // downsampling)
    return pixels * kernel ** 2 * in_channels * out_channels * layers


def equation_2_operations(height: int, width: int, blocks: int = 3, dense_convs: int = 5,
                          growth: int = 32, channels: int = 64, kernel: int = 3,
                          downsampling: int = 32) -> int:
    """Paper Eq. 2: HSE cost with ``blocks`` RDB* of η=``dense_convs`` each, plus the grouped conv.

    The paper's estimate, not the released network: it assumes η=5 in every block and leaves
    out the 128→64 conv, the 192→64 fusion and the 1/8-scale conv (see ``scale_space_costs``).
    """
    dense = blocks * kernel ** 2 * growth * sum(channels + j * growth for j in range(dense_convs))
    fusion = blocks * (channels + dense_convs * growth) * channels
    grouped = kernel ** 2 * downsampling ** 2
    return (height // downsampling) * (width // downsampling) * (dense + fusion + grouped)


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
