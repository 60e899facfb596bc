"""Lamba & Mitra's speed claims, measured: block run-time shares (Table 5), concurrent scale
spaces (Sec. 4.5), latency against SID U-Net (Table 1).

Every function takes the image size, so the notebook's ``ci`` scale can run them in seconds on
a small input and the ``paper`` scale at 2848×4256. Protocol (DESIGN.md §7): warm-up calls,
then the median of ``repeats`` timed calls, all in one process; models compared in the same
run are timed round-robin (one call of each per round), so a load change on a shared machine
hits them alike; on CUDA every timed region is bracketed by synchronisations. Compare ratios,
not absolute times across runs. The device name and thread count are in every result.

``benchmarks/lamba_speed.py`` is the command-line version of ``compare_latency`` at full size.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import pandas as pd
import torch
from torch import nn

from llve.complexity import (
    check_timing_arguments, count_macs, count_parameters, device_name, peak_memory, synchronize,
    time_round_robin,
)
from llve.data.mosaic import pad_mosaic
from llve.errors import InvalidInputError
from llve.metrics import psnr
from llve.models.sid_unet import SidUnet, SidUnetOnMosaic
from llve.papers.lamba.inference import LambaInference
from llve.papers.lamba.network import MULTIPLE, Lamba, fold_weight_norm
from llve.papers.lamba.paper_numbers import PARALLEL_SPEEDUP, TABLE_5_SHARES

BLOCKS = ("pack / unpack / other", "LSE", "MSE", "HSE", "Fuse 1", "Fuse 2")


def speed_mosaic(height: int, width: int, batch: int = 1, seed: int = 0,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """A fixed amplified mosaic N×1×H×W with values in [0, 1): speed does not depend on content."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, height, width, generator=generator).to(device)


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------------------
# Table 5: where the time goes
# --------------------------------------------------------------------------------------


def _inference_stage_times(network: LambaInference, mosaic: torch.Tensor,
                           pattern: str = "RGGB") -> dict[str, float]:
    """One forward of the inference form, stage by stage, with the clock read between stages."""
    device = mosaic.device
    times = dict.fromkeys(BLOCKS, 0.0)
    synchronize(device)
    last = time.perf_counter()

    def mark(block: str) -> None:
        nonlocal last
        synchronize(device)
        now = time.perf_counter()
        times[block] += now - last
        last = now

    with torch.inference_mode():
        padded, crop = pad_mosaic(mosaic, pattern, multiple=MULTIPLE, to_pattern="RGGB")
        half, medium_in, high_in = network.unshuffle(padded)
        mark("pack / unpack / other")
        low = network.lse(half)
        mark("LSE")
        medium = network.mse(medium_in)
        mark("MSE")
        high = network.hse(high_in)
        mark("HSE")
        fused = network.fuse1(medium, high)  # up to its LeakyReLU + PixelShuffle(4)
        mark("Fuse 1")
        rgb = network.fuse2(low, fused)
        mark("Fuse 2")
        network.output(rgb, crop)  # clamp + PixelShuffle(2) + crop
        mark("pack / unpack / other")
    return times


def _training_stage_times(model: Lamba, mosaic: torch.Tensor,
                          pattern: str = "RGGB") -> dict[str, float]:
    """One forward of a ``Lamba`` with each block timed by forward (pre-)hooks; the rest of the
    forward (unshuffles, concatenation, final shuffle and clamp) is ``pack / unpack / other``."""
    device = mosaic.device
    names = {"lse": "LSE", "mse": "MSE", "hse": "HSE", "fuse1": "Fuse 1", "fuse2": "Fuse 2"}
    times = dict.fromkeys(BLOCKS, 0.0)
    starts: dict[str, float] = {}
    handles = []
    for attribute, block in names.items():
        module = getattr(model, attribute)

        def before(_module, _inputs, block=block):
            synchronize(device)
            starts[block] = time.perf_counter()

        def after(_module, _inputs, _output, block=block):
            synchronize(device)
            times[block] += time.perf_counter() - starts[block]

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        with torch.inference_mode():
            synchronize(device)
            start = time.perf_counter()
            model(mosaic, pattern)
            synchronize(device)
            total = time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
    times["pack / unpack / other"] = max(total - sum(times.values()), 0.0)
    return times


def block_runtime_shares(model: Lamba, height: int = 512, width: int = 512, repeats: int = 3,
                         warmup: int = 1, form: str = "inference",
                         device: str | torch.device | None = None) -> pd.DataFrame:
    """Measured share of the run time per block (the paper's Table 5) at H×W.

    ``form="inference"`` times ``LambaInference(model)`` stage by stage (LSE, MSE, HSE; Fuse 1
    up to its PixelShuffle; Fuse 2's convolution; the unshuffles of the mosaic and the final
    clamp + PixelShuffle are ``pack / unpack / other``). ``form="training"`` times ``model`` itself with
    forward hooks (pack/unpack/other = the rest of its forward). Each stage is bracketed by
    device synchronisations; shares are medians over ``repeats`` forwards divided by their sum,
    so they add up to 1; ``share_of_blocks`` leaves pack/unpack/other out, like the paper's
    table, whose five rows add up to 100 %. Columns: block, median_s, share, share_of_blocks,
    paper_cpu_share, paper_gpu_share.
    """
    check_timing_arguments(repeats, warmup)
    if form not in ("inference", "training"):
        raise InvalidInputError(f"form must be 'inference' or 'training', got {form!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    model = model.to(device).eval()
    mosaic = speed_mosaic(height, width, device=device)
    if form == "inference":
        network = LambaInference(model)
        run = lambda: _inference_stage_times(network, mosaic)  # noqa: E731
    else:
        run = lambda: _training_stage_times(model, mosaic)  # noqa: E731
    for _ in range(warmup):
        run()
    samples = [run() for _ in range(repeats)]
    medians = {block: statistics.median(s[block] for s in samples) for block in BLOCKS}
    total = sum(medians.values())
    blocks_total = sum(medians[block] for block in TABLE_5_SHARES)
    rows = []
    for block in BLOCKS:
        paper = TABLE_5_SHARES.get(block, {})
        rows.append({"block": block, "median_s": medians[block],
                     "share": medians[block] / total if total > 0 else float("nan"),
                     "share_of_blocks": (medians[block] / blocks_total
                                         if block in TABLE_5_SHARES and blocks_total > 0
                                         else float("nan")),
                     "paper_cpu_share": paper.get("cpu", float("nan")),
                     "paper_gpu_share": paper.get("gpu", float("nan"))})
    frame = pd.DataFrame(rows)
    frame.attrs.update(size=f"{height}x{width}", form=form, device=device_name(device),
                       threads=torch.get_num_threads(), repeats=repeats)
    return frame


# --------------------------------------------------------------------------------------
# Sec. 4.5: the three scale spaces at once
# --------------------------------------------------------------------------------------


def parallel_branch_speedup(model: Lamba, height: int = 512, width: int = 512, repeats: int = 3,
                            warmup: int = 1, dtype: torch.dtype = torch.float32,
                            device: str | torch.device | None = None) -> pd.DataFrame:
    """Sequential vs concurrent LSE/MSE/HSE (CUDA streams on GPU, a thread pool on CPU).

    Two rows: ``encoders`` (the three scale spaces alone, on inputs unshuffled once) and
    ``whole network``; columns sequential_s, concurrent_s (medians, timed round-robin),
    speedup = sequential / concurrent (the paper: ≈ 1.25 on its GPU, 32 -> 40 fps), and
    max_abs_difference between the two outputs (the same operations, so 0 or float rounding).
    """
    check_timing_arguments(repeats, warmup)
    device = torch.device(device) if device is not None else _model_device(model)
    model = model.to(device).eval()
    sequential = LambaInference(model, dtype=dtype, parallel=False)
    concurrent = LambaInference(model, dtype=dtype, parallel=True)
    mosaic = speed_mosaic(height, width, device=device)
    with torch.inference_mode():
        padded, _ = pad_mosaic(mosaic, "RGGB", multiple=MULTIPLE, to_pattern="RGGB")
        inputs = sequential.unshuffle(padded)

        def encoders(network: LambaInference) -> Callable[[], object]:
            def run():
                with torch.inference_mode():
                    return network.encoders(*inputs)
            return run

        encoder_times = time_round_robin(
            {"sequential": encoders(sequential), "concurrent": encoders(concurrent)},
            repeats, warmup, device)
        whole_times = time_round_robin(
            {"sequential": lambda: sequential(mosaic), "concurrent": lambda: concurrent(mosaic)},
            repeats, warmup, device)
        difference = (sequential(mosaic) - concurrent(mosaic)).abs().max().item()
    rows = []
    for part, times in (("encoders (LSE, MSE, HSE)", encoder_times), ("whole network", whole_times)):
        seq, con = statistics.median(times["sequential"]), statistics.median(times["concurrent"])
        rows.append({"part": part, "sequential_s": seq, "concurrent_s": con,
                     "speedup": seq / con, "max_abs_difference": difference})
    frame = pd.DataFrame(rows)
    frame.attrs.update(size=f"{height}x{width}", device=device_name(device),
                       threads=torch.get_num_threads(), repeats=repeats,
                       paper_speedup=PARALLEL_SPEEDUP,
                       method="CUDA streams" if device.type == "cuda" else "2-thread pool")
    return frame


# --------------------------------------------------------------------------------------
# Latency comparisons and the Table 1 speed rows
# --------------------------------------------------------------------------------------


def sid_best_form(unet: SidUnet, channels_last: bool = True) -> SidUnetOnMosaic:
    """SID U-Net at its best CPU settings: eval, no parameters needing grad, channels-last (time
    it under ``torch.inference_mode``); called on the mosaic like Lamba (it packs internally)."""
    unet = unet.eval().requires_grad_(False)
    if channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    return SidUnetOnMosaic(unet)


def released_forms(model: Lamba) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The authors' released network in its two forms, built from llve's ``Lamba`` (which is it
    layer for layer and loads its weights; no official code is run or copied). Time them under
    ``torch.inference_mode`` (``compare_latency`` does).

    * ``released``: as released, weight norm recomputed at every call (g·v/‖v‖ before each
      convolution: llve's training form with its weight-norm parametrisations), NCHW;
    * ``released_folded``: the released network with weight norm removed
      (``fold_weight_norm``), model and input channels-last: what plain PyTorch offers without
      llve's restructured ``LambaInference``.

    Both are llve's ``Lamba.forward``, which adds to the release's forward an input check (one
    pass over the mosaic) and, for sizes that are not multiples of 32 or non-RGGB patterns,
    padding (a no-op, returning the input itself, at the benchmark's sizes).
    """
    model = model.eval()
    folded = fold_weight_norm(model).eval().requires_grad_(False)
    folded = folded.to(memory_format=torch.channels_last)

    def released_folded(mosaic: torch.Tensor) -> torch.Tensor:
        return folded(mosaic.contiguous(memory_format=torch.channels_last))

    return {"released": model, "released_folded": released_folded}


def compare_latency(models: Mapping[str, Callable[[torch.Tensor], torch.Tensor]], height: int = 512,
                    width: int = 512, repeats: int = 3, warmup: int = 1,
                    device: str | torch.device = "cpu", reference: str | None = None,
                    mosaic: torch.Tensor | None = None) -> pd.DataFrame:
    """Median latency of each ``models[name](mosaic)`` on one amplified N×1×H×W mosaic, one run.

    Calls run under ``torch.inference_mode``, round-robin after warm-up (``time_round_robin``).
    Columns: model, median_s, min_s, over_reference (median / the ``reference`` model's median;
    default: the first entry), fps (1 / median). ``attrs`` name the device, threads and size.
    """
    device = torch.device(device)
    if not models:
        raise InvalidInputError("compare_latency needs at least one model")
    reference = reference or next(iter(models))
    if reference not in models:
        raise InvalidInputError(f"reference {reference!r} is not one of {list(models)}")
    if mosaic is None:
        mosaic = speed_mosaic(height, width, device=device)

    def call(model):
        def run():
            with torch.inference_mode():
                return model(mosaic)
        return run

    times = time_round_robin({name: call(model) for name, model in models.items()}, repeats,
                             warmup, device)
    medians = {name: statistics.median(values) for name, values in times.items()}
    frame = pd.DataFrame([
        {"model": name, "median_s": medians[name], "min_s": min(times[name]),
         "over_reference": medians[name] / medians[reference], "fps": 1.0 / medians[name]}
        for name in models])
    frame.attrs.update(size=f"{mosaic.shape[-2]}x{mosaic.shape[-1]}", device=device_name(device),
                       threads=torch.get_num_threads(), repeats=repeats, warmup=warmup,
                       reference=reference, all_s=times)
    return frame


def output_psnr(candidate: Callable[[torch.Tensor], torch.Tensor],
                reference: Callable[[torch.Tensor], torch.Tensor], mosaic: torch.Tensor) -> dict:
    """PSNR (dB, data range 1) and max abs difference of ``candidate``'s output against
    ``reference``'s on ``mosaic``: how a reduced-precision path's output is reported."""
    with torch.inference_mode():
        ours, theirs = candidate(mosaic).float(), reference(mosaic).float()
    return {"psnr_db": psnr(ours, theirs).mean().item(),
            "max_abs_difference": (ours - theirs).abs().max().item()}


def timed_form(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The form a model is timed in: a ``Lamba`` as ``LambaInference`` (weight norm folded,
    channels-last), a ``SidUnet`` at its best CPU settings (``sid_best_form``)."""
    if isinstance(model, Lamba):
        return LambaInference(model)
    if isinstance(model, SidUnet):
        return sid_best_form(model)
    raise InvalidInputError(f"no timed form for {type(model).__name__}: expected Lamba or SidUnet")


def efficiency_rows(models: Mapping[str, nn.Module], height: int = 2848, width: int = 4256,
                    repeats: int = 3, warmup: int = 1,
                    device: str | torch.device = "cpu") -> pd.DataFrame:
    """Table 1's efficiency cells of each model, all measured in ONE run.

    ``models`` maps a row name to a ``Lamba`` or ``SidUnet`` (trained or not: speed does not
    depend on the weights). Columns: row, parameters (of the timed form, the same for every
    row: Lamba's inference form has its weight norm folded, 783,432 for the paper config,
    784,768 with the g scalars as released), conv_gmacs (meta device,
    convolutions only), peak_memory_gb (increase during one forward: process RSS on CPU,
    allocated tensors on CUDA) and latency_s (median of ``repeats`` round-robin calls of the
    timed forms, :func:`timed_form`). This is the one latency measurement of the reproduction:
    every table and claim that quotes a run time reads it here.
    """
    if not models:
        raise InvalidInputError("efficiency_rows needs at least one model")
    device = torch.device(device)
    models = {name: model.to(device).eval() for name, model in models.items()}
    forms = {name: timed_form(model) for name, model in models.items()}
    mosaic = speed_mosaic(height, width, device=device)
    timing = compare_latency(forms, repeats=repeats, warmup=warmup, device=device, mosaic=mosaic)
    rows = []
    for name, model in models.items():
        def once(form=forms[name]):
            with torch.inference_mode():
                form(mosaic)
        memory = peak_memory(once, device)
        rows.append({"row": name, "parameters": count_parameters(forms[name]),
                     "conv_gmacs": count_macs(forms[name] if isinstance(model, SidUnet) else model,
                                              (1, 1, height, width)) / 1e9,
                     "peak_memory_gb": memory["peak_increase_bytes"] / 1e9,
                     "latency_s": timing.set_index("model").loc[name, "median_s"]})
    frame = pd.DataFrame(rows)
    frame.attrs.update(size=f"{height}x{width}", device=device_name(device),
                       device_type=device.type, threads=torch.get_num_threads(),
                       repeats=repeats, memory_method=memory["method"])
    return frame
