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
