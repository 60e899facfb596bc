"""Lamba's inference path against the released network's own two forms and SID U-Net, one run.

    python benchmarks/lamba_speed.py                       # CPU, 2848×4256 and 512×512
    python benchmarks/lamba_speed.py --sizes 64x64 --repeats 1
    python benchmarks/lamba_speed.py --device cuda         # on a GPU: fps at 4K, SID/Lamba there
    python benchmarks/lamba_speed.py --compile             # also time torch.compile (slow start)
    python benchmarks/lamba_speed.py --random-weights      # skip loading the released weights

For each size it times, round-robin in one process after one warm-up call each (median of
``--repeats``; ``llve.papers.lamba.speed.compare_latency``):

* ``lamba``: llve's ``LambaInference`` (weight norm folded, channels-last, single-pass
  shuffles, inference mode), float32: "llve fp32", the reference of every ratio;
* ``released``: the authors' released network as released: weight norm recomputed at every
  call, NCHW (llve's training-form ``Lamba``, layer for layer the released one; no official code
  is run or copied; ``llve.papers.lamba.speed.released_forms``);
* ``released_folded``: the released network with weight norm removed (``fold_weight_norm``),
  model and input channels-last: plain PyTorch's best without llve's restructuring;
* ``sid_unet``: SID U-Net at its best settings (eval, inference mode, channels-last; nothing
  to fold), called on the same mosaic (it packs internally);
* ``lamba_parallel``: ``LambaInference(parallel=True)`` (LSE/MSE/HSE concurrently);
* ``lamba_bf16`` (CPU with native bf16, or GPU) and ``lamba_fp16`` (GPU): reduced precision,
  each with its output's PSNR against the float32 output; on GPU ``lamba_tf32`` too (float32
  rows run with TF32 off).

Weights do not change speed, but they make the forms' output differences meaningful: Lamba's
released weights are loaded from ``--weights`` (default: ``../shared/official/lamba/weights.pth``
where it exists, else random weights, seed 0; ``--random-weights`` forces random ones). SID's
are random. The input is a fixed random mosaic in [0, 1). It prints a table per size, a ratio table
(released / llve fp32, released folded / llve fp32, SID / llve fp32, all from the same
round-robin run) and the max abs output difference of each released form against llve's, then
ONE final line of JSON: the first size's figures at the top level (``lamba_s``, ``released_s``,
``released_folded_s``, ``sid_unet_s``, ``released_over_llve``, ``released_folded_over_llve``,
``sid_over_lamba``, ...), every size under ``results``. No figure is asserted: compare ratios
within one run.

``THP_MEM_ALLOC_ENABLE=1`` is set before torch starts (``--no-thp`` leaves it unset): PyTorch's
CPU allocator then asks for transparent huge pages, which makes faulting in the fresh
activations of a 4K frame much cheaper (all models get it alike).
"""

from __future__ import annotations

import os
import sys

if "--no-thp" not in sys.argv:
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # read once, at torch's first allocation

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from llve.complexity import device_name  # noqa: E402
from llve.data import SHARED_DATA  # noqa: E402
from llve.models import build as build_model  # noqa: E402
from llve.papers.lamba.speed import (  # noqa: E402
    compare_latency, output_psnr, released_forms, sid_best_form, speed_mosaic,
)
from llve.papers.lamba.inference import LambaInference  # noqa: E402
from llve.models.sid_unet import build as build_sid  # noqa: E402

RELEASED_WEIGHTS = SHARED_DATA.parent / "official" / "lamba" / "weights.pth"
"""The authors' released checkpoint beside the checkout (see its PROVENANCE.md), if present."""


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH, got {text!r}") from None
    return height, width


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@contextmanager
def tf32(enabled: bool):
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


def with_tf32(model):
    def run(mosaic):
        with tf32(True):
            return model(mosaic)
    return run


def measure_size(height: int, width: int, args, device: torch.device) -> dict:
    torch.manual_seed(0)
    lamba = build_model("lamba", "paper", weights=args.weights).to(device).eval()
    sid = sid_best_form(build_sid("paper").to(device))
    fast = LambaInference(lamba)
    released = released_forms(lamba)
    models = {
        "lamba": fast,
        "released": released["released"],
        "released_folded": released["released_folded"],
        "sid_unet": sid,
        "lamba_parallel": LambaInference(lamba, parallel=True),
    }
    reduced = {}
    if not args.no_reduced and bf16_supported(device):
        reduced["lamba_bf16"] = LambaInference(lamba, dtype=torch.bfloat16)
    if not args.no_reduced and device.type == "cuda":
        reduced["lamba_fp16"] = LambaInference(lamba, dtype=torch.float16)
        reduced["lamba_tf32"] = with_tf32(fast)
    models.update(reduced)
    mosaic = speed_mosaic(height, width, device=device)
    if args.compile:  # compiled first (slow), then timed round-robin with the others
        compiled, compile_info = compile_network(fast, mosaic, args, device)
        models["lamba_compiled"] = compiled
    table = compare_latency(models, repeats=args.repeats, warmup=args.warmup, device=device,
                            reference="lamba", mosaic=mosaic)
    medians = dict(zip(table["model"], table["median_s"]))
    result = {f"{name}_s": medians[name] for name in models}
    result["released_over_llve"] = medians["released"] / medians["lamba"]
    result["released_folded_over_llve"] = medians["released_folded"] / medians["lamba"]
    result["sid_over_lamba"] = medians["sid_unet"] / medians["lamba"]
    result["parallel_speedup"] = medians["lamba"] / medians["lamba_parallel"]
    result["lamba_fps"] = 1.0 / medians["lamba"]
    for name in released:
        equivalence = output_psnr(released[name], fast, mosaic)
        result[f"max_abs_difference_{name}_vs_llve"] = equivalence["max_abs_difference"]
    for name, model in reduced.items():
        precision = name.removeprefix("lamba_")
        quality = output_psnr(model, fast, mosaic)
        result[f"{precision}_psnr_vs_fp32_db"] = quality["psnr_db"]
        result[f"{precision}_max_abs_difference"] = quality["max_abs_difference"]
        result[f"sid_over_lamba_{precision}"] = medians["sid_unet"] / medians[name]
    if args.compile:
        result.update(compile_info, compile_s=medians["lamba_compiled"],
                      compile_speedup=medians["lamba"] / medians["lamba_compiled"])

    print(f"\n{height}×{width} on {device_name(device)}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} after {args.warmup} warm-up, round-robin")
    print(f"{'model':<20}{'median s':>10}{'min s':>10}{'× lamba':>10}{'fps':>9}")
    for row in table.itertuples():
        print(f"{row.model:<20}{row.median_s:>10.3f}{row.min_s:>10.3f}"
              f"{row.over_reference:>10.2f}{row.fps:>9.2f}")
    if args.compile:
        print(f"torch.compile{' (freezing)' if args.freezing else ''} of the folded network: "
              f"first call (compilation) {result['compile_time_s']:.1f} s, then "
              f"{result['compile_s']:.3f} s, {result['compile_speedup']:.2f}× our eager path")
    weights = f"weights {args.weights.name}" if args.weights else "random weights"
    print(f"ratios of medians from this run ({weights}; > 1: slower than llve fp32)")
    for label, key, difference in (
            ("released (weight norm every call, NCHW) / llve fp32", "released_over_llve",
             "max_abs_difference_released_vs_llve"),
            ("released, weight norm removed + channels-last / llve fp32",
             "released_folded_over_llve", "max_abs_difference_released_folded_vs_llve"),
            ("SID U-Net / llve fp32", "sid_over_lamba", None)):
        same = f"   output max abs difference {result[difference]:.2e}" if difference else ""
        print(f"  {label:<60}{result[key]:>8.2f}×{same}")
    print(f"concurrent branches: {result['parallel_speedup']:.2f}× speed-up")
    for name in reduced:
        precision = name.removeprefix("lamba_")
        print(f"{precision}: {medians[name]:.3f} s, output PSNR vs float32 "
              f"{result[f'{precision}_psnr_vs_fp32_db']:.2f} dB (max abs difference "
              f"{result[f'{precision}_max_abs_difference']:.3g}); SID / Lamba-{precision} "
              f"{result[f'sid_over_lamba_{precision}']:.1f}×")
    return result


def compile_network(fast: LambaInference, mosaic: torch.Tensor, args, device):
    """torch.compile (inductor, default mode; ``--freezing`` sets inductor's freezing, which
    lets it pre-pack convolution weights) of the folded channels-last network ``fast.net``:
    the plain module, so inductor does its own fusion of the shuffles and element-wise ops
    (it cannot trace our hand-written ``out=`` views). Returns the callable and the time of
    its first call (the compilation) with its difference from our eager path."""
    if args.freezing:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
    compiled = torch.compile(fast.net)
    start = time.perf_counter()
    with torch.inference_mode():
        first = compiled(mosaic)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        compile_time = time.perf_counter() - start
        difference = (first - fast(mosaic)).abs().max().item()
    return compiled, {"compile_time_s": compile_time, "compile_max_abs_difference": difference,
                      "compile_freezing": args.freezing}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--sizes", type=lambda text: [parse_size(s) for s in text.split(",")],
                        default=[(2848, 4256), (512, 512)],
                        help="comma-separated HEIGHTxWIDTH list (default 2848x4256,512x512)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--freezing", action="store_true",
                        help="with --compile: inductor freezing (weights as constants)")
    parser.add_argument("--no-reduced", action="store_true", help="skip bf16/fp16/tf32 rows")
    parser.add_argument("--weights", type=Path,
                        default=RELEASED_WEIGHTS if RELEASED_WEIGHTS.exists() else None,
                        help="Lamba checkpoint: the release's or an llve one (default: "
                             f"{RELEASED_WEIGHTS} where it exists, else random weights)")
    parser.add_argument("--random-weights", action="store_true",
                        help="random Lamba weights even where the released ones exist")
    parser.add_argument("--no-thp", action="store_true",
                        help="leave THP_MEM_ALLOC_ENABLE unset (see the module docstring)")
    args = parser.parse_args(argv)
    if args.random_weights:
        args.weights = None
    elif args.weights is not None and not args.weights.is_file():
        parser.error(f"--weights {args.weights}: no such file")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda but no CUDA GPU is visible")
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False  # float32 rows are float32; TF32 has its own row

    results = {}
    for height, width in args.sizes:
        results[f"{height}x{width}"] = measure_size(height, width, args, device)
    first = next(iter(results))
    summary = {"size": first, **results[first], "device": device_name(device),
               "device_type": device.type, "threads": torch.get_num_threads(),
               "repeats": args.repeats, "warmup": args.warmup,
               "weights": str(args.weights) if args.weights else None,
               "thp_mem_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE") == "1",
               "torch": torch.__version__, "load_average": list(os.getloadavg()),
               "results": results}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
