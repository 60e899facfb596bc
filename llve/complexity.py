"""Model complexity: parameters, MACs, peak memory and latency, with a stated protocol.

Counting conventions
--------------------
* Parameters: ``count_parameters`` sums ``numel`` over ``model.parameters()`` (shared tensors
  once). Weight-normalised layers count both ``g`` and ``v`` (their ``original0`` and
  ``original1``), as the released code's parameter counts do.
* MACs: ``count_macs`` runs one forward pass under ``torch.utils.flop_counter.FlopCounterMode``
  and reports FLOPs / 2. Only convolutions (also transposed and grouped) and matrix products
  (``mm``, ``addmm``, ``bmm``, ``baddbmm``, attention) are counted — one multiply-accumulate per
  output element per reduction step; biases, normalisation, activations, pooling, pixel
  (un)shuffle, interpolation and element-wise arithmetic count 0. Tools in the ptflops style
  also count bias adds and activations (about +0.4 % for the Lamba network): say which
  convention a table column uses. A conv's MACs are ``Cout · (Cin / groups) · kh · kw · Hout ·
  Wout`` per image; a linear layer's ``in · out`` per token; attention's ``2 · L_q · L_k · d``
  per head (QKᵀ and AV).
* Attention is counted: the forward runs under ``sdpa_kernel(SDPBackend.MATH)``, so
  ``scaled_dot_product_attention`` decomposes into counted matrix products on every device
  (FlopCounterMode has no formula for the fused CPU kernel and would count 0).
* Counting happens on the ``meta`` device: parameters and buffers are swapped for meta
  tensors of the same shape through ``torch.func.functional_call`` (the model itself is not
  copied or modified), inputs are meta tensors, so a 4K input or an 866M-parameter UNet costs
  no memory. The forward must not read tensor values (``.item()``, NumPy, OpenCV calls, data-
  dependent branches): count the network parts of such models separately.

Timing and memory protocol
--------------------------
* ``latency``: ``warmup`` untimed calls, then the median of ``repeats`` timed calls, all in one
  process; on CUDA each call is timed with CUDA events after a synchronisation. The result
  names the device and ``torch.get_num_threads()``. Compare speeds as ratios measured in one run.
* ``peak_memory``: on CUDA the peak of ``torch.cuda.max_memory_allocated`` (tensors held by
  PyTorch's caching allocator) during the call, after ``reset_peak_memory_stats``; on CPU the
  peak resident set size (RSS) of the whole process during the call, from the kernel's
  high-water mark ``VmHWM`` after resetting it through ``/proc/self/clear_refs`` (Linux ≥ 4.0),
  or, where that file is not writable, from a thread sampling ``/proc/self/statm`` every
  millisecond (may miss spikes shorter than that). Both report the increase over the value
  just before the call, plus that baseline.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils import _pytree as pytree
from torch.utils.flop_counter import FlopCounterMode

from llve.errors import InvalidInputError

DeviceLike = str | torch.device


# --------------------------------------------------------------------------------------
# Parameters and MACs
# --------------------------------------------------------------------------------------


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (shared parameters once).

    ``trainable_only=True`` counts only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _is_shape(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) > 0 and all(isinstance(v, int) for v in value)


def _tensors_to_meta(value: Any) -> Any:
    """``value`` with every tensor in it (nested in lists, tuples, dicts) replaced by a meta tensor."""

    def to_meta(leaf: Any) -> Any:
        return torch.empty_like(leaf, device="meta") if isinstance(leaf, torch.Tensor) else leaf

    return pytree.tree_map(to_meta, value)


def _run_on_meta(model: nn.Module, example_inputs: tuple, kwargs: dict) -> FlopCounterMode:
    """One forward of ``model`` on meta tensors under FlopCounterMode; returns the counter."""
    meta_inputs = tuple(
        torch.empty(value, device="meta") if _is_shape(value) else _tensors_to_meta(value)
        for value in example_inputs
    )
    meta_kwargs = _tensors_to_meta(kwargs)
    named_tensors = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    meta_state = {name: torch.empty_like(tensor, device="meta") for name, tensor in named_tensors}
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            functional_call(model, meta_state, meta_inputs, meta_kwargs, strict=True)
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as error:
        raise RuntimeError(
            f"{type(model).__name__} could not run on the meta device ({error}). MACs are counted "
            "on meta; a forward that reads tensor values (.item(), NumPy, OpenCV, data-dependent "
            "branches) or keeps tensors outside parameters/buffers cannot be counted this way: "
            "count its network parts separately."
        ) from error
    return counter


def count_macs(model: nn.Module, *example_inputs: Any, **kwargs: Any) -> int:
    """Multiply-accumulates of one forward ``model(*example_inputs, **kwargs)``: FLOPs // 2.

    Each positional input is a tensor (any device; only its shape and dtype are used), a shape
    tuple such as ``(1, 3, 2160, 3840)`` (a float32 tensor of that shape), or any other value
    passed through unchanged (tensors nested in lists/dicts become meta tensors). ``kwargs``
    go to the forward with their tensors made meta. Counting convention: module docstring.
    """
    return _run_on_meta(model, example_inputs, kwargs).get_total_flops() // 2


def macs_by_module(model: nn.Module, *example_inputs: Any, **kwargs: Any) -> dict[str, int]:
    """MACs of one forward per submodule, keyed like ``model.named_modules()``.

    ``""`` is the whole model; every other key is a submodule's qualified name (``"encoder.0"``)
    and its value includes its children's MACs (0 for modules that run no counted op, or do
    not run). A module called several times accumulates all its calls. Inputs as in
    :func:`count_macs`.
    """
    counts = _run_on_meta(model, example_inputs, kwargs).get_flop_counts()
    root = type(model).__name__
    result = {}
    for name, _ in model.named_modules():
        tracked = f"{root}.{name}" if name else root
        result[name] = sum(counts.get(tracked, {}).values()) // 2
    return result


def _output_shape(output: Any) -> str:
    tensors = [leaf for leaf in pytree.tree_leaves(output) if isinstance(leaf, torch.Tensor)]
    return ", ".join("×".join(str(size) for size in tensor.shape) for tensor in tensors)


def layer_table(model: nn.Module, *example_inputs: Any, depth: int = 1) -> list[dict[str, Any]]:
    """One row per submodule down to ``depth`` (1 = the model's children): qualified name, type,
    output shape, parameters and MACs of one forward, in execution order; counted on meta.

    ``pandas.DataFrame(layer_table(...))`` makes the architecture table of a walkthrough.
    """
    selected = {name: module for name, module in model.named_modules()
                if name and name.count(".") < depth}
    shapes: dict[str, str] = {}

    def remember_shape(name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:  # must return None
            shapes.setdefault(name, _output_shape(output))
        return hook

    handles = [module.register_forward_hook(remember_shape(name)) for name, module in selected.items()]
    try:
        counts = _run_on_meta(model, example_inputs, {}).get_flop_counts()
    finally:
        for handle in handles:
            handle.remove()
    root = type(model).__name__
    return [{"module": name, "type": type(selected[name]).__name__, "output shape": shape,
             "parameters": count_parameters(selected[name]),
             "MACs": sum(counts.get(f"{root}.{name}", {}).values()) // 2}
            for name, shape in shapes.items()]


# --------------------------------------------------------------------------------------
# Devices, latency, memory
# --------------------------------------------------------------------------------------


def device_name(device: DeviceLike = "cpu") -> str:
    """Human-readable device name: the GPU model for CUDA, the CPU model name otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read(), re.MULTILINE)
        if match:
            return f"CPU: {match.group(1).strip()}"
    except OSError:
        pass
    return f"CPU: {platform.processor() or platform.machine()}"


def synchronize(device: DeviceLike) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_timing_arguments(repeats: int, warmup: int) -> None:
    """Raise ``InvalidInputError`` unless ``repeats`` ≥ 1 and ``warmup`` ≥ 0 are ints."""
    if not isinstance(repeats, int) or repeats < 1:
        raise InvalidInputError(f"repeats must be a positive int, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise InvalidInputError(f"warmup must be a non-negative int, got {warmup!r}")


def time_round_robin(functions: Mapping[str, Callable[[], object]], repeats: int = 3,
                     warmup: int = 1, device: DeviceLike = "cpu") -> dict[str, list[float]]:
    """Wall times of each function: ``warmup`` untimed calls each, then ``repeats`` rounds of one
    timed call of each (so drifting machine load affects all alike). CUDA-synchronised."""
    check_timing_arguments(repeats, warmup)
    for function in functions.values():
        for _ in range(warmup):
            function()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def latency(
    fn: Callable[[], Any], warmup: int = 2, repeats: int = 5, device: DeviceLike = "cpu"
) -> dict[str, Any]:
    """Median wall time of ``fn()`` after ``warmup`` untimed calls.

    Returns ``{"median_s", "all_s" (every timed call, in order), "device" (name), "threads"
    (torch.get_num_threads()), "warmup", "repeats"}``. On CUDA each call is bracketed by CUDA
    events after a device synchronisation; on CPU by ``time.perf_counter``. Wrap ``fn`` in
    ``torch.no_grad()`` yourself when timing inference.
    """
    check_timing_arguments(repeats, warmup)
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            start_time = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start_time)
    return {
        "median_s": statistics.median(times),
        "all_s": times,
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "repeats": repeats,
    }


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB$", status.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} line")
    return int(match.group(1)) * 1024


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _cpu_peak(fn: Callable[[], Any]) -> dict[str, Any]:
    baseline = _rss_bytes()
    if _reset_high_water_mark():
        fn()
        return {
            "baseline_bytes": baseline,
            "peak_bytes": _status_kib("VmHWM"),
            "method": "VmHWM after clear_refs",
        }
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    peak = max(peak, _rss_bytes())
    return {"baseline_bytes": baseline, "peak_bytes": peak, "method": "RSS sampled every 1 ms"}


def peak_memory(fn: Callable[[], Any], device: DeviceLike = "cpu") -> dict[str, Any]:
    """Peak memory while ``fn()`` runs once (see the module docstring for what is measured).

    Returns ``{"peak_increase_bytes", "peak_bytes", "baseline_bytes", "method", "device"}``:
    on CUDA, allocated tensor bytes (``max_memory_allocated`` after a reset; baseline =
    ``memory_allocated`` before); on CPU, the process's resident set size. The increase is what
    the call needed beyond what was already held (e.g. beyond the model's weights).
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        measured = {
            "baseline_bytes": baseline,
            "peak_bytes": torch.cuda.max_memory_allocated(device),
            "method": "torch.cuda.max_memory_allocated",
        }
    elif device.type == "cpu":
        try:
            measured = _cpu_peak(fn)
        except FileNotFoundError as error:
            raise RuntimeError("CPU peak memory needs Linux's /proc/self (statm, status)") from error
    else:
        raise InvalidInputError(f"peak_memory supports 'cpu' and 'cuda' devices, got {device}")
    return {
        "peak_increase_bytes": max(measured["peak_bytes"] - measured["baseline_bytes"], 0),
        **measured,
        "device": device_name(device),
    }
