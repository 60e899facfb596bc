"""The ``llve`` command line: listing, argument errors, and the python -m entry point."""

import subprocess
import sys

from llve.reproduce import discover_notebooks, main


def test_list_names_every_notebook(capsys):
    assert main(["reproduce", "--list"]) == 0
    printed = capsys.readouterr().out
    for sources in discover_notebooks().values():
        for source in sources:
            assert source.name in printed


def test_unknown_scale_and_paper_are_clear_errors(capsys):
    assert main(["reproduce", "--scale", "huge"]) == 2
    assert "unknown scale 'huge'" in capsys.readouterr().err
    assert main(["reproduce", "--paper", "nope"]) == 2
    assert "unknown paper(s) ['nope']" in capsys.readouterr().err


def test_cuda_without_gpu_is_refused(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["reproduce", "--device", "cuda", "--list"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "llve", "reproduce", "--list"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "foundations" in result.stdout


def test_train_command_rejects_unknown_paper_and_bad_options(capsys):
    assert main(["train", "--paper", "nope", "--model", "x"]) == 2
    assert "no training recipe for paper 'nope'" in capsys.readouterr().err
    assert main(["train", "--paper", "lamba", "--model", "lamba", "--set", "rdb"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_train_command_runs_a_ci_recipe_under_torchrun(tmp_path):
    """Two CPU processes (gloo) through the console entry point: the README's multi-GPU route."""
    import os

    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", "-m", "llve", "train",
         "--paper", "lamba", "--model", "lamba", "--scale", "ci", "--device", "cpu",
         "--set", f"out_dir={tmp_path}"],
        capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained lamba/lamba" in result.stdout
    assert list(tmp_path.rglob("step_*.pt"))
