"""One progress helper for the whole project: a live bar for people, quiet lines for logs.

``progress(...)`` returns a :class:`Progress` in one of three modes:

``bar``
    ``tqdm.auto``: a widget bar in a live notebook, a text bar in a terminal.
``lines``
    a plain line on stdout at most every ``percent_step`` percent of the total (10 % by default)
    or, when that is further away, every ``min_interval_s`` seconds (30 s), plus a last line at
    the end; each line carries the count, rate, elapsed time, ETA and the latest postfix.
    Made for headless runs (papermill, CI, pipes, log files): a notebook executed by papermill
    keeps ten short lines instead of a widget or hundreds of carriage-return redraws.
``off``
    silent (the other ranks of a distributed run, or ``LLVE_PROGRESS=off``).

How the mode is chosen (first match wins):

1. ``disable=True`` -> ``off``.
2. The environment variable ``LLVE_PROGRESS`` = ``bar`` | ``lines`` | ``off``.
3. Inside a Jupyter kernel, ``bar`` only when a person is looking: jupyter_server sets
   ``JPY_SESSION_NAME`` for every kernel it starts for an open notebook (JupyterLab, Notebook,
   Voila), and the kernel's launching process (``JPY_PARENT_PID``, which jupyter_client always
   sets) is that server.  papermill/nbclient start kernels themselves, so neither holds there and
   the kernel gets ``lines`` -- also when papermill is launched from a notebook cell, which would
   pass ``JPY_SESSION_NAME`` down: the launching process is then papermill, not a Jupyter server.
   Where the launching process cannot be read (no ``/proc``: macOS, Windows) the session name
   alone decides.  Other kernel clients (VS Code, ...) get ``lines``: safe everywhere.
4. Outside a kernel: ``bar`` when stderr (where tqdm draws) is a terminal, else ``lines``.

Rates are printed as ``<x> <unit>/s`` (or ``s/<unit>`` below one per second) and durations as
``<x> s`` / ``<x> min`` / ``<x> h``, so the nbval sanitiser can mask them.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from llve.errors import InvalidInputError

MODES = ("bar", "lines", "off")
ENVIRONMENT_VARIABLE = "LLVE_PROGRESS"
# Command lines of the processes that start kernels for a person: JupyterLab, Notebook 7,
# jupyter_server, Voila, JupyterHub's single-user server.
_JUPYTER_SERVER = re.compile(r"jupyter[-_ ]?(lab|notebook|server)|jupyterlab|voila|jupyterhub")


def progress(iterable: Iterable[Any] | None = None, total: int | None = None,
             description: str = "", unit: str = "it", initial: int = 0,
             disable: bool = False, percent_step: float = 10.0,
             min_interval_s: float = 30.0) -> Progress:
    """Progress over ``iterable`` (or a manual counter to ``total`` driven by ``update``).

    ``initial`` starts the count part-way (a resumed run); rates and ETAs count only what this
    object saw.  ``percent_step`` and ``min_interval_s`` pace the ``lines`` mode.
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    mode = progress_mode(disable)
    if mode == "bar":
        return _BarProgress(iterable, total, description, unit, initial)
    if mode == "lines":
        return _LineProgress(iterable, total, description, unit, initial, percent_step,
                             min_interval_s)
    return Progress(iterable, total, description, unit, initial)


def progress_mode(disable: bool = False) -> str:
    """``bar``, ``lines`` or ``off`` for this process (see the module docstring for the rules)."""
    if disable:
        return "off"
    override = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if override:
        if override not in MODES:
            raise InvalidInputError(f"{ENVIRONMENT_VARIABLE}={override!r}: expected one of "
                                    f"{', '.join(MODES)}")
        return override
    if _inside_jupyter_kernel():
        return "bar" if _kernel_has_live_frontend() else "lines"
    return "bar" if _isatty(sys.stderr) else "lines"


def _inside_jupyter_kernel() -> bool:
    ipython = sys.modules.get("IPython")  # never import IPython just to ask
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _kernel_has_live_frontend() -> bool:
    if not os.environ.get("JPY_SESSION_NAME"):
        return False
    launcher = _command_line(int(os.environ.get("JPY_PARENT_PID") or os.getppid()))
    return launcher is None or looks_like_jupyter_server(launcher)


def looks_like_jupyter_server(command_line: str) -> bool:
    """Whether a process command line is a Jupyter server that shows notebooks to a person."""
    return _JUPYTER_SERVER.search(command_line.lower()) is not None


def _command_line(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def format_duration(seconds: float) -> str:
    """``12.3 s``, ``4.5 min`` or ``2.1 h``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """Counts, iterates and keeps a postfix; prints nothing (the ``off`` mode).

    Use it as an iterable wrapper (``for x in progress(items)``), or manually with
    ``update(n)``, ``set_postfix({...})`` and ``close()`` (or as a context manager).
    """

    mode = "off"

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, description: str,
                 unit: str, initial: int) -> None:
        self.iterable = iterable
        self.total = total
        self.description = description
        self.unit = unit
        self.n = initial
        self.initial = initial
        self.postfix: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise InvalidInputError("this progress has no iterable; drive it with update()")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._shown_update(n)

    def set_postfix(self, values: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Replace the key=value pairs shown after the count (latest loss, ...)."""
        self.postfix = {**(values or {}), **more}
        self._shown_postfix()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._shown_close()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _shown_update(self, n: int) -> None:
        """Hook: show an update of ``n`` (nothing in ``off`` mode)."""

    def _shown_postfix(self) -> None:
        """Hook: show a new postfix (nothing in ``off`` mode)."""

    def _shown_close(self) -> None:
        """Hook: show the end (nothing in ``off`` mode)."""


class _BarProgress(Progress):
    mode = "bar"

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, description: str,
                 unit: str, initial: int) -> None:
        from tqdm.auto import tqdm

        super().__init__(iterable, total, description, unit, initial)
        self.bar = tqdm(total=total, desc=description or None, unit=unit, initial=initial,
                        dynamic_ncols=True)

    def _shown_update(self, n: int) -> None:
        self.bar.update(n)

    def _shown_postfix(self) -> None:
        self.bar.set_postfix({key: _format_value(value) for key, value in self.postfix.items()})

    def _shown_close(self) -> None:
        self.bar.close()


class _LineProgress(Progress):
    mode = "lines"

    def __init__(self, iterable: Iterable[Any] | None, total: int | None, description: str,
                 unit: str, initial: int, percent_step: float, min_interval_s: float) -> None:
        super().__init__(iterable, total, description, unit, initial)
        self.percent_step = percent_step
        self.min_interval_s = min_interval_s
        self.last_printed_n = initial
        self.last_printed_at = self.started
        self.next_milestone = self._milestone_after(initial)

    def _milestone_after(self, n: int) -> float:
        """The next count at which a line is due (``inf`` without a total)."""
        if not self.total:
            return math.inf
        step = self.total * self.percent_step / 100
        return (math.floor(n / step) + 1) * step

    def _shown_update(self, n: int) -> None:
        now = time.perf_counter()
        if self.n >= self.next_milestone or now - self.last_printed_at >= self.min_interval_s:
            self._print_line()

    def _shown_close(self) -> None:
        if self.n != self.last_printed_n:
            self._print_line()

    def _print_line(self) -> None:
        print(self.line(), file=sys.stdout, flush=True)
        self.last_printed_n = self.n
        self.last_printed_at = time.perf_counter()
        self.next_milestone = self._milestone_after(self.n)

    def line(self) -> str:
        """``train: 40/100 it (40%) | 12.3 it/s | 3.2 s elapsed | ETA 4.9 s | loss=0.0123``."""
        elapsed = self.elapsed()
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else 0.0
        count = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        parts = [f"{self.description}: {count}" if self.description else count]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        if rate >= 1:
            parts.append(f"{rate:.3g} {self.unit}/s")
        elif rate > 0:
            parts.append(f"{1 / rate:.3g} s/{self.unit}")
        parts.append(f"{format_duration(elapsed)} elapsed")
        if self.total and rate > 0 and self.n < self.total:
            parts.append(f"ETA {format_duration((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(" ".join(f"{key}={_format_value(value)}"
                                  for key, value in self.postfix.items()))
        return " | ".join(parts)
