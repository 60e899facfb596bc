"""``llve reproduce``: regenerate every table and figure by running the notebooks headless.

Each ``notebooks/<paper>/*.py`` (jupytext py:percent, the source of truth) is turned into an
``.ipynb`` with the ``python3`` kernel set, executed by papermill with the run's parameters
injected (``scale``, ``device``, ``seed``, ``data_root``, ``out_dir``, ``interactive=False``) and
the notebook's own folder as working directory. Widget demos in ``notebooks/demos/`` run with the
paper they belong to and save their static sweep instead of live widgets.

    llve reproduce                      # every paper at the default `small` scale
    llve reproduce --paper lamba --scale ci
    llve reproduce --list
    llve reproduce --scale paper --out /scratch/run1 --data-root /data

Where a run writes (``--out DIR`` confines all of it to DIR):

=====================  ====================================  ===========================
                       without ``--out``                     with ``--out DIR``
=====================  ====================================  ===========================
tables/, figures/      repository root (``small``),          ``DIR/``
                       ``build/<scale>/`` (``ci``, ``paper``)
executed notebooks     ``build/<scale>/notebooks/``          ``DIR/build/<scale>/notebooks/``
staging                ``build/<scale>/staging/``            ``DIR/build/<scale>/staging/``
logs                   ``build/<scale>/logs/``               ``DIR/build/<scale>/logs/``
checkpoints            ``build/<scale>/checkpoints/``        ``DIR/build/<scale>/checkpoints/``
=====================  ====================================  ===========================

A run never loses good outputs: each notebook gets its own staging folder as ``out_dir`` and its
files are moved into the output root (one ``os.replace`` per file) only when it succeeded; a
failed notebook's staging folder stays for inspection and the output root is untouched.
Checkpoints are not staged: they are the run's cache (the training notebook trains, later
notebooks reuse), found through ``llve.report.checkpoint_dir``, which the kernels resolve under
the run's build folder through ``$LLVE_BUILD_DIR``.

``--data-root`` is checked before anything runs: it must be a folder, and each selected paper
whose ``llve.papers.<paper>.experiment`` defines ``check_data_root(data_root)`` checks its layout.

This module imports torch only inside the commands, so ``llve --help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from llve import PAPERS
from llve.errors import DatasetNotFoundError, InvalidInputError, LlveError, UnknownNameError

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_ROOT = REPOSITORY_ROOT / "notebooks"
# The names of ``llve.scales.SCALES`` (kept here so ``--help`` needs no torch; a test keeps them equal).
SCALE_NAMES = ("ci", "small", "paper")
# Widget demos belong to the paper whose control they explore.
DEMO_PAPER = {"amplifier": "lamba", "guidance": "darkdiff"}
LOG_FILE = "reproduce.log"
_LAZY = {"SCALES": "llve.scales", "resolve_device": "llve.scales", "output_root": "llve.report",
         "build_root": "llve.report", "checkpoint_dir": "llve.report"}


def __getattr__(name: str):
    """``llve.reproduce.SCALES`` and friends still work, imported (with torch) on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kernel_environment(headless: bool = True) -> None:
    """Environment every kernel a command starts inherits (set only where the user has not).

    Idle OpenMP threads spin by default; on a 2-core machine shared with the notebook server
    that slowed kernels 2-20x (measured), so idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``;
    it must be set before the kernel loads torch). Headless runs also get periodic progress
    lines instead of live bars (``LLVE_PROGRESS=lines``).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if headless:
        os.environ.setdefault("LLVE_PROGRESS", "lines")


@contextlib.contextmanager
def _build_dir_for_kernels(build: Path):
    """Set ``$LLVE_BUILD_DIR`` (the folder replacing ``<repo>/build``) while kernels run."""
    from llve.report import BUILD_DIR_VARIABLE

    previous = os.environ.get(BUILD_DIR_VARIABLE)
    os.environ[BUILD_DIR_VARIABLE] = str(build.parent)  # build_root() adds the scale back
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(BUILD_DIR_VARIABLE, None)
        else:
            os.environ[BUILD_DIR_VARIABLE] = previous


def discover_notebooks(root: Path = NOTEBOOK_ROOT) -> dict[str, list[Path]]:
    """Notebook sources per paper, in run order (foundations first, demos after their paper)."""
    found: dict[str, list[Path]] = {}
    for paper in PAPERS:
        sources = sorted((root / paper).glob("*.py"))
        if sources:
            found[paper] = sources
    for demo in sorted((root / "demos").glob("*.py")):
        paper = DEMO_PAPER.get(demo.stem)
        if paper is None:
            raise InvalidInputError(f"{demo}: demo notebook not mapped to a paper in DEMO_PAPER")
        found.setdefault(paper, []).append(demo)
    return found


@dataclass
class NotebookRun:
    source: Path
    executed: Path
    seconds: float
    error: str | None = None
    staging: Path | None = None  # kept for inspection when the notebook failed; gone once published
    published: list[Path] = field(default_factory=list)  # files moved into the output root

    @property
    def ok(self) -> bool:
        return self.error is None


def notebook_name(source: Path) -> str:
    return f"{source.parent.name}/{source.stem}"


def to_ipynb(source: Path, destination: Path) -> Path:
    """jupytext py:percent -> .ipynb with the python3 kernel (``jupytext --set-kernel python3``)."""
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    destination.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, destination, fmt="ipynb")
    return destination


def prepare_interactive(source: Path, destination: Path, scale: str = "small",
                        device: str = "cpu", seed: int = 0, out_dir: str | os.PathLike = "",
                        weights: str = "") -> Path:
    """``source`` as an .ipynb with ``interactive=True`` injected (papermill, not executed)."""
    import papermill

    unexecuted = to_ipynb(source, destination.with_suffix(".source.ipynb"))
    parameters = {"interactive": True, "scale": scale, "device": device, "seed": seed,
                  "out_dir": str(out_dir), **({"weights": weights} if weights else {})}
    try:
        papermill.execute_notebook(str(unexecuted), str(destination), prepare_only=True,
                                   kernel_name="python3", parameters=parameters)
    finally:
        unexecuted.unlink(missing_ok=True)
    return destination


def serve_demos(scale: str = "small", device: str = "cpu", port: int = 8866,
                out_dir: str | os.PathLike | None = None, weights: str = "") -> int:
    """Serve every widget demo as a small app with Voila on 127.0.0.1 (``make demo``).

    The prepared notebooks and what the demos write go under ``build_root(scale, out_dir) /
    "demo"``; their kernels find checkpoints where ``llve reproduce`` with the same ``--out``
    put them.
    """
    import subprocess

    from llve.report import build_root

    build = build_root(scale, out_dir)
    folder = build / "demo"
    for source in sorted((NOTEBOOK_ROOT / "demos").glob("*.py")):
        prepare_interactive(source, folder / f"{source.stem}.ipynb", scale, device,
                            out_dir=folder / "outputs", weights=weights)
    kernel_environment(headless=False)  # before Voila starts its kernels: they inherit it
    print(f"serving the demos on http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
    with _build_dir_for_kernels(build):
        return subprocess.call([sys.executable, "-m", "voila", str(folder), "--no-browser",
                                f"--port={port}", "--Voila.ip=127.0.0.1"], cwd=folder)


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` onto ``target`` atomically (a copy + rename across file systems)."""
    try:
        os.replace(source, target)
    except OSError as problem:
        if problem.errno != errno.EXDEV:
            raise
        temporary = target.with_name(f".{target.name}.publishing.tmp")
        try:
            shutil.copy2(source, temporary)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        source.unlink()


def publish(staging: Path, root: Path) -> list[Path]:
    """Move every file of ``staging`` to the same place under ``root``; remove ``staging``.

    Each file is replaced atomically (``os.replace``): a reader sees the old or the new version
    of a file, never a half-written one. Temporaries an interrupted write left are not published.
    """
    published = []
    for path in sorted(staging.rglob("*")):
        if path.is_dir() or (path.name.startswith(".") and path.name.endswith(".tmp")):
            continue
        target = root / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, target)
        published.append(target)
    shutil.rmtree(staging)
    return published


def run_notebook(source: Path, scale: str = "ci", device: str = "cpu", seed: int = 0,
                 data_root: str = "", out_dir: str | os.PathLike | None = None,
                 executed_root: Path | None = None, weights: str = "") -> NotebookRun:
    """Execute one notebook through papermill; never raises for a failing notebook (see ``error``).

    The notebook writes into its own staging folder (``build_root(scale, out_dir) / "staging" /
    <folder> / <stem>``, passed as its ``out_dir``), which is published into
    ``output_root(scale, out_dir)`` only when every cell succeeded; otherwise the output root is
    left as it was and the staging folder is kept (``NotebookRun.staging``). Kernels get
    ``$LLVE_BUILD_DIR`` so their checkpoints go under the same build folder. A non-empty
    ``weights`` (a local file) is injected as the notebooks' ``weights`` parameter.
    """
    import papermill

    from llve.report import build_root, output_root

    root = output_root(scale, out_dir)
    build = build_root(scale, out_dir)
    executed_root = executed_root or build / "notebooks"
    executed = executed_root / source.parent.name / f"{source.stem}.ipynb"
    unexecuted = executed.with_suffix(".input.ipynb")
    staging = build / "staging" / source.parent.name / source.stem
    if staging.exists():
        shutil.rmtree(staging)  # leftovers of an earlier failure must not be published
    staging.mkdir(parents=True)
    parameters = {"scale": scale, "device": device, "seed": seed, "data_root": data_root,
                  "out_dir": str(staging), "interactive": False,
                  **({"weights": weights} if weights else {})}
    kernel_environment(headless=True)
    started = time.perf_counter()
    error = None
    try:
        with _build_dir_for_kernels(build):
            papermill.execute_notebook(str(to_ipynb(source, unexecuted)), str(executed),
                                       parameters=parameters, cwd=str(source.parent),
                                       kernel_name="python3", progress_bar=False,
                                       log_output=False)
    except papermill.PapermillExecutionError as failure:
        error = f"cell {failure.exec_count}: {failure.ename}: {failure.evalue}"
    except Exception as failure:  # a dead kernel, an unreadable notebook ...: still a failed run
        error = f"{type(failure).__name__}: {failure}"
    finally:
        unexecuted.unlink(missing_ok=True)
    published: list[Path] = []
    if error is None:
        try:
            published = publish(staging, root)
        except OSError as failure:
            error = f"publishing {staging} into {root} failed: {failure}"
    return NotebookRun(source, executed, time.perf_counter() - started, error,
                       staging=None if error is None else staging, published=published)


def check_weights(weights: str) -> str:
    """``weights`` made absolute after checking it is a file ("" passes: each paper's default).

    What the file holds is checked by the paper that loads it (a wrong network or format is a
    ``CheckpointError`` naming the file); here only that it exists, before anything runs.
    """
    if not weights:
        return ""
    path = Path(weights).expanduser().resolve()
    if not path.is_file():
        raise InvalidInputError(f"--weights {weights}: no such file ({path}); give a local "
                                "weights file (llve never downloads one) or leave it empty")
    return str(path)


def check_data_root(data_root: str, papers) -> str:
    """``data_root`` made absolute, after checking it fits every paper in ``papers``.

    An empty ``data_root`` (synthetic data) passes. Otherwise it must be a folder, and each
    paper whose ``llve.papers.<paper>.experiment`` defines ``check_data_root(data_root)``
    checks its own layout there (raising an llve error that names the expected tree and what
    is missing). Absolute, because notebooks run in their own folder.
    """
    import importlib

    if not data_root:
        return ""
    path = Path(data_root).expanduser().resolve()
    if not path.is_dir():
        raise DatasetNotFoundError(f"--data-root {data_root}: no such folder ({path}); give the "
                                   "folder that holds the real datasets, or none for synthetic data")
    for paper in papers:
        module_name = f"llve.papers.{paper}.experiment"
        try:
            experiment = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name in (module_name, f"llve.papers.{paper}"):
                continue  # a paper without an experiment module has nothing to check
            raise
        check = getattr(experiment, "check_data_root", None)
        if check is not None:
            check(str(path))
    return str(path)


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llve", description="llve: low-light enhancement companion")
    commands = parser.add_subparsers(dest="command", required=True)
    reproduce = commands.add_parser("reproduce", help="regenerate tables and figures via papermill")
    reproduce.add_argument("--paper", action="append", default=None, metavar="P",
                           help=f"paper(s) to run (repeatable): {', '.join(PAPERS)}; default all")
    reproduce.add_argument("--scale", default="small", help=f"one of {', '.join(SCALE_NAMES)} (default small)")
    reproduce.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    reproduce.add_argument("--seed", type=int, default=0)
    reproduce.add_argument("--data-root", default=os.environ.get("LLVE_DATA", ""),
                           help="root of real datasets, checked before anything runs "
                                "(default $LLVE_DATA; synthetic data if empty)")
    reproduce.add_argument("--weights", default=os.environ.get("LLVE_WEIGHTS", ""),
                           help="a local weights file the notebooks load (default $LLVE_WEIGHTS; "
                                "empty: each paper's default, e.g. lamba's released weights in "
                                "../shared/official when present)")
    reproduce.add_argument("--out", default=None,
                           help="confine every write of the run to this folder: figures/ and "
                                "tables/ in it, executed notebooks, staging, logs and checkpoints "
                                "under its build/<scale>/ (default: the repository, by scale)")
    reproduce.add_argument("--list", action="store_true", help="list the notebooks and exit")
    demo = commands.add_parser("demo", help="serve the widget demos with Voila on 127.0.0.1")
    demo.add_argument("--scale", default="small", help="scale of the model the demos load")
    demo.add_argument("--device", default="cpu")
    demo.add_argument("--port", type=int, default=8866)
    demo.add_argument("--weights", default=os.environ.get("LLVE_WEIGHTS", ""),
                      help="a local weights file the demos restore with (default $LLVE_WEIGHTS)")
    demo.add_argument("--out", default=None,
                      help="the --out of the reproduce run whose checkpoints the demos load; "
                           "their files go under its build/<scale>/demo/")
    training = commands.add_parser("train", help="train one paper's model (works under torchrun)")
    training.add_argument("--paper", required=True, help="paper whose recipe to run, e.g. lamba")
    training.add_argument("--model", required=True, help="model of that paper, e.g. lamba or sid_unet")
    training.add_argument("--scale", default="paper", help=f"one of {', '.join(SCALE_NAMES)} (default paper)")
    training.add_argument("--device", default="auto", help="auto | cpu | cuda (torchrun: one GPU per rank)")
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--data-root", default=os.environ.get("LLVE_DATA", ""),
                          help="root of real datasets (default $LLVE_DATA; synthetic data if empty)")
    training.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="extra recipe argument, e.g. --set rdb=canonical (repeatable)")
    return parser.parse_args(argv)


def _check_scale(scale: str) -> None:
    if scale not in SCALE_NAMES:
        raise UnknownNameError(f"unknown scale {scale!r}: expected one of {', '.join(SCALE_NAMES)}")


def _train(arguments: argparse.Namespace) -> int:
    import importlib

    extra = dict(item.split("=", 1) for item in arguments.set if "=" in item)
    if len(extra) != len(arguments.set):
        raise InvalidInputError(f"--set expects KEY=VALUE, got {arguments.set}")
    _check_scale(arguments.scale)
    if arguments.paper not in PAPERS[1:]:
        raise UnknownNameError(f"no training recipe for paper {arguments.paper!r}: expected one "
                               f"of {', '.join(PAPERS[1:])}")
    try:
        experiment = importlib.import_module(f"llve.papers.{arguments.paper}.experiment")
    except ModuleNotFoundError:
        raise UnknownNameError(f"paper {arguments.paper!r} has no training recipe yet "
                               f"(no llve/papers/{arguments.paper}/experiment.py)") from None
    data_root = check_data_root(arguments.data_root, [arguments.paper])
    kernel_environment(headless=True)
    result = experiment.train_model(arguments.model, scale=arguments.scale, seed=arguments.seed,
                                      device=arguments.device, data_root=data_root, **extra)
    print(f"trained {arguments.paper}/{arguments.model}: step {result.step}, "
          f"checkpoints and log in {result.out_dir}")
    return 0


def _select(notebooks: dict[str, list[Path]], papers: list[str] | None) -> dict[str, list[Path]]:
    if not papers:
        return notebooks
    unknown = [paper for paper in papers if paper not in PAPERS]
    if unknown:
        raise UnknownNameError(f"unknown paper(s) {unknown}: expected some of {', '.join(PAPERS)}")
    missing = [paper for paper in papers if paper not in notebooks]
    if missing:
        raise InvalidInputError(f"paper(s) {missing} have no notebooks yet under {NOTEBOOK_ROOT}")
    return {paper: notebooks[paper] for paper in papers}


def _error(problem: Exception) -> int:
    print(f"llve: error: {problem}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    arguments = _parse_arguments(argv)
    if arguments.command == "demo":
        try:
            _check_scale(arguments.scale)
        except UnknownNameError as problem:
            return _error(problem)
        try:
            weights = check_weights(arguments.weights)
        except InvalidInputError as problem:
            return _error(problem)
        return serve_demos(arguments.scale, arguments.device, arguments.port, arguments.out,
                           weights)
    if arguments.command == "train":
        try:
            return _train(arguments)
        except (LlveError, FileNotFoundError, NotADirectoryError) as problem:
            return _error(problem)
    from llve.report import build_root, output_root
    from llve.scales import resolve_device

    try:
        selected = _select(discover_notebooks(), arguments.paper)
        _check_scale(arguments.scale)
        device = str(resolve_device(arguments.device))
    except (UnknownNameError, InvalidInputError) as problem:
        return _error(problem)
    sources = [source for paper_sources in selected.values() for source in paper_sources]
    if arguments.list:
        for paper, paper_sources in selected.items():
            print(paper)
            for source in paper_sources:
                print(f"  {source.relative_to(REPOSITORY_ROOT)}")
        return 0
    try:  # before anything is written
        data_root = check_data_root(arguments.data_root, selected)
        weights = check_weights(arguments.weights)
    except (LlveError, FileNotFoundError, NotADirectoryError) as problem:
        return _error(problem)
    root = output_root(arguments.scale, arguments.out)
    build = build_root(arguments.scale, arguments.out)
    log_path = build / "logs" / LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def say(line: str, stream=sys.stdout) -> None:
        print(line, file=stream, flush=True)
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    say(f"llve reproduce: {len(sources)} notebook(s), scale {arguments.scale}, device {device}, "
        f"seed {arguments.seed}, data {data_root or 'synthetic'}, outputs under {root}, "
        f"build products under {build}")
    runs = []
    for index, source in enumerate(sources, 1):
        say(f"[{index}/{len(sources)}] {notebook_name(source)} ...")
        run = run_notebook(source, arguments.scale, device, arguments.seed, data_root,
                           arguments.out, weights=weights)
        runs.append(run)
        status = (f"ok, published {len(run.published)} file(s)" if run.ok
                  else f"FAILED ({run.error}); outputs not published, kept in {run.staging}")
        say(f"[{index}/{len(sources)}] {notebook_name(source)} {status} in {run.seconds:.1f} s")
    failed = [run for run in runs if not run.ok]
    say(f"summary: {len(runs) - len(failed)} ok, {len(failed)} failed, "
        f"{sum(run.seconds for run in runs):.1f} s in all")
    print(f"tables:  {root / 'tables'}\nfigures: {root / 'figures'}\n"
          f"executed notebooks: {build / 'notebooks'}\nlog: {log_path}")
    for run in failed:
        say(f"failed: {notebook_name(run.source)} -> see {run.executed} (staged outputs in "
            f"{run.staging}): {run.error}", stream=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
