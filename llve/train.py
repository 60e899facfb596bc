"""One small training loop for every paper: plain models, GANs and diffusion alike.

The unit of work is a list of :class:`Phase` objects run in order at every optimiser step; each
phase owns an optimiser, an optional LR scheduler and a loss function::

    def loss(batch, state):                       # state: TrainState (modules, step, device, ...)
        output = state.modules["net"](batch["dark"])
        return F.l1_loss(output, batch["bright"]), {"psnr": ...}

    result = train(TrainConfig(iterations=400, out_dir="build/run"), {"net": net},
                   [Phase("net", torch.optim.Adam(net.parameters(), 1e-4), loss)],
                   data=batch_fn)             # or a map-style Dataset

A GAN is a generator phase then a discriminator phase (the discriminator phase computes the
generator's output under ``torch.no_grad()`` or detaches it); diffusion is one phase whose loss
draws the timestep and noise.  Loss functions take ``state.modules[name]``, not the modules they
were built from: under ``torchrun`` those are the DistributedDataParallel wrappers that average
gradients across processes.

What the loop guarantees
------------------------
- **Data**: ``data`` is either ``batch_fn(index, rank, world_size) -> batch`` or a map-style
  dataset.  ``index`` counts micro-batches (= the optimiser step when ``grad_accumulation`` is 1)
  and the batch must be a pure function of it (synthetic data seeded from seed + index).  A
  dataset is read in epoch-seeded permutations, each global micro-batch split into contiguous
  per-rank slices, so index ``i`` always gets the same samples.  The batch (nested
  dicts/lists/tuples of tensors) is moved to the device.  The effective batch is
  ``batch_size x grad_accumulation x world_size``.
- **Exact resume**: a fresh run seeds torch/numpy/random with ``seed + rank`` when it starts
  (after the modules exist, so their initialisation is the caller's business).  A checkpoint
  holds modules, optimisers, schedulers, AMP scalers, the step, the elapsed time, the config and
  every rank's RNG states, so a run killed and resumed ends with bitwise the same weights as one
  that was never interrupted (deterministic CPU kernels; on GPUs that also needs
  ``torch.use_deterministic_algorithms(True)``).  Evaluation runs under ``fork_rng`` so it never
  shifts the training random streams.
- **Checkpoints**: ``out_dir/checkpoints/step_XXXXXXXX.pt`` every ``checkpoint_every`` steps and
  at the end; written atomically (temporary file in the same folder, fsync, ``os.replace``); only
  tensors and plain containers inside, so ``torch.load(weights_only=True)`` reads them; a CRC32
  over every tensor and value is stored inside and checked on load, because ``torch.load`` does
  not notice flipped bytes in tensor data.  The newest ``keep_checkpoints`` are kept.
- **Corrupt checkpoints**: :func:`read_checkpoint` raises :class:`CheckpointError` naming the
  file and what is wrong.  ``resume=True`` falls back to the newest checkpoint that reads
  correctly, with a warning naming the corrupt one; nothing is deleted, and the corrupt file is
  replaced when the run reaches its step again.  Exact resume makes the fallback cost only time.
  If no checkpoint reads, it raises, listing every file and its problem.
- **Starting over**: ``resume=False`` in an ``out_dir`` holding an earlier run removes that run's
  checkpoints, log and summary first, so a folder always describes one run.
- **Log**: ``out_dir/log.csv`` (step, seconds, ``<phase>/loss``, ``<phase>/<key>``,
  ``<phase>/lr``, ``<phase>/grad_norm`` when clipping, ``eval/<key>``) every ``log_every`` steps
  and at evaluation and checkpoint steps, values averaged over micro-batches and ranks (a
  non-finite loss stops the run there, before a checkpoint could save it).  Rows are appended;
  the file is rewritten atomically when a new column appears or a resumed run drops the rows
  after its checkpoint (and a torn last line).  ``summary.json`` (final values, wall time,
  steps/s, checkpoints) is rewritten atomically at every checkpoint.
- **DDP**: under ``torchrun`` (``WORLD_SIZE`` > 1) the loop starts a process group (gloo on CPU,
  nccl on CUDA, one GPU per ``LOCAL_RANK``) unless one exists, wraps every module that an
  optimiser trains and writes files from rank 0 only.  The group it started is destroyed when
  the process exits (``atexit``), not after each call, so one process can train several models.
- **AMP**: ``amp="auto"`` autocasts to bfloat16 on CUDA GPUs that support it, else float16 with
  a GradScaler per phase (bfloat16 needs none); off on CPU.  ``bf16``/``fp16`` force a dtype on
  any device (on CPU mostly useful to test these paths).
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import dataclasses
import functools
import io
import json
import math
import os
import random
import re
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from llve.errors import CheckpointError, InvalidInputError
from llve.progress import progress
from llve.scales import Scale, resolve_device, resolve_scale

__all__ = ["TrainConfig", "Phase", "TrainState", "TrainResult", "train", "load_checkpoint",
           "read_checkpoint", "find_checkpoints", "move_to_device"]

CHECKPOINT_FORMAT = "llve-train-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_FOLDER = "checkpoints"
LOG_FILE = "log.csv"
SUMMARY_FILE = "summary.json"
_CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.pt$")
_REQUIRED_KEYS = ("format", "version", "step", "elapsed_s", "world_size", "config", "modules",
                  "phases", "rng", "checksum")
# Config fields that change the arithmetic: resuming with other values cannot be exact.
_EXACTNESS_FIELDS = ("seed", "batch_size", "grad_accumulation", "amp", "clip_grad_norm")
AMP_MODES = ("auto", "bf16", "fp16", "off")


@dataclass
class TrainConfig:
    """Everything the loop needs besides modules, phases and data (all plain values)."""

    iterations: int = 1000  # optimiser steps in total (a resumed run continues to this)
    seed: int = 0
    batch_size: int = 4  # samples per micro-batch per process
    grad_accumulation: int = 1  # micro-batches per optimiser step
    amp: str = "auto"  # auto | bf16 | fp16 | off (auto: bf16/fp16 on CUDA, off on CPU)
    checkpoint_every: int = 0  # steps between checkpoints; 0: only the final one
    log_every: int = 10  # steps between log rows (the last step is always logged)
    eval_every: int = 0  # steps between eval_fn calls; 0: only after the last step
    out_dir: str | os.PathLike | None = None  # checkpoints + log; None: nothing written
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    clip_grad_norm: float | None = None  # max gradient norm per phase (after AMP unscaling)
    device: str = "auto"  # auto | cpu | cuda[:N] (under torchrun: cuda:LOCAL_RANK)
    num_workers: int = 0  # DataLoader worker processes when the data is a Dataset
    find_unused_parameters: bool = False  # DDP option for modules with unused branches
    description: str = "train"  # progress label

    def __post_init__(self) -> None:
        at_least = {"iterations": 0, "batch_size": 1, "grad_accumulation": 1,
                    "checkpoint_every": 0, "log_every": 1, "eval_every": 0,
                    "keep_checkpoints": 1, "num_workers": 0}
        for name, minimum in at_least.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise InvalidInputError(f"TrainConfig.{name}={value!r}: expected an integer "
                                        f">= {minimum}")
        if self.amp not in AMP_MODES:
            raise InvalidInputError(f"TrainConfig.amp={self.amp!r}: expected one of "
                                    f"{', '.join(AMP_MODES)}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise InvalidInputError(f"TrainConfig.clip_grad_norm={self.clip_grad_norm!r}: "
                                    "expected a positive number or None")

    @classmethod
    def from_scale(cls, scale: str | Scale, **overrides: Any) -> TrainConfig:
        """Iterations, batch size and checkpoint interval of a scale (ci, small, paper)."""
        resolved = resolve_scale(scale)
        values = {"iterations": resolved.iterations, "batch_size": resolved.batch_size,
                  "checkpoint_every": resolved.checkpoint_every, **overrides}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["out_dir"] = None if self.out_dir is None else str(self.out_dir)
        return values


@dataclass
class TrainState:
    """What a loss or eval function sees: the modules and where the loop stands."""

    modules: dict[str, nn.Module]  # DDP-wrapped trainable modules when distributed
    device: torch.device
    config: TrainConfig
    step: int = 0  # optimiser step being computed, counted from 0; eval_fn: steps completed
    micro_step: int = 0  # micro-batch within the step (gradient accumulation)
    rank: int = 0
    world_size: int = 1
    amp_dtype: torch.dtype | None = None  # autocast dtype, None when AMP is off

    def unwrap(self, name: str) -> nn.Module:
        """The plain module behind ``modules[name]`` (for state dicts, attributes, sampling)."""
        return _unwrap(self.modules[name])


LossFn = Callable[[Any, TrainState], "tuple[torch.Tensor, Mapping[str, Any]]"]
EvalFn = Callable[[TrainState], Mapping[str, float]]
BatchFn = Callable[[int, int, int], Any]


@dataclass
class Phase:
    """One optimiser update per step: zero_grad, loss/backward per micro-batch, step, schedule."""

    name: str  # prefix of its log columns; also its key in checkpoints
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn  # (batch, state) -> (scalar loss, {name: float or 0-d tensor})
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None  # stepped once per step


@dataclass
class TrainResult:
    """What a run leaves behind (also on disk under ``out_dir`` when one was given)."""

    step: int  # optimiser steps completed
    log: list[dict[str, float]]  # one dict per log row, earlier (resumed) rows included
    checkpoints: list[Path]  # checkpoint files on disk, oldest first
    wall_time_s: float  # time of this call
    total_time_s: float  # training time summed over this run and the runs it resumed
    steps_per_s: float  # of this call
    out_dir: Path | None = None
    resumed_from: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def dataframe(self) -> Any:
        """The log as a pandas DataFrame indexed by step."""
        import pandas

        return pandas.DataFrame(self.log).set_index("step")


def train(config: TrainConfig, modules: Mapping[str, nn.Module], phases: Sequence[Phase],
          data: BatchFn | torch.utils.data.Dataset, eval_fn: EvalFn | None = None,
          resume: bool | str | os.PathLike = False) -> TrainResult:
    """Run ``config.iterations`` optimiser steps of ``phases`` over ``data``.

    ``modules`` (name -> module) are moved to the device and checkpointed; ``eval_fn(state)``
    runs on rank 0 every ``eval_every`` steps and after the last one, on the plain modules in
    eval mode without gradients, and its numbers join the log as ``eval/<key>``.  ``resume``:
    ``False`` starts over, ``True`` continues from the newest good checkpoint in ``out_dir``
    (or starts when there is none), a path continues from that checkpoint.
    """
    _check_phases(modules, phases)
    rank, world_size, local_rank = _distributed_environment()
    device = _process_device(config.device, world_size, local_rank)
    if world_size > 1:
        _ensure_process_group(device)
    return _Loop(config, modules, phases, data, eval_fn, device, rank, world_size).run(resume)


# ---------------------------------------------------------------------------------------------
# Checkpoint files


def find_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Checkpoint files (``step_XXXXXXXX.pt``) in ``directory`` or its ``checkpoints/``, by step."""
    directory = Path(directory)
    if (directory / CHECKPOINT_FOLDER).is_dir():
        directory = directory / CHECKPOINT_FOLDER
    found = [(int(match.group(1)), path) for path in directory.glob("step_*.pt")
             if (match := _CHECKPOINT_NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def load_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors that name the
    file: missing, truncated or corrupt, or not a torch file (:class:`CheckpointError`).
    ``map_location="cpu"`` also reads files saved from CUDA tensors on a machine without one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: unreadable ({size} bytes), truncated or corrupt: "
                              f"{_first_line(error)}") from error
    except Exception as error:  # pickle.UnpicklingError and friends: not a torch checkpoint
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({size} bytes): "
                              f"{_first_line(error)}") from error


def is_llve_checkpoint(payload: Any) -> bool:
    """Whether a loaded file is an llve training checkpoint (its ``format`` entry)."""
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's contents (on CPU), checked; :class:`CheckpointError` says what is wrong."""
    path = Path(path)
    payload = load_torch_file(path)
    if not is_llve_checkpoint(payload):
        raise CheckpointError(f"{path}: not an llve training checkpoint (no "
                              f"format={CHECKPOINT_FORMAT!r} entry)")
    missing = [key for key in _REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing {missing}")
    if payload["version"] != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload['version']}, this llve "
                              f"reads version {CHECKPOINT_VERSION}")
    expected = _checksum({key: value for key, value in payload.items() if key != "checksum"})
    if expected != payload["checksum"]:
        raise CheckpointError(f"{path}: corrupt: content checksum {expected:#010x} does not "
                              f"match the stored {payload['checksum']:#010x}")
    return payload


def load_checkpoint(path: str | os.PathLike, modules: Mapping[str, nn.Module],
                    strict: bool = True) -> dict[str, Any]:
    """Load the weights of ``modules`` (a subset of the saved names is fine) from ``path``.

    Returns the whole checkpoint (``step``, ``config``, ...) for inspection.  For notebooks and
    inference; :func:`train` with ``resume`` also restores optimisers, schedulers and RNGs.
    """
    payload = read_checkpoint(path)
    _load_module_weights(Path(path), payload, modules, strict)
    return payload


def load_model_weights(model: nn.Module, path: str | os.PathLike, name: str | None = None
                       ) -> dict[str, Any]:
    """Load one model's weights from an llve training checkpoint, ``strict=True``.

    ``name`` is the module's name in the checkpoint; by default the checkpoint's only module
    (or its ``"model"``). This is what ``llve.models.build(..., weights=path)`` does.
    """
    payload = read_checkpoint(path)
    saved = sorted(payload["modules"])
    if name is None:
        name = saved[0] if len(saved) == 1 else "model"
    _load_module_weights(Path(path), payload, {name: model}, strict=True)
    return payload


def _load_module_weights(path: Path, payload: Mapping[str, Any],
                         modules: Mapping[str, nn.Module], strict: bool = True) -> None:
    unknown = sorted(set(modules) - set(payload["modules"]))
    if unknown:
        raise CheckpointError(f"{path}: no module(s) {unknown} in this checkpoint; it holds "
                              f"{sorted(payload['modules'])}")
    for name, module in modules.items():
        try:
            _unwrap(module).load_state_dict(payload["modules"][name], strict=strict)
        except RuntimeError as error:
            raise CheckpointError(f"{path}: module {name!r} does not match the checkpoint: "
                                  f"{error}") from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _checksum(value: Any, crc: int = 0) -> int:
    """CRC32 over every tensor's bytes, dtype and shape and every other value's repr."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        crc = zlib.crc32(f"tensor:{value.dtype}:{tuple(value.shape)}".encode(), crc)
        return zlib.crc32(tensor.view(torch.uint8).numpy(), crc)
    if isinstance(value, Mapping):
        crc = zlib.crc32(f"dict:{len(value)}".encode(), crc)
        for key, item in value.items():
            crc = _checksum(item, zlib.crc32(repr(key).encode(), crc))
        return crc
    if isinstance(value, (list, tuple)):
        crc = zlib.crc32(f"{type(value).__name__}:{len(value)}".encode(), crc)
        for item in value:
            crc = _checksum(item, crc)
        return crc
    return zlib.crc32(repr(value).encode(), crc)


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` so readers see the old file or the complete new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmlessly skipped where folders cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _write_text_atomically(path: Path, text: str) -> None:
    _atomic_write(path, lambda handle: handle.write(text.encode()))


def _remove_stale_temporaries(directory: Path, name_pattern: str) -> None:
    """Our temporary files left by a writer killed mid-write (they never got their real name)."""
    for stale in directory.glob(f".{name_pattern}.*.tmp"):
        stale.unlink(missing_ok=True)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value


# ---------------------------------------------------------------------------------------------
# Random number generator states as tensors and plain values (weights_only-loadable)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)  # also seeds every CUDA device
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"].tolist()),
                     python_state["gauss_next"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------------------------
# Devices, distribution, data


def _distributed_environment() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the variables torchrun sets; (0, 1, 0) without."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0"))


def _ensure_process_group(device: torch.device) -> None:
    """Start the process group once per process; it is shut down when the process exits.

    Not after each ``train`` call: re-creating a group on torchrun's store in the same process
    can hang, and a notebook or script may train several models in one distributed process.
    """
    if dist.is_initialized():
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _process_device(requested: str, world_size: int, local_rank: int) -> torch.device:
    device = resolve_device(requested)
    if device.type == "cuda" and world_size > 1:  # one GPU per process
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16  # explicit: any device


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


def _check_phases(modules: Mapping[str, nn.Module], phases: Sequence[Phase]) -> None:
    if not phases:
        raise InvalidInputError("train() needs at least one Phase")
    names = [phase.name for phase in phases]
    if len(set(names)) != len(names) or any("/" in name for name in names):
        raise InvalidInputError(f"phase names {names} must be unique and contain no '/'")
    checkpointed = {id(parameter) for module in modules.values()
                    for parameter in module.parameters()}
    for phase in phases:
        for group in phase.optimizer.param_groups:
            if any(id(parameter) not in checkpointed for parameter in group["params"]):
                raise InvalidInputError(
                    f"phase {phase.name!r}: its optimizer trains parameters that belong to none "
                    f"of the modules {sorted(modules)}; pass every trained module in `modules` "
                    "so checkpoints hold it")


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Tensors inside nested dicts, lists and (named) tuples moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device, non_blocking) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(value, device, non_blocking) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device, non_blocking) for value in batch)
    return batch


def _is_map_dataset(data: Any) -> bool:
    if isinstance(data, torch.utils.data.IterableDataset):
        raise InvalidInputError("an IterableDataset cannot be resumed exactly; pass a map-style "
                                "dataset or a batch_fn(index, rank, world_size)")
    return isinstance(data, torch.utils.data.Dataset) or (
        hasattr(data, "__getitem__") and hasattr(data, "__len__"))


@functools.lru_cache(maxsize=4)
def _epoch_permutation(size: int, seed: int, epoch: int) -> list[int]:
    epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0])
    return torch.randperm(size, generator=torch.Generator().manual_seed(epoch_seed)).tolist()


class _DeterministicBatches(torch.utils.data.Sampler):
    """Sample indices of micro-batch ``i`` of one rank: a pure function of (seed, i, rank).

    The samples form one stream of epoch-seeded permutations; global micro-batch ``i`` is the
    next ``batch_size x world_size`` samples of it and rank ``r`` takes the ``r``-th slice.
    """

    def __init__(self, size: int, batch_size: int, rank: int, world_size: int, seed: int,
                 first_micro_batch: int) -> None:
        self.size, self.batch_size, self.rank = size, batch_size, rank
        self.world_size, self.seed, self.first = world_size, seed, first_micro_batch

    def indices(self, micro_batch: int) -> list[int]:
        first = (micro_batch * self.world_size + self.rank) * self.batch_size
        return [_epoch_permutation(self.size, self.seed, epoch)[offset]
                for epoch, offset in (divmod(position, self.size)
                                      for position in range(first, first + self.batch_size))]

    def __iter__(self) -> Iterator[list[int]]:
        return (self.indices(micro_batch) for micro_batch in count(self.first))


def _micro_batches(data: BatchFn | torch.utils.data.Dataset, config: TrainConfig, rank: int,
                   world_size: int, first_micro_batch: int, device: torch.device) -> Iterator[Any]:
    if _is_map_dataset(data):
        if len(data) == 0:
            raise InvalidInputError("the training dataset is empty")
        sampler = _DeterministicBatches(len(data), config.batch_size, rank, world_size,
                                        config.seed, first_micro_batch)
        # Own generator: creating the loader must not draw from the global RNG (exact resume).
        loader = torch.utils.data.DataLoader(
            data, batch_sampler=sampler, num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(config.seed + rank))
        return iter(loader)
    if callable(data):
        return (data(index, rank, world_size) for index in count(first_micro_batch))
    raise InvalidInputError(f"data must be a batch_fn(index, rank, world_size) or a map-style "
                            f"dataset, not {type(data).__name__}")


# ---------------------------------------------------------------------------------------------
# The CSV log


class _CsvLog:
    """Rows in memory and (on rank 0 with an out_dir) in a CSV kept coherent across resumes."""

    def __init__(self, path: Path | None, rows: list[dict[str, float]]) -> None:
        self.path = path
        self.rows = rows
        self.columns = _columns_of(rows)
        if path is not None:
            self._rewrite()

    @staticmethod
    def read(path: Path, up_to_step: int) -> list[dict[str, float]]:
        """Rows of an earlier run up to ``up_to_step``."""
        if not path.is_file():
            return []
        text = path.read_text()
        # A process killed while appending leaves a last line without its newline: drop it.
        text = text[:text.rfind("\n") + 1]
        rows = []
        for raw in csv.DictReader(io.StringIO(text, newline="")):
            try:
                row = {key: float(value) for key, value in raw.items()
                       if key is not None and value not in ("", None)}
                row["step"] = int(row["step"])
            except (KeyError, ValueError, TypeError):
                continue
            if row["step"] <= up_to_step:
                rows.append(row)
        return rows

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        if self.path is None:
            return
        if any(key not in self.columns for key in row):
            self.columns = _columns_of(self.rows)
            self._rewrite()
            return
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, self.columns, lineterminator="\n").writerow(row)

    def _rewrite(self) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        _write_text_atomically(self.path, text.getvalue())


def _columns_of(rows: list[dict[str, float]]) -> list[str]:
    columns = ["step", "seconds"]
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


# ---------------------------------------------------------------------------------------------
# The loop


class _Loop:
    """One call of :func:`train`: set-up, optional resume, the steps, files."""

    def __init__(self, config: TrainConfig, modules: Mapping[str, nn.Module],
                 phases: Sequence[Phase], data: Any, eval_fn: EvalFn | None,
                 device: torch.device, rank: int, world_size: int) -> None:
        self.config, self.phases, self.data, self.eval_fn = config, list(phases), data, eval_fn
        self.raw_modules = {name: module.to(device) for name, module in modules.items()}
        self.writes_files = rank == 0 and config.out_dir is not None
        self.out_dir = None if config.out_dir is None else Path(config.out_dir)
        amp_dtype = _amp_dtype(config.amp, device)
        self.scalers = {phase.name: torch.amp.GradScaler(device.type,
                                                         enabled=amp_dtype == torch.float16)
                        for phase in self.phases}
        self.state = TrainState(self._wrap_trainable(device, world_size), device, config,
                                rank=rank, world_size=world_size, amp_dtype=amp_dtype)
        self.elapsed_before = 0.0  # training seconds of the runs this one resumes
        self.resumed_from: Path | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def _trainable_names(self) -> list[str]:
        optimised = {id(parameter) for phase in self.phases
                     for group in phase.optimizer.param_groups for parameter in group["params"]}
        return [name for name, module in self.raw_modules.items()
                if any(id(parameter) in optimised for parameter in module.parameters())]

    def _wrap_trainable(self, device: torch.device, world_size: int) -> dict[str, nn.Module]:
        wrapped = dict(self.raw_modules)
        for name in self._trainable_names():
            wrapped[name].train()
            if world_size > 1:
                wrapped[name] = DistributedDataParallel(
                    wrapped[name], device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=self.config.find_unused_parameters)
        return wrapped

    @property
    def checkpoint_dir(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / CHECKPOINT_FOLDER

    def _start(self, resume: bool | str | os.PathLike) -> int:
        """Step to start from, after restoring a checkpoint or seeding a fresh run."""
        if self.writes_files:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale_temporaries(self.checkpoint_dir, "step_*.pt")
            for name in (LOG_FILE, SUMMARY_FILE):
                _remove_stale_temporaries(self.out_dir, name)
        payload = self._checkpoint_to_resume(resume)
        if payload is None:
            if self.writes_files:
                self._forget_earlier_run()
            _seed_everything(self.config.seed + self.state.rank)
            self.log = _CsvLog(self._log_path, [])
            return 0
        self._restore(payload)
        self.log = _CsvLog(self._log_path, _CsvLog.read(self.out_dir / LOG_FILE, payload["step"])
                           if self.out_dir is not None else [])
        return payload["step"]

    @property
    def _log_path(self) -> Path | None:
        return self.out_dir / LOG_FILE if self.writes_files else None

    def _forget_earlier_run(self) -> None:
        """Silently: a re-executed notebook (nbval) must print exactly what the first run did."""
        for path in [*find_checkpoints(self.checkpoint_dir), self.out_dir / LOG_FILE,
                     self.out_dir / SUMMARY_FILE]:
            path.unlink(missing_ok=True)

    def _checkpoint_to_resume(self, resume: bool | str | os.PathLike) -> dict[str, Any] | None:
        if resume is False:
            return None
        if resume is not True:
            self.resumed_from = Path(resume)
            return read_checkpoint(resume)
        if self.checkpoint_dir is None:
            raise InvalidInputError("resume=True needs TrainConfig.out_dir (where checkpoints are)")
        candidates = find_checkpoints(self.checkpoint_dir)[::-1]
        problems = []
        for path in candidates:
            try:
                payload = read_checkpoint(path)
            except CheckpointError as error:
                problems.append(str(error))
                continue
            if problems:
                warnings.warn(f"{'; '.join(problems)}. Resuming from the previous good "
                              f"checkpoint {path} (step {payload['step']}) instead; the corrupt "
                              "file is left in place and replaced when the run reaches its step "
                              "again.")
            self.resumed_from = path
            return payload
        if problems:
            raise CheckpointError("no readable checkpoint to resume from: " + "; ".join(problems))
        return None

    def _restore(self, payload: dict[str, Any]) -> None:
        path = self.resumed_from
        _require_same_names(path, "modules", payload["modules"], self.raw_modules)
        _require_same_names(path, "phases", payload["phases"], [p.name for p in self.phases])
        _load_module_weights(path, payload, self.raw_modules)
        for phase in self.phases:
            saved = payload["phases"][phase.name]
            try:
                phase.optimizer.load_state_dict(saved["optimizer"])
                if phase.scheduler is not None:
                    phase.scheduler.load_state_dict(saved["scheduler"])
                self.scalers[phase.name].load_state_dict(saved["scaler"])
            except (ValueError, KeyError, RuntimeError, TypeError) as error:
                raise CheckpointError(f"{path}: phase {phase.name!r} (optimizer, scheduler or "
                                      f"AMP scaler) does not match: {error}") from error
        self._warn_if_inexact(payload)
        rank = self.state.rank
        if payload["world_size"] == self.state.world_size:
            _set_rng_state(payload["rng"][rank], self.state.device)
        else:
            _seed_everything(self.config.seed + rank + 7919 * payload["step"])
        self.elapsed_before = float(payload["elapsed_s"])

    def _warn_if_inexact(self, payload: dict[str, Any]) -> None:
        saved = payload["config"]
        changed = [f"{name} {saved.get(name)!r} -> {getattr(self.config, name)!r}"
                   for name in _EXACTNESS_FIELDS if saved.get(name) != getattr(self.config, name)]
        if payload["world_size"] != self.state.world_size:
            changed.append(f"world_size {payload['world_size']} -> {self.state.world_size}")
        if changed:
            warnings.warn(f"{self.resumed_from}: resuming with {', '.join(changed)}; the result "
                          "will differ from an uninterrupted run")

    # -- steps ----------------------------------------------------------------------------------

    def run(self, resume: bool | str | os.PathLike) -> TrainResult:
        started = time.perf_counter()
        start = self.start_step = self._start(resume)
        self.session_started = time.perf_counter()
        config = self.config
        batches = _micro_batches(self.data, config, self.state.rank, self.state.world_size,
                                 start * config.grad_accumulation, self.state.device)
        bar = progress(total=config.iterations, initial=start, description=config.description,
                       disable=self.state.rank != 0)
        with bar:
            for step in range(start, config.iterations):
                self.state.step = step
                micro = [move_to_device(next(batches), self.state.device, non_blocking=True)
                         for _ in range(config.grad_accumulation)]
                values = {}
                for phase in self.phases:
                    values.update(self._run_phase(phase, micro))
                self._after_step(step + 1, values, bar)
                bar.update(1)  # after the postfix, so a printed line shows this step's loss
        return self._result(max(start, config.iterations), time.perf_counter() - started)

    def _run_phase(self, phase: Phase, micro_batches: list[Any]) -> dict[str, Any]:
        state, scaler = self.state, self.scalers[phase.name]
        phase.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, Any] = {}
        for index, batch in enumerate(micro_batches):
            state.micro_step = index
            last = index == len(micro_batches) - 1
            with self._gradient_sync(last):
                with _autocast(state.device, state.amp_dtype):
                    loss, logs = phase.loss_fn(batch, state)
                _check_loss(loss, phase.name)
                scaler.scale(loss / len(micro_batches)).backward()
            for key, value in {"loss": loss, **logs}.items():
                value = value.detach().float() if isinstance(value, torch.Tensor) else value
                totals[f"{phase.name}/{key}"] = (totals.get(f"{phase.name}/{key}", 0)
                                                 + value / len(micro_batches))
        if self.config.clip_grad_norm is not None:
            scaler.unscale_(phase.optimizer)
            parameters = [p for group in phase.optimizer.param_groups for p in group["params"]]
            totals[f"{phase.name}/grad_norm"] = torch.nn.utils.clip_grad_norm_(
                parameters, self.config.clip_grad_norm)
        scaler.step(phase.optimizer)
        scaler.update()
        if phase.scheduler is not None:
            phase.scheduler.step()
        return totals

    def _gradient_sync(self, sync: bool) -> contextlib.AbstractContextManager:
        """DDP averages gradients only on the last micro-batch of a step (``no_sync`` before)."""
        stack = contextlib.ExitStack()
        if not sync:
            for module in self.state.modules.values():
                if isinstance(module, DistributedDataParallel):
                    stack.enter_context(module.no_sync())
        return stack

    def _after_step(self, completed: int, values: dict[str, Any], bar: Any) -> None:
        config = self.config
        last = completed == config.iterations
        evaluate = self.eval_fn is not None and (
            last or (config.eval_every and completed % config.eval_every == 0))
        checkpoint = self.out_dir is not None and (
            last or (config.checkpoint_every and completed % config.checkpoint_every == 0))
        # Checkpoint steps get a row too: the loss is checked there before the weights are saved.
        if last or evaluate or checkpoint or completed % config.log_every == 0:
            row = self._log_row(completed, values)
            if evaluate and self.state.rank == 0:
                row.update({f"eval/{key}": float(value)
                            for key, value in self._evaluate(completed).items()})
            self.log.append(row)
            bar.set_postfix({key: value for key, value in row.items()
                             if key.endswith("/loss") or key.startswith("eval/")})
        if checkpoint:
            self._save_checkpoint(completed)

    def _log_row(self, completed: int, values: dict[str, Any]) -> dict[str, float]:
        values = {**values, **{f"{phase.name}/lr": phase.optimizer.param_groups[0]["lr"]
                               for phase in self.phases}}
        names = list(values)
        numbers = torch.stack([torch.as_tensor(values[name], dtype=torch.float64,
                                               device=self.state.device).reshape(())
                               for name in names])
        if self.state.world_size > 1:  # the log describes the global batch, not rank 0's share
            dist.all_reduce(numbers)
            numbers /= self.state.world_size
        row = {"step": completed, "seconds": round(self._elapsed(), 3)}
        row.update(zip(names, numbers.tolist()))
        for phase in self.phases:
            if not math.isfinite(row[f"{phase.name}/loss"]):
                raise FloatingPointError(
                    f"phase {phase.name!r}: loss is {row[f'{phase.name}/loss']} at step "
                    f"{completed}; lower the learning rate, set clip_grad_norm, or use "
                    "amp='bf16'/'off'")
        return row

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.session_started

    def _evaluate(self, completed: int) -> Mapping[str, float]:
        """``eval_fn`` on the plain modules in eval mode, its randomness kept off the training's."""
        modes = {name: module.training for name, module in self.raw_modules.items()}
        view = dataclasses.replace(self.state, modules=dict(self.raw_modules), step=completed)
        devices = [self.state.device] if self.state.device.type == "cuda" else []
        try:
            for module in self.raw_modules.values():
                module.eval()
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                return self.eval_fn(view)
        finally:
            for name, module in self.raw_modules.items():
                module.train(modes[name])

    # -- files ----------------------------------------------------------------------------------

    def _save_checkpoint(self, completed: int) -> None:
        rng = [_rng_state(self.state.device)]
        if self.state.world_size > 1:  # every rank's streams, for an exact distributed resume
            gathered: list[Any] = [None] * self.state.world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if not self.writes_files:
            return
        payload = _to_cpu({  # loadable on any machine, whatever device trained it
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": completed,
            "elapsed_s": self._elapsed(), "world_size": self.state.world_size,
            "config": self.config.to_dict(),
            "modules": {name: module.state_dict() for name, module in self.raw_modules.items()},
            "phases": {phase.name: {
                "optimizer": phase.optimizer.state_dict(),
                "scheduler": None if phase.scheduler is None else phase.scheduler.state_dict(),
                "scaler": self.scalers[phase.name].state_dict()} for phase in self.phases},
            "rng": rng,
        })
        payload["checksum"] = _checksum(payload)
        path = self.checkpoint_dir / f"step_{completed:08d}.pt"
        _atomic_write(path, lambda handle: torch.save(payload, handle))
        self._prune_checkpoints(completed)
        self._write_summary(completed)

    def _prune_checkpoints(self, completed: int) -> None:
        """Keep the newest ``keep_checkpoints`` up to this step.

        Files of later steps (left by a run this one resumed before, e.g. a corrupt newest
        one) are not counted or touched: they are replaced when the run reaches them.
        """
        earlier = [path for path in find_checkpoints(self.checkpoint_dir)
                   if int(_CHECKPOINT_NAME.match(path.name).group(1)) <= completed]
        for path in earlier[:-self.config.keep_checkpoints]:
            path.unlink(missing_ok=True)

    def _write_summary(self, completed: int) -> None:
        final = {key: value for key, value in (self.log.rows[-1] if self.log.rows else {}).items()
                 if key != "step"}
        summary = {
            "step": completed, "iterations": self.config.iterations, "final": final,
            "wall_time_s": round(self._elapsed(), 3),
            "session_wall_time_s": round(time.perf_counter() - self.session_started, 3),
            "steps_per_s": round(self._session_rate(completed), 4),
            "world_size": self.state.world_size, "device": str(self.state.device),
            "amp": None if self.state.amp_dtype is None else str(self.state.amp_dtype),
            "resumed_from": None if self.resumed_from is None else str(self.resumed_from),
            "checkpoints": [str(path) for path in find_checkpoints(self.checkpoint_dir)],
            "config": self.config.to_dict(),
        }
        _write_text_atomically(self.out_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")

    def _session_rate(self, completed: int) -> float:
        """Steps per second of this call (not of the runs it resumed)."""
        seconds = time.perf_counter() - self.session_started
        return (completed - self.start_step) / seconds if seconds > 0 else 0.0

    def _result(self, step: int, wall: float) -> TrainResult:
        summary = {}
        if self.writes_files and (self.out_dir / SUMMARY_FILE).is_file():
            summary = json.loads((self.out_dir / SUMMARY_FILE).read_text())
        return TrainResult(
            step=step, log=self.log.rows,
            checkpoints=find_checkpoints(self.checkpoint_dir) if self.out_dir else [],
            wall_time_s=wall, total_time_s=self._elapsed(), steps_per_s=self._session_rate(step),
            out_dir=self.out_dir, resumed_from=self.resumed_from, summary=summary)


def _require_same_names(path: Path, what: str, saved: Any, given: Any) -> None:
    if set(saved) != set(given):
        raise CheckpointError(f"{path}: the checkpoint holds {what} {sorted(saved)}, this run "
                              f"has {sorted(given)}")


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _check_loss(loss: Any, phase_name: str) -> None:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise InvalidInputError(f"phase {phase_name!r}: loss_fn must return (scalar tensor, "
                                f"dict), got a loss of type {type(loss).__name__}"
                                + (f" with shape {tuple(loss.shape)}"
                                   if isinstance(loss, torch.Tensor) else ""))
