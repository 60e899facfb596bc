"""``llve reproduce``: regenerate every table and figure by running the notebooks headless.

Each ``notebooks/<paper>/*.py`` (jupytext py:percent, the source of truth) is turned into an
``.ipynb`` with the ``python3`` kernel set, executed by papermill with the run's parameters
injected (``scale``, ``device``, ``seed``, ``data_root``, ``out_dir``, ``interactive=False``) and
the notebook's own folder as working directory, and kept, executed, under
``build/<scale>/notebooks/``. Widget demos in ``notebooks/demos/`` run with the paper they belong
to and save their static sweep instead of live widgets.

    llve reproduce                      # every paper at the default `small` scale
    llve reproduce --paper lamba --scale ci
    llve reproduce --list

At ``ci`` scale outputs go under ``build/ci/`` and the committed ``figures/`` and ``tables/`` are
left untouched; ``small`` writes the committed outputs; ``paper`` writes under ``build/paper/``
unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from llve import PAPERS
from llve.errors import InvalidInputError, UnknownNameError
from llve.report import REPOSITORY_ROOT, output_root
from llve.scales import SCALES, resolve_device

NOTEBOOK_ROOT = REPOSITORY_ROOT / "notebooks"
# Widget demos belong to the paper whose control they explore.
DEMO_PAPER = {"amplifier": "lamba", "guidance": "darkdiff"}


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
                        device: str = "cpu", seed: int = 0, out_dir: str | os.PathLike = "") -> Path:
    """``source`` as an .ipynb with ``interactive=True`` injected (papermill, not executed)."""
    import papermill

    unexecuted = to_ipynb(source, destination.with_suffix(".source.ipynb"))
    parameters = {"interactive": True, "scale": scale, "device": device, "seed": seed,
                  "out_dir": str(out_dir)}
    try:
        papermill.execute_notebook(str(unexecuted), str(destination), prepare_only=True,
                                   kernel_name="python3", parameters=parameters)
    finally:
        unexecuted.unlink(missing_ok=True)
    return destination


def serve_demos(scale: str = "small", device: str = "cpu", port: int = 8866) -> int:
    """Serve every widget demo as a small app with Voila on 127.0.0.1 (``make demo``)."""
    import subprocess

    folder = REPOSITORY_ROOT / "build" / "demo"
    for source in sorted((NOTEBOOK_ROOT / "demos").glob("*.py")):
        prepare_interactive(source, folder / f"{source.stem}.ipynb", scale, device,
                            out_dir=REPOSITORY_ROOT / "build" / "demo" / "outputs")
    print(f"serving the demos on http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
    return subprocess.call([sys.executable, "-m", "voila", str(folder), "--no-browser",
                            f"--port={port}", "--Voila.ip=127.0.0.1"], cwd=folder)


def run_notebook(source: Path, scale: str = "ci", device: str = "cpu", seed: int = 0,
                 data_root: str = "", out_dir: str | os.PathLike | None = None,
                 executed_root: Path | None = None) -> NotebookRun:
    """Execute one notebook through papermill; never raises for a failing cell (see ``error``)."""
    import papermill

    root = output_root(scale, out_dir)
    executed_root = executed_root or REPOSITORY_ROOT / "build" / scale / "notebooks"
    executed = executed_root / source.parent.name / f"{source.stem}.ipynb"
    unexecuted = executed.with_suffix(".input.ipynb")
    parameters = {"scale": scale, "device": device, "seed": seed, "data_root": data_root,
                  "out_dir": str(root), "interactive": False}
    os.environ.setdefault("LLVE_PROGRESS", "lines")  # kernels inherit it: no live bars headless
    # Idle OpenMP threads spin by default; on a 2-core machine shared with the notebook server
    # that slowed kernels 2-20x (measured). Sleeping idle threads cost almost nothing here.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    started = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(str(to_ipynb(source, unexecuted)), str(executed),
                                   parameters=parameters, cwd=str(source.parent),
                                   kernel_name="python3", progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as failure:
        error = f"cell {failure.exec_count}: {failure.ename}: {failure.evalue}"
    finally:
        unexecuted.unlink(missing_ok=True)
    return NotebookRun(source, executed, time.perf_counter() - started, error)


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llve", description="llve: low-light enhancement companion")
    commands = parser.add_subparsers(dest="command", required=True)
    reproduce = commands.add_parser("reproduce", help="regenerate tables and figures via papermill")
    reproduce.add_argument("--paper", action="append", default=None, metavar="P",
                           help=f"paper(s) to run (repeatable): {', '.join(PAPERS)}; default all")
    reproduce.add_argument("--scale", default="small", help=f"one of {', '.join(SCALES)} (default small)")
    reproduce.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    reproduce.add_argument("--seed", type=int, default=0)
    reproduce.add_argument("--data-root", default=os.environ.get("LLVE_DATA", ""),
                           help="root of real datasets (default $LLVE_DATA; synthetic data if empty)")
    reproduce.add_argument("--out", default=None,
                           help="output root for figures/ and tables/ (default depends on scale)")
    reproduce.add_argument("--list", action="store_true", help="list the notebooks and exit")
    demo = commands.add_parser("demo", help="serve the widget demos with Voila on 127.0.0.1")
    demo.add_argument("--scale", default="small", help="scale of the model the demos load")
    demo.add_argument("--device", default="cpu")
    demo.add_argument("--port", type=int, default=8866)
    training = commands.add_parser("train", help="train one paper's model (works under torchrun)")
    training.add_argument("--paper", required=True, help="paper whose recipe to run, e.g. lamba")
    training.add_argument("--model", required=True, help="model of that paper, e.g. lamba or sid_unet")
    training.add_argument("--scale", default="paper", help=f"one of {', '.join(SCALES)} (default paper)")
    training.add_argument("--device", default="auto", help="auto | cpu | cuda (torchrun: one GPU per rank)")
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--data-root", default=os.environ.get("LLVE_DATA", ""),
                          help="root of real datasets (default $LLVE_DATA; synthetic data if empty)")
    training.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="extra recipe argument, e.g. --set rdb=canonical (repeatable)")
    return parser.parse_args(argv)


def _train(arguments: argparse.Namespace) -> int:
    import importlib

    extra = dict(item.split("=", 1) for item in arguments.set if "=" in item)
    if len(extra) != len(arguments.set):
        raise InvalidInputError(f"--set expects KEY=VALUE, got {arguments.set}")
    if arguments.scale not in SCALES:
        raise UnknownNameError(f"unknown scale {arguments.scale!r}: expected one of {', '.join(SCALES)}")
    if arguments.paper not in PAPERS[1:]:
        raise UnknownNameError(f"no training recipe for paper {arguments.paper!r}: expected one "
                               f"of {', '.join(PAPERS[1:])}")
    try:
        experiment = importlib.import_module(f"llve.papers.{arguments.paper}.experiment")
    except ModuleNotFoundError:
        raise UnknownNameError(f"paper {arguments.paper!r} has no training recipe yet "
                               f"(no llve/papers/{arguments.paper}/experiment.py)") from None
    result = experiment.train_model(arguments.model, scale=arguments.scale, seed=arguments.seed,
                                      device=arguments.device, data_root=arguments.data_root, **extra)
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


def main(argv: list[str] | None = None) -> int:
    arguments = _parse_arguments(argv)
    if arguments.command == "demo":
        return serve_demos(arguments.scale, arguments.device, arguments.port)
    if arguments.command == "train":
        try:
            return _train(arguments)
        except (UnknownNameError, InvalidInputError) as problem:
            print(f"llve: error: {problem}", file=sys.stderr)
            return 2
    try:
        selected = _select(discover_notebooks(), arguments.paper)
        if arguments.scale not in SCALES:
            raise UnknownNameError(f"unknown scale {arguments.scale!r}: expected one of {', '.join(SCALES)}")
        device = str(resolve_device(arguments.device))
    except (UnknownNameError, InvalidInputError) as problem:
        print(f"llve: error: {problem}", file=sys.stderr)
        return 2
    sources = [source for paper_sources in selected.values() for source in paper_sources]
    if arguments.list:
        for paper, paper_sources in selected.items():
            print(paper)
            for source in paper_sources:
                print(f"  {source.relative_to(REPOSITORY_ROOT)}")
        return 0
    root = output_root(arguments.scale, arguments.out)
    print(f"llve reproduce: {len(sources)} notebook(s), scale {arguments.scale}, device {device}, "
          f"outputs under {root}", flush=True)
    runs = []
    for index, source in enumerate(sources, 1):
        print(f"[{index}/{len(sources)}] {notebook_name(source)} ...", flush=True)
        run = run_notebook(source, arguments.scale, device, arguments.seed, arguments.data_root,
                           arguments.out)
        runs.append(run)
        status = "ok" if run.ok else f"FAILED ({run.error})"
        print(f"[{index}/{len(sources)}] {notebook_name(source)} {status} in {run.seconds:.1f} s",
              flush=True)
    failed = [run for run in runs if not run.ok]
    print(f"\nsummary: {len(runs) - len(failed)} ok, {len(failed)} failed, "
          f"{sum(run.seconds for run in runs):.1f} s in all")
    print(f"tables:  {root / 'tables'}\nfigures: {root / 'figures'}\n"
          f"executed notebooks: {REPOSITORY_ROOT / 'build' / arguments.scale / 'notebooks'}")
    for run in failed:
        print(f"failed: {notebook_name(run.source)} -> see {run.executed}: {run.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
