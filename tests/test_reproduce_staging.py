"""``llve reproduce`` never loses good outputs, and ``--out`` confines every write (issue #6).

Each test runs one tiny jupytext notebook through papermill (a kernel start and a torch import:
a few seconds), so they are marked slow.
"""

import uuid

import pytest

from llve import reproduce
from llve.report import BUILD_DIR_VARIABLE, REPOSITORY_ROOT

NOTEBOOK = '''# %% tags=["parameters"]
scale = "small"
device = "cpu"
seed = 0
data_root = ""
out_dir = ""
interactive = False

# %%
import pandas as pd

from llve.report import Reporter, checkpoint_dir

report = Reporter("foundations", "{stem}", scale=scale, seed=seed, device=device, out_dir=out_dir)
checkpoints = checkpoint_dir("foundations", scale, "{stem}")
checkpoints.mkdir(parents=True, exist_ok=True)
(checkpoints / "step_00000001.pt").write_text("weights")
report.table("{stem}", pd.DataFrame({{"psnr": [30.0]}}), caption="from the new run")
report.record(psnr_db=30.0)

# %%
if {fail}:
    raise RuntimeError("boom after writing a table")
'''


def fake_notebook(tmp_path, fail: bool):
    stem = f"99_fake_{uuid.uuid4().hex[:8]}"
    source = tmp_path / "notebooks" / "foundations" / f"{stem}.py"
    source.parent.mkdir(parents=True)
    source.write_text(NOTEBOOK.format(stem=stem, fail=fail))
    return source, stem


def listing(root):
    return {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}


@pytest.fixture(autouse=True)
def no_inherited_build_dir(monkeypatch):
    monkeypatch.delenv(BUILD_DIR_VARIABLE, raising=False)


@pytest.mark.slow
def test_a_failing_notebook_leaves_the_output_root_as_it_was(tmp_path):
    source, stem = fake_notebook(tmp_path, fail=True)
    out = tmp_path / "out"
    good = {out / "tables" / "foundations" / f"{stem}.csv": "psnr\n31.5\n",
            out / "tables" / "foundations" / f"{stem}.numbers.json": '{"psnr_db": 31.5}\n',
            out / "figures" / "foundations" / "fig.png": "committed figure"}
    for path, text in good.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    before = {path: mtime for path, mtime in listing(out).items() if "build" not in path.parts}

    run = reproduce.run_notebook(source, scale="ci", device="cpu", seed=0, out_dir=out)

    assert not run.ok and "RuntimeError: boom after writing a table" in run.error
    assert {path: mtime for path, mtime in listing(out).items() if "build" not in path.parts} == before
    assert all(path.read_text() == text for path, text in good.items())
    assert run.published == []
    # what the notebook wrote is kept for inspection under the run's build folder
    assert run.staging == out / "build" / "ci" / "staging" / "foundations" / stem
    assert "30.0" in (run.staging / "tables" / "foundations" / f"{stem}.csv").read_text()
    assert run.executed == out / "build" / "ci" / "notebooks" / "foundations" / f"{stem}.ipynb"
    assert run.executed.exists()
    # checkpoints are a cache, not staged: they survive for the next notebook of the run
    assert (out / "build" / "ci" / "checkpoints" / "foundations" / stem / "step_00000001.pt").exists()


@pytest.mark.slow
def test_out_confines_every_write_and_a_success_publishes(tmp_path, monkeypatch, capsys):
    source, stem = fake_notebook(tmp_path, fail=False)
    monkeypatch.setattr(reproduce, "discover_notebooks", lambda: {"foundations": [source]})
    repository = {folder: listing(REPOSITORY_ROOT / folder) for folder in ("build", "tables", "figures")}
    out = tmp_path / "out"
    out.mkdir()
    (out / "tables" / "foundations").mkdir(parents=True)
    (out / "tables" / "foundations" / f"{stem}.csv").write_text("psnr\n1.0\n")  # an older version
    everything_before = listing(tmp_path)

    code = reproduce.main(["reproduce", "--scale", "ci", "--device", "cpu", "--out", str(out)])

    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "1 ok, 0 failed" in printed
    build = out / "build" / "ci"
    assert "30.0" in (out / "tables" / "foundations" / f"{stem}.csv").read_text()  # published
    assert (out / "tables" / "foundations" / f"{stem}.numbers.json").exists()
    assert (out / "tables" / "foundations" / f"{stem}.meta.json").exists()
    assert (build / "checkpoints" / "foundations" / stem / "step_00000001.pt").exists()
    assert (build / "notebooks" / "foundations" / f"{stem}.ipynb").exists()
    assert stem in (build / "logs" / reproduce.LOG_FILE).read_text()
    assert not (build / "staging" / "foundations" / stem).exists()  # published, so gone
    new = set(listing(tmp_path)) - set(everything_before)
    assert new and all(path.is_relative_to(out) for path in new)
    # nothing of this run reached the repository's build/, tables/ or figures/
    for folder, before in repository.items():
        after = listing(REPOSITORY_ROOT / folder)
        changed = [path for path, mtime in after.items() if before.get(path) != mtime]
        ours = [path for path in changed if stem in str(path) or path.name == reproduce.LOG_FILE]
        assert not ours, ours
