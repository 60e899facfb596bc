"""Tables, figures and recorded numbers, each written with its provenance.

A notebook makes one :class:`Reporter` and hands it what it produced::

    report = Reporter("lamba", "30_reproduce", scale=scale, seed=seed, device=device, out_dir=out_dir)
    report.table("table1", frame, caption="...", protocol="PSNR/SSIM on sRGB, data range 1")
    report.figure("fig5", fig, caption="...")
    report.record(psnr_db=31.2)          # numbers the notebook tests assert on
    report.claims([Claim(...), ...])     # the paper's headline claims, held or not

Layout (DESIGN.md §4) under the output root (``figures/`` and ``tables/`` of the repository at
``small`` scale, ``build/ci`` at ``ci``, ``build/paper`` at ``paper``, or ``out_dir`` when given)::

    tables/<paper>/<id>.csv  <id>.md  <id>.meta.json
    figures/<paper>/<id>.png <id>.meta.json
    tables/<paper>/<notebook>.numbers.json

Each ``<id>.meta.json`` holds the provenance of that one output: ``git_commit`` (of the code;
``+dirty`` only for uncommitted code changes, not for outputs under tables/, figures/, build/),
``scale``, ``seed``, ``device``, ``threads``, ``torch``, ``data_source`` and ``weights`` (per
output when given, else the Reporter's; ``weights`` "" means no weights file was loaded),
``wall_time_s`` with ``wall_time_covers`` (the output's own cost: the time since the notebook's
previous output, or the ``seconds=`` the caller measured).

``llve reproduce`` passes every notebook a staging folder as ``out_dir`` and publishes it into
the output root only when the notebook succeeded; the Reporter does not need to know.
Non-committed products of a run (executed notebooks, staging, logs, checkpoints) live under
:func:`build_root`.

Every file is written atomically (temporary file in the same folder, then ``os.replace``): an
interrupted run leaves the previous version intact, never a half-written one.

Honesty helpers: :func:`not_available` marks a number that cannot be computed here ("n/a" plus
the reason, listed under the table), :func:`beside_paper` puts paper-reported numbers next to
ours, and :class:`Claim` rows say whether a claim holds at the scale that was run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import torch

from llve.errors import InvalidInputError
from llve.complexity import device_name
from llve.scales import SCALES, resolve_device, resolve_scale

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_ROOT = Path(os.environ.get("LLVE_OFFICIAL", REPOSITORY_ROOT.parent / "shared" / "official"))
"""What the official releases give (released weights, reference outputs), beside the checkout;
optional everywhere, never shipped with llve."""


def official_file(relative_path: str | os.PathLike, explicit: str | os.PathLike | None = "",
                  ) -> Path | None:
    """A file of an official release: ``explicit`` when given (a user's path, e.g. from
    ``$LLVE_WEIGHTS`` through ``llve reproduce --weights``; returned as given, its loader reports
    a missing file), else ``OFFICIAL_ROOT / relative_path`` when that file exists, else None
    (callers then leave the release's rows out, or fall back, and say so)."""
    if explicit:
        return Path(explicit)
    path = OFFICIAL_ROOT / relative_path
    return path if path.is_file() else None


def output_root(scale: str, out_dir: str | os.PathLike | None = None) -> Path:
    """Where a run at ``scale`` writes ``figures/`` and ``tables/`` unless ``out_dir`` is given.

    ``small`` outputs are the committed ones (repository root); ``ci`` and ``paper`` runs go under
    ``build/`` so neither a test nor a long GPU run overwrites what is committed by accident.
    """
    if out_dir:
        return Path(out_dir).expanduser().resolve()
    resolve_scale(scale)  # clear error for unknown names
    return REPOSITORY_ROOT if scale == "small" else REPOSITORY_ROOT / "build" / scale


BUILD_DIR_VARIABLE = "LLVE_BUILD_DIR"
"""Environment variable naming the folder that replaces ``<repository>/build`` (``llve
reproduce`` sets it for its kernels, so a notebook's :func:`checkpoint_dir` follows ``--out``)."""


def build_root(scale: str, out_dir: str | os.PathLike | None = None) -> Path:
    """The folder of a run's products that are never committed, for ``scale``.

    It holds ``notebooks/`` (executed notebooks), ``staging/`` (a notebook's outputs until it
    succeeded), ``logs/`` and ``checkpoints/`` (the training cache later notebooks reuse)::

        <out_dir>/build/<scale>          when out_dir is given (``llve reproduce --out``)
        $LLVE_BUILD_DIR/<scale>          else, when that variable is set (a kernel of such a run)
        <repository>/build/<scale>       else

    The scale stays in the path so checkpoints of different scales never mix.
    """
    resolve_scale(scale)
    if out_dir:
        base = Path(out_dir).expanduser() / "build"
    elif os.environ.get(BUILD_DIR_VARIABLE):
        base = Path(os.environ[BUILD_DIR_VARIABLE]).expanduser()
    else:
        base = REPOSITORY_ROOT / "build"
    return base.resolve() / scale


def checkpoint_dir(paper: str, scale: str, name: str,
                   out_dir: str | os.PathLike | None = None) -> Path:
    """Where training checkpoints of model ``name`` for ``paper`` at ``scale`` live.

    ``build_root(scale, out_dir) / "checkpoints" / paper / name`` (gitignored): weights are
    regenerated, never committed. Notebooks that need a trained model look here before training
    one; inside ``llve reproduce --out DIR`` that is under ``DIR/build/<scale>/`` (through
    ``$LLVE_BUILD_DIR``), without ``--out`` under ``build/<scale>/`` of the repository.
    """
    return build_root(scale, out_dir) / "checkpoints" / paper / name


# --------------------------------------------------------------------------- atomic writing


_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomically(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _json_default(value: Any):
    if isinstance(value, (Path, torch.device)):
        return str(value)
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot record {type(value).__name__} as JSON")


def to_json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=_json_default) + "\n"


# --------------------------------------------------------------------------- honesty helpers


@dataclass(frozen=True)
class NotAvailable:
    """A table cell that cannot be computed honestly here, with the reason why."""

    reason: str

    def __str__(self) -> str:
        return "n/a"


def not_available(reason: str) -> NotAvailable:
    return NotAvailable(reason)


def beside_paper(ours: pd.DataFrame, paper: pd.DataFrame, key: str,
                 columns: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per ``key`` value with ``"<column> (paper)"`` next to ``"<column> (ours)"``.

    ``columns`` defaults to every column of ``ours`` but the key. A row or column present on
    one side only gets :class:`NotAvailable` cells on the other, saying so, so a reader never
    mistakes a missing number for a measured one.
    """
    columns = list(columns) if columns is not None else [c for c in ours.columns if c != key]
    sides = {" (paper)": (paper, "not reported in the paper"), " (ours)": (ours, "not run here")}
    merged = pd.DataFrame({key: pd.unique(pd.concat([paper[key], ours[key]]))})
    for column in columns:
        for suffix, (frame, reason) in sides.items():
            values = (frame.set_index(key)[column] if column in frame.columns
                      else pd.Series(dtype=object))
            cells = merged[key].map(values).astype(object)
            merged[column + suffix] = cells.where(cells.notna(), NotAvailable(reason))
    return merged


@dataclass(frozen=True)
class Claim:
    """A headline claim of a paper and whether our evidence supports it at this scale.

    ``holds`` is True or False when we tested it, None when it could not be tested here (then
    ``our_evidence`` says why).
    """

    claim: str
    paper_evidence: str
    our_evidence: str
    holds: bool | None

    def verdict(self) -> str:
        return {True: "holds", False: "does not hold", None: "not tested"}[self.holds]


def claims_frame(claims: Iterable[Claim]) -> pd.DataFrame:
    return pd.DataFrame([{"claim": claim.claim, "paper": claim.paper_evidence,
                          "ours": claim.our_evidence, "verdict": claim.verdict()}
                         for claim in claims])


# --------------------------------------------------------------------------- rendering


def _format_cell(value: Any, digits: int) -> str:
    if isinstance(value, NotAvailable):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (no extra dependency)."""
    header = [str(column) for column in frame.columns]
    rows = [[_format_cell(value, digits).replace("|", "\\|") for value in row]
            for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _reasons(frame: pd.DataFrame) -> list[str]:
    reasons: list[str] = []
    for value in frame.to_numpy().ravel():
        if isinstance(value, NotAvailable) and value.reason not in reasons:
            reasons.append(value.reason)
    return reasons


# --------------------------------------------------------------------------- provenance


# Outputs and build products: changing them does not change what the code computes.
NOT_CODE = ("tables", "figures", "build")


def git_commit(root: Path = REPOSITORY_ROOT) -> str:
    """The commit of the CODE the outputs came from, ``+dirty`` when the code has uncommitted changes.

    Uncommitted changes under ``tables/``, ``figures/`` and ``build/`` (regenerated outputs, such
    as the ones a run is writing right now) do not count: they cannot change what the commit
    computes. Untracked files do not count either.
    """
    code_only = [":/", *[f":(top,exclude){folder}" for folder in NOT_CODE]]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                "--", *code_only],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


# --------------------------------------------------------------------------- the reporter


WALL_TIME_SINCE_PREVIOUS = "since the notebook's previous output (or since its Reporter was made)"
WALL_TIME_GIVEN = "the computation of this output, timed by the notebook"


class Reporter:
    """Writes one notebook's tables, figures and recorded numbers with provenance.

    ``data_source`` and ``weights`` are the notebook's defaults; :meth:`table` and :meth:`figure`
    override them per output (a figure of real camera files is not "synthetic"; ``weights`` is
    the weights file an output's model was loaded from, "" for none: trained here or untrained).

    Each ``.meta.json`` records ``wall_time_s``, the cost of that output, with
    ``wall_time_covers`` saying what it covers: by default the seconds since this Reporter's
    previous table or figure was written (since the Reporter was made, for the first), so the
    outputs of a notebook add up to its run time; a caller that timed its own computation gives
    ``seconds=`` instead.
    """

    def __init__(self, paper: str, notebook: str, scale: str = "small", seed: int = 0,
                 device: str | torch.device = "cpu", out_dir: str | os.PathLike | None = None,
                 data_source: str = "synthetic (llve.data.synth)", weights: str | os.PathLike = ""):
        if scale not in SCALES:
            resolve_scale(scale)  # raises the standard unknown-scale error
        self.paper, self.notebook, self.scale, self.seed = paper, notebook, scale, seed
        self.device = resolve_device(device)
        self.data_source = data_source
        self.weights = str(weights)
        self.root = output_root(scale, out_dir)
        self.tables_dir = self.root / "tables" / paper
        self.figures_dir = self.root / "figures" / paper
        self.numbers: dict[str, Any] = {}
        self._previous_output = time.perf_counter()

    def _meta(self, kind: str, output_id: str, caption: str, seconds: float | None = None,
              data_source: str | None = None, weights: str | os.PathLike | None = None,
              **extra) -> dict:
        now = time.perf_counter()
        if seconds is None:
            wall_time, covers = now - self._previous_output, WALL_TIME_SINCE_PREVIOUS
        else:
            if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
                raise InvalidInputError(f"{kind} {output_id!r}: seconds must be a finite number "
                                        f">= 0, got {seconds!r}")
            wall_time, covers = float(seconds), WALL_TIME_GIVEN
        self._previous_output = now
        return {"id": output_id, "kind": kind, "paper": self.paper, "notebook": self.notebook,
                "caption": caption, "scale": self.scale, "seed": self.seed,
                "device": device_name(self.device), "threads": torch.get_num_threads(),
                "torch": torch.__version__, "git_commit": git_commit(),
                "data_source": self.data_source if data_source is None else data_source,
                "weights": self.weights if weights is None else str(weights),
                "wall_time_s": round(wall_time, 3), "wall_time_covers": covers, **extra}

    def table(self, table_id: str, frame: pd.DataFrame, caption: str, protocol: str = "",
              digits: int = 3, seconds: float | None = None, data_source: str | None = None,
              weights: str | os.PathLike | None = None) -> Path:
        """Write ``frame`` as ``<id>.csv`` and ``<id>.md`` (caption, protocol, n/a reasons).

        ``seconds``: the cost of computing the table when the caller timed it (default: the
        time since the previous output); ``data_source`` / ``weights``: this table's, when they
        differ from the Reporter's.
        """
        if frame.empty:
            raise InvalidInputError(f"table {table_id!r} of {self.paper} is empty")
        meta = self._meta("table", table_id, caption, seconds, data_source, weights,
                          protocol=protocol)
        csv_frame = frame.map(lambda value: "n/a" if isinstance(value, NotAvailable) else value)
        write_atomically(self.tables_dir / f"{table_id}.csv", csv_frame.to_csv(index=False))
        lines = [f"**{self.paper} {table_id}.** {caption}", ""]
        if protocol:
            lines += [f"Protocol: {protocol}", ""]
        lines.append(markdown_table(frame, digits))
        reasons = _reasons(frame)
        if reasons:
            lines += ["n/a: " + "; ".join(reasons), ""]
        lines.append(f"_Scale `{self.scale}`, seed {self.seed}; provenance in {table_id}.meta.json._")
        markdown_path = write_atomically(self.tables_dir / f"{table_id}.md", "\n".join(lines) + "\n")
        write_atomically(self.tables_dir / f"{table_id}.meta.json", to_json(meta))
        return markdown_path

    def figure(self, figure_id: str, figure, caption: str, dpi: int = 110,
               seconds: float | None = None, data_source: str | None = None,
               weights: str | os.PathLike | None = None) -> Path:
        """Save a matplotlib ``figure`` as ``<id>.png`` with its provenance.

        ``seconds``, ``data_source``, ``weights``: as for :meth:`table`.
        """
        import io

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight",
                       metadata={"Software": None})
        meta = self._meta("figure", figure_id, caption, seconds, data_source, weights)
        path = write_atomically(self.figures_dir / f"{figure_id}.png", buffer.getvalue())
        write_atomically(self.figures_dir / f"{figure_id}.meta.json", to_json(meta))
        return path

    def record(self, **numbers: Any) -> None:
        """Keep numbers the notebook tests assert on (``<notebook>.numbers.json``).

        Returns nothing, so a notebook cell ending in ``report.record(...)`` prints nothing
        (the numbers may include timings, which would make re-runs differ)."""
        for name, value in numbers.items():
            if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
                value = value.item()
            self.numbers[name] = value
        write_atomically(self.tables_dir / f"{self.notebook}.numbers.json",
                         to_json({"scale": self.scale, "seed": self.seed, **self.numbers}))

    def claims(self, claims: Iterable[Claim], table_id: str = "claims") -> pd.DataFrame:
        """Write the paper's claims check; each row says holds / does not hold / not tested."""
        frame = claims_frame(claims)
        self.table(table_id, frame, caption=f"Claims check for {self.paper} at scale "
                   f"`{self.scale}`: each headline claim of the paper and whether our evidence "
                   "supports it here.")
        self.record(**{f"{table_id}_verdicts": frame["verdict"].tolist()})
        return frame
