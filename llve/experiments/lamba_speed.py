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

from llve.complexity import count_macs, count_parameters, device_name, peak_memory
from llve.errors import InvalidInputError
from llve.experiments.lamba import TABLE_5_PAPER
from llve.metrics import psnr
from llve.models.lamba import MULTIPLE, Lamba, LambaInference, pad_mosaic
from llve.models.lamba import build as build_lamba
from llve.models.sid_unet import SidUnet, SidUnetOnMosaic
from llve.models.sid_unet import build as build_sid

# Table 5 of the paper: share of the total run time per block (its CPU and GPU, 4K Sony).
# The paper's Table 5 (transcribed once, in percent, in llve.experiments.lamba) as fractions
# keyed by the short block names used here.
PAPER_TABLE5 = {short: {"cpu": row.cpu_percent / 100, "gpu": row.gpu_percent / 100}
                for short, row in zip(("LSE", "MSE", "HSE", "Fuse 1", "Fuse 2"),
                                      TABLE_5_PAPER.itertuples(index=False))}
PAPER_PARALLEL_SPEEDUP = 40 / 32  # Sec. 4.5: 32 fps -> 40 fps on their GPU at 4K

BLOCKS = ("pack / unpack / other", "LSE", "MSE", "HSE", "Fuse 1", "Fuse 2")


def speed_mosaic(height: int, width: int, batch: int = 1, seed: int = 0,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """A fixed amplified mosaic N×1×H×W with values in [0, 1): speed does not depend on content."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, height, width, generator=generator).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_timing_args(repeats: int, warmup: int) -> None:
    if not isinstance(repeats, int) or repeats < 1:
        raise InvalidInputError(f"repeats must be a positive int, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise InvalidInputError(f"warmup must be a non-negative int, got {warmup!r}")


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def time_round_robin(functions: Mapping[str, Callable[[], object]], repeats: int = 3,
                     warmup: int = 1, device: str | torch.device = "cpu") -> dict[str, list[float]]:
    """Wall times of each function: ``warmup`` untimed calls each, then ``repeats`` rounds of one
    timed call of each (so drifting machine load affects all alike). CUDA-synchronised."""
    _check_timing_args(repeats, warmup)
    device = torch.device(device)
    for function in functions.values():
        for _ in range(warmup):
            function()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            _sync(device)
            start = time.perf_counter()
            function()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------------------
# Table 5: where the time goes
# --------------------------------------------------------------------------------------


def _inference_stage_times(network: LambaInference, mosaic: torch.Tensor,
                           pattern: str = "RGGB") -> dict[str, float]:
    """One forward of the inference form, stage by stage, with the clock read between stages."""
    device = mosaic.device
    times = dict.fromkeys(BLOCKS, 0.0)
    _sync(device)
    last = time.perf_counter()

    def mark(block: str) -> None:
        nonlocal last
        _sync(device)
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
            _sync(device)
            starts[block] = time.perf_counter()

        def after(_module, _inputs, _output, block=block):
            _sync(device)
            times[block] += time.perf_counter() - starts[block]

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        with torch.inference_mode():
            _sync(device)
            start = time.perf_counter()
            model(mosaic, pattern)
            _sync(device)
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
    _check_timing_args(repeats, warmup)
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
    blocks_total = sum(medians[block] for block in PAPER_TABLE5)
    rows = []
    for block in BLOCKS:
        paper = PAPER_TABLE5.get(block, {})
        rows.append({"block": block, "median_s": medians[block],
                     "share": medians[block] / total if total > 0 else float("nan"),
                     "share_of_blocks": (medians[block] / blocks_total
                                         if block in PAPER_TABLE5 and blocks_total > 0
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
    _check_timing_args(repeats, warmup)
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
                       paper_speedup=PAPER_PARALLEL_SPEEDUP,
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


def lamba_table1_speed_rows(height: int = 2848, width: int = 4256, repeats: int = 3,
                            warmup: int = 1, lamba: Lamba | None = None,
                            sid: SidUnet | None = None,
                            device: str | torch.device = "cpu") -> pd.DataFrame:
    """Table 1's efficiency rows for Lamba (inference form) and SID U-Net (best settings).

    Columns: model, parameters (as built: Lamba counts its weight-norm g scalars like the
    released code, 784,768 for the paper config), conv_gmacs (``llve.complexity`` on the meta
    device, convolutions only), peak_memory_gb (increase during one forward: process RSS on
    CPU, allocated tensors on CUDA), latency_s (median, round-robin in one run), and
    sid_over_lamba. Defaults build the paper configurations (random weights: speed does not
    depend on them). Small ``height``/``width`` keep the notebook's ``ci`` scale fast.
    """
    device = torch.device(device)
    lamba = (lamba if lamba is not None else build_lamba("paper")).to(device).eval()
    sid = (sid if sid is not None else build_sid("paper")).to(device).eval()
    fast_lamba = LambaInference(lamba)
    best_sid = sid_best_form(sid)
    mosaic = speed_mosaic(height, width, device=device)
    timing = compare_latency({"Lamba (inference form)": fast_lamba, "SID U-Net": best_sid},
                             repeats=repeats, warmup=warmup, device=device, mosaic=mosaic)
    rows = []
    for name, model, counted in (("Lamba (inference form)", fast_lamba, lamba),
                                 ("SID U-Net", best_sid, best_sid)):
        def once(model=model):
            with torch.inference_mode():
                model(mosaic)
        memory = peak_memory(once, device)
        rows.append({
            "model": name,
            "parameters": count_parameters(counted),
            "conv_gmacs": count_macs(counted, (1, 1, height, width)) / 1e9,
            "peak_memory_gb": memory["peak_increase_bytes"] / 1e9,
            "latency_s": timing.set_index("model").loc[name, "median_s"],
        })
    frame = pd.DataFrame(rows)
    frame["sid_over_lamba"] = frame["latency_s"].iloc[1] / frame["latency_s"].iloc[0]
    frame.attrs.update(size=f"{height}x{width}", device=device_name(device),
                       threads=torch.get_num_threads(), repeats=repeats,
                       memory_method=memory["method"])
    return frame
