"""The ``llve`` command line: listing, argument errors, and the python -m entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# --------------------------------------------------------------------------- issue #6


def test_help_does_not_import_torch():
    """``llve --help`` answers at once: torch (seconds to import) loads only inside a command."""
    script = ("import sys, llve.reproduce\n"
              "for argv in (['--help'], ['reproduce', '--help'], ['train', '--help']):\n"
              "    try:\n        llve.reproduce.main(argv)\n    except SystemExit:\n        pass\n"
              "assert 'torch' not in sys.modules, 'torch imported'\n"
              "assert 'pandas' not in sys.modules, 'pandas imported'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ci, small, paper" in result.stdout


def test_scale_names_of_the_help_are_the_scales():
    from llve import reproduce
    from llve.scales import SCALES

    assert reproduce.SCALE_NAMES == tuple(SCALES)
    assert reproduce.SCALES is SCALES  # still importable from here (lazily)


def test_demo_sets_passive_openmp_and_the_run_layout_before_voila(tmp_path, monkeypatch):
    from llve import reproduce
    from llve.report import BUILD_DIR_VARIABLE

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv(BUILD_DIR_VARIABLE, raising=False)
    prepared, seen = [], {}
    monkeypatch.setattr(reproduce, "prepare_interactive",
                        lambda source, destination, *args, **kwargs: prepared.append(
                            (destination, kwargs["out_dir"])))

    def voila(command, cwd):
        seen.update(omp=os.environ.get("OMP_WAIT_POLICY"), build=os.environ.get(BUILD_DIR_VARIABLE),
                    cwd=cwd, command=command)
        return 0

    monkeypatch.setattr(subprocess, "call", voila)
    assert main(["demo", "--out", str(tmp_path), "--port", "8999"]) == 0
    assert seen["omp"] == "PASSIVE" and "--port=8999" in seen["command"]
    assert seen["build"] == str(tmp_path / "build")  # demos find the run's checkpoints
    assert seen["cwd"] == tmp_path / "build" / "small" / "demo"
    assert prepared and all(destination.parent == seen["cwd"] and out == seen["cwd"] / "outputs"
                            for destination, out in prepared)
    assert os.environ.get(BUILD_DIR_VARIABLE) is None  # only for Voila's kernels


def test_kernel_environment_keeps_what_the_user_set(monkeypatch):
    from llve.reproduce import kernel_environment

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv("LLVE_PROGRESS", raising=False)
    kernel_environment(headless=False)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and "LLVE_PROGRESS" not in os.environ
    kernel_environment(headless=True)
    assert os.environ["LLVE_PROGRESS"] == "lines"


def test_missing_data_root_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["reproduce", "--scale", "ci", "--device", "cpu", "--paper", "foundations",
                 "--data-root", str(tmp_path / "nope"), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err
    assert "--data-root" in error and "nope" in error and "no such folder" in error
    assert not out.exists()


def test_missing_weights_file_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.delenv("LLVE_WEIGHTS", raising=False)
    code = main(["reproduce", "--scale", "ci", "--device", "cpu", "--paper", "lamba",
                 "--weights", str(tmp_path / "missing.pth"), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err
    assert "--weights" in error and "missing.pth" in error and "no such file" in error
    assert not out.exists()


def test_weights_reach_the_notebooks_as_a_parameter(tmp_path):
    from llve.reproduce import check_weights, prepare_interactive

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    assert check_weights(str(weights)) == str(weights.resolve()) and check_weights("") == ""
    source = tmp_path / "demo.py"
    source.write_text('# %% tags=["parameters"]\nweights = ""\nscale = "ci"\n\n# %%\nprint(weights)\n')
    prepared = prepare_interactive(source, tmp_path / "demo.ipynb", "ci", weights=str(weights))
    import nbformat

    injected = [cell for cell in nbformat.read(prepared, as_version=4).cells
                if "injected-parameters" in cell.metadata.get("tags", [])]
    assert len(injected) == 1 and f'weights = "{weights}"' in injected[0].source


def test_a_papers_data_root_check_runs_first_and_stops_the_run(tmp_path, capsys, monkeypatch):
    import types

    from llve.errors import DatasetNotFoundError
    from llve.report import BUILD_DIR_VARIABLE

    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    checked = []

    def check_data_root(data_root):
        checked.append(data_root)
        raise DatasetNotFoundError(f"{data_root}: expected\n  Sony/short/*.ARW\n  Sony/long/*.ARW\n"
                                   "missing: Sony/")

    fake = types.ModuleType("llve.papers.lamba.experiment")
    fake.check_data_root = check_data_root
    monkeypatch.setitem(sys.modules, "llve.papers.lamba.experiment", fake)
    monkeypatch.setenv(BUILD_DIR_VARIABLE, str(tmp_path / "build"))  # where a run without --out builds
    for extra in (["--out", str(out)], []):
        code = main(["reproduce", "--scale", "ci", "--device", "cpu", "--paper", "lamba",
                     "--data-root", str(data), *extra])
        assert code == 2
        assert "missing: Sony/" in capsys.readouterr().err
    assert checked == [str(data.resolve())] * 2
    assert not out.exists() and not (tmp_path / "build").exists()  # no staging, no build folder


def test_papers_without_a_check_accept_an_existing_data_root(tmp_path):
    from llve.reproduce import check_data_root

    assert check_data_root("", ["foundations"]) == ""
    assert check_data_root(str(tmp_path), ["foundations"]) == str(tmp_path.resolve())


def test_publish_moves_each_file_with_os_replace(tmp_path, monkeypatch):
    from llve import reproduce

    staging, root = tmp_path / "staging", tmp_path / "root"
    for folder, name, text in ((staging, "tables/p/t1.csv", "new"), (staging, "figures/p/f.png", "png"),
                               (staging, "tables/p/.t2.csv.abc.tmp", "half"),
                               (root, "tables/p/t1.csv", "old"), (root, "tables/p/kept.csv", "kept")):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(reproduce.os, "replace",
                        lambda source, target: (replaced.append(Path(target)), real_replace(source, target)))
    published = reproduce.publish(staging, root)
    assert sorted(published) == sorted(replaced) == [root / "figures/p/f.png", root / "tables/p/t1.csv"]
    assert (root / "tables/p/t1.csv").read_text() == "new"
    assert (root / "tables/p/kept.csv").read_text() == "kept"
    assert not (root / "tables/p/.t2.csv.abc.tmp").exists() and not staging.exists()


def test_makefile_lab_sets_the_jupytext_viewer_inside_the_venv():
    from llve.reproduce import REPOSITORY_ROOT

    makefile = (REPOSITORY_ROOT / "Makefile").read_text()
    recipe = makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()[1:]]
    assert lines[0].startswith("$(BIN)/jupytext-config --settings-file $(LABCONFIG) set-default-viewer")
    assert lines[-1].startswith("$(BIN)/jupyter lab")
    assert "LABCONFIG := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json" in makefile


def test_jupytext_config_writes_the_viewer_setting_idempotently(tmp_path):
    from llve.reproduce import REPOSITORY_ROOT

    settings = tmp_path / "labconfig" / "default_setting_overrides.json"
    command = [str(REPOSITORY_ROOT / ".venv" / "bin" / "jupytext-config"), "--settings-file",
               str(settings), "set-default-viewer"]
    if not Path(command[0]).exists():
        pytest.skip("no .venv/bin/jupytext-config")
    for _ in range(2):
        subprocess.run(command, check=True, capture_output=True)
    viewers = json.loads(settings.read_text())["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["python"] == "Jupytext Notebook"
