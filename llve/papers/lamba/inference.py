"""Lamba's inference form: the network of ``network.py``, the same function, arranged for speed.

``LambaInference(model)`` computes what ``Lamba(model)`` computes (tested to float rounding);
see its docstring for every rearrangement and why each is faster on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llve.data.mosaic import check_model_input, check_unpacked_mosaic, crop_output, pad_mosaic
from llve.errors import InvalidInputError
from llve.papers.lamba.network import MULTIPLE, Lamba, fold_weight_norm

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
      (``llve.papers.lamba.speed.parallel_branch_speedup``).

    Call ``torch.set_num_threads`` yourself (the benchmark reports the count). On Linux,
    ``THP_MEM_ALLOC_ENABLE=1`` in the environment before torch starts lets PyTorch's CPU
    allocator use transparent huge pages, which makes the ~1 GB of fresh activations per 4K
    frame much cheaper to fault in (``benchmarks/lamba_speed.py`` sets it).
    """

    input_layout = "mosaic"  # how ``llve.papers.lamba.amplifier.amplify_and_restore`` feeds it

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
        check_unpacked_mosaic(mosaic)
        check_model_input(mosaic, torch.float32, "LambaInference input mosaic")
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

