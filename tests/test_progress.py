"""llve.progress: mode selection (override, terminal, Jupyter kernels, papermill) and output."""

from __future__ import annotations

import re
import sys

import pytest

from llve import progress as progress_module
from llve.errors import InvalidInputError
from llve.progress import format_duration, looks_like_jupyter_server, progress, progress_mode


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv("LLVE_PROGRESS", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def test_lines_mode_prints_every_ten_percent_with_rate_eta_and_postfix(monkeypatch, capsys):
    monkeypatch.setenv("LLVE_PROGRESS", "lines")
    bar = progress(range(100), description="train")
    for index in bar:
        bar.set_postfix({"loss": 1.0 / (index + 1)})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("train: 10/100 it (10%) | ")
    assert re.search(r"\d+(\.\d+)? (it/s|s/it) \| \S+ (s|min|h) elapsed \| ETA ", lines[0])
    assert "loss=0.1" in lines[0]
    assert lines[-1].startswith("train: 100/100 it (100%)") and "ETA" not in lines[-1]


def test_lines_mode_without_total_prints_on_the_clock_and_at_close(monkeypatch, capsys):
    monkeypatch.setenv("LLVE_PROGRESS", "lines")
    with progress(description="frames", unit="frame", min_interval_s=3600) as counter:
        counter.update(3)
        counter.update(2)
        assert capsys.readouterr().out == ""  # neither a milestone nor an hour has passed
    assert capsys.readouterr().out.startswith("frames: 5 frame | ")
    with progress(description="ticks", min_interval_s=0.0) as counter:
        counter.update()
        counter.update()
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_lines_mode_resumed_count_starts_part_way(monkeypatch, capsys):
    monkeypatch.setenv("LLVE_PROGRESS", "lines")
    with progress(total=10, initial=6, description="train") as counter:
        counter.update(4)
    assert capsys.readouterr().out.startswith("train: 10/10 it (100%)")


def test_bar_mode_uses_tqdm(monkeypatch, capsys):
    from tqdm import tqdm

    monkeypatch.setenv("LLVE_PROGRESS", "bar")
    bar = progress(range(5), description="demo")
    assert bar.mode == "bar" and isinstance(bar.bar, tqdm)
    for _ in bar:
        bar.set_postfix(loss=0.5)
    err = capsys.readouterr().err
    assert "demo" in err and "5/5" in err and "loss=0.5" in err


def test_off_mode_and_disable_are_silent_but_count(monkeypatch, capsys):
    monkeypatch.setenv("LLVE_PROGRESS", "off")
    assert list(progress([1, 2, 3])) == [1, 2, 3]
    monkeypatch.setenv("LLVE_PROGRESS", "lines")
    with progress(total=4, disable=True) as counter:
        counter.update(4)
    assert counter.n == 4 and counter.mode == "off"
    assert capsys.readouterr() == ("", "")


def test_unknown_override_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LLVE_PROGRESS", "fancy")
    with pytest.raises(InvalidInputError, match="LLVE_PROGRESS='fancy'"):
        progress_mode()


def test_headless_outside_a_kernel_follows_the_terminal(no_override, monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    assert progress_mode() == "lines"
    monkeypatch.setattr(sys, "stderr", _Stream(tty=True))
    assert progress_mode() == "bar"


@pytest.mark.parametrize("session, launcher, expected", [
    (None, "/usr/bin/python3 /venv/bin/jupyter-lab --allow-root", "lines"),  # no notebook session
    ("nb.ipynb", "/venv/bin/python /venv/bin/jupyter-lab --allow-root", "bar"),
    ("nb.ipynb", "/venv/bin/python -m voila notebooks/demos/amplifier.ipynb", "bar"),
    ("nb.ipynb", "/venv/bin/python /venv/bin/papermill in.ipynb out.ipynb", "lines"),
    ("nb.ipynb", "/venv/bin/python -m llve reproduce --scale ci", "lines"),
    ("nb.ipynb", None, "bar"),  # launcher unreadable (no /proc): the session name decides
])
def test_kernel_mode_needs_a_notebook_session_started_by_a_jupyter_server(
        no_override, monkeypatch, session, launcher, expected):
    monkeypatch.setattr(progress_module, "_inside_jupyter_kernel", lambda: True)
    monkeypatch.setattr(progress_module, "_command_line", lambda pid: launcher)
    if session:
        monkeypatch.setenv("JPY_SESSION_NAME", session)
    assert progress_mode() == expected


def test_jupyter_server_command_lines():
    assert looks_like_jupyter_server("/opt/conda/bin/python -m jupyterlab")
    assert looks_like_jupyter_server("/usr/bin/python3 /usr/local/bin/jupyter-notebook")
    assert looks_like_jupyter_server("python -m jupyter_server --port 8888")
    assert not looks_like_jupyter_server("python -m papermill a.ipynb b.ipynb")
    assert not looks_like_jupyter_server("python -m pytest tests")


def test_durations_read_as_seconds_minutes_hours():
    assert [format_duration(s) for s in (3.21, 300, 9000)] == ["3.2 s", "5.0 min", "2.5 h"]


@pytest.mark.slow
def test_papermill_kernel_is_headless_even_with_a_session_name(tmp_path, monkeypatch):
    """A real kernel started by papermill (from a process that is not a Jupyter server) picks
    ``lines``, also when it inherits JPY_SESSION_NAME (papermill run from a notebook cell)."""
    nbformat = pytest.importorskip("nbformat")
    papermill = pytest.importorskip("papermill")
    monkeypatch.delenv("LLVE_PROGRESS", raising=False)
    monkeypatch.setenv("JPY_SESSION_NAME", "outer.ipynb")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import sys; sys.path.insert(0, %r)\n"
        "from llve.progress import progress, progress_mode\n"
        "import os; print('session', os.environ.get('JPY_SESSION_NAME'))\n"
        "print('mode', progress_mode())\n"
        "for _ in progress(range(20), description='cells'): pass" % str(_repository_root()))]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(notebook, source)
    papermill.execute_notebook(str(source), str(executed), kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path))
    outputs = nbformat.read(executed, as_version=4).cells[0].outputs
    text = "".join(output.get("text", "") for output in outputs)
    assert "session outer.ipynb" in text  # the kernel did inherit the session name
    assert "mode lines" in text
    assert "cells: 20/20 it (100%)" in text
    assert not any(output.output_type == "display_data" for output in outputs)  # no widget


def _repository_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
