"""llve.report: atomic outputs with provenance, paper numbers beside ours, claims."""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from llve import report
from llve.errors import UnknownNameError


def make_reporter(tmp_path, **kwargs):
    return report.Reporter("foundations", "99_test", scale="ci", seed=3, out_dir=tmp_path, **kwargs)


def test_table_writes_csv_markdown_and_provenance(tmp_path):
    reporter = make_reporter(tmp_path)
    frame = pd.DataFrame({"model": ["a", "b"], "psnr": [30.1234, report.not_available("no weights")]})
    markdown = reporter.table("t1", frame, caption="A test table.", protocol="RGB, data range 1")
    text = markdown.read_text()
    assert "| a | 30.123 |" in text and "| b | n/a |" in text
    assert "n/a: no weights" in text and "Protocol: RGB, data range 1" in text
    csv = pd.read_csv(tmp_path / "tables/foundations/t1.csv", keep_default_na=False, dtype=str)
    assert csv["psnr"].tolist() == ["30.1234", "n/a"]
    meta = json.loads((tmp_path / "tables/foundations/t1.meta.json").read_text())
    for key in ("git_commit", "scale", "seed", "device", "torch", "data_source", "wall_time_s"):
        assert key in meta
    assert meta["scale"] == "ci" and meta["seed"] == 3


def test_figure_and_numbers(tmp_path):
    reporter = make_reporter(tmp_path)
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    path = reporter.figure("f1", figure, caption="A line.")
    plt.close(figure)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "figures/foundations/f1.meta.json").read_text())["kind"] == "figure"
    reporter.record(alpha=1.5)
    reporter.record(beta=[1, 2])
    numbers = json.loads((tmp_path / "tables/foundations/99_test.numbers.json").read_text())
    assert numbers["alpha"] == 1.5 and numbers["beta"] == [1, 2] and numbers["scale"] == "ci"


def test_interrupted_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "kept.txt"
    report.write_atomically(target, "first version")

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        report.write_atomically(target, "second version")
    assert target.read_text() == "first version"
    assert [path.name for path in tmp_path.iterdir()] == ["kept.txt"]  # no temporary left


def test_beside_paper_marks_missing_rows():
    paper = pd.DataFrame({"model": ["SID", "Lamba"], "psnr": [28.88, 29.0]})
    ours = pd.DataFrame({"model": ["Lamba", "Extra"], "psnr": [25.0, 20.0]})
    frame = report.beside_paper(ours, paper, key="model")
    assert list(frame.columns) == ["model", "psnr (paper)", "psnr (ours)"]
    rows = {row.model: row for row in frame.itertuples(index=False)}
    assert isinstance(rows["SID"][2], report.NotAvailable)
    assert rows["Lamba"][1] == 29.0 and rows["Lamba"][2] == 25.0
    assert isinstance(rows["Extra"][1], report.NotAvailable)


def test_claims_table_has_verdicts(tmp_path):
    reporter = make_reporter(tmp_path)
    frame = reporter.claims([
        report.Claim("faster", "5x", "6.1x measured", True),
        report.Claim("better", "+1 dB", "-0.2 dB", False),
        report.Claim("generalises", "real data", "no real data here", None)])
    assert frame["verdict"].tolist() == ["holds", "does not hold", "not tested"]
    assert (tmp_path / "tables/foundations/claims.md").exists()


def test_unknown_scale_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown scale 'huge'"):
        report.Reporter("foundations", "x", scale="huge", out_dir=tmp_path)


def test_default_output_roots_keep_committed_outputs_for_small_only():
    assert report.output_root("small") == report.REPOSITORY_ROOT
    assert report.output_root("ci") == report.REPOSITORY_ROOT / "build" / "ci"
    assert report.output_root("paper") == report.REPOSITORY_ROOT / "build" / "paper"


# --------------------------------------------------------------------------- provenance (issue #6)


def _git(root, *arguments):
    import subprocess

    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *arguments],
                   cwd=root, check=True, capture_output=True)


def test_git_commit_is_dirty_for_code_changes_only(tmp_path):
    for name in ("code.py", "tables/lamba/t1.csv", "figures/lamba/f1.meta.json", "build/ci/x.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("first\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "initial")
    clean = report.git_commit(tmp_path)
    assert len(clean) == 40 and "dirty" not in clean
    for name in ("tables/lamba/t1.csv", "figures/lamba/f1.meta.json", "build/ci/x.txt"):
        (tmp_path / name).write_text("regenerated\n")  # outputs a run rewrites
    (tmp_path / "tables/lamba/new.csv").write_text("untracked\n")
    assert report.git_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("changed\n")
    assert report.git_commit(tmp_path) == clean + "+dirty"


def test_git_commit_outside_a_checkout(tmp_path):
    assert report.git_commit(tmp_path).startswith("unknown")


class _Clock:
    def __init__(self, now=100.0):
        self.now = now

    def perf_counter(self):
        return self.now


def _meta(tmp_path, folder, output_id):
    return json.loads((tmp_path / folder / "foundations" / f"{output_id}.meta.json").read_text())


def test_wall_time_is_each_outputs_own_cost(tmp_path, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(report, "time", clock)
    monkeypatch.setattr(report, "git_commit", lambda root=None: "abc")
    reporter = make_reporter(tmp_path)
    frame = pd.DataFrame({"a": [1.0]})
    clock.now = 103.0
    reporter.table("first", frame, caption="first output: since the Reporter was made")
    clock.now = 110.0
    figure, axes = plt.subplots()
    reporter.figure("second", figure, caption="7 s after the first")
    plt.close(figure)
    clock.now = 200.0
    reporter.table("timed", frame, caption="the caller timed it", seconds=1.25)
    clock.now = 201.5
    reporter.table("after", frame, caption="since the timed one was written")
    first, second = _meta(tmp_path, "tables", "first"), _meta(tmp_path, "figures", "second")
    timed, after = _meta(tmp_path, "tables", "timed"), _meta(tmp_path, "tables", "after")
    assert (first["wall_time_s"], second["wall_time_s"]) == (3.0, 7.0)
    assert (timed["wall_time_s"], after["wall_time_s"]) == (1.25, 1.5)
    assert first["wall_time_covers"] == after["wall_time_covers"] == report.WALL_TIME_SINCE_PREVIOUS
    assert "previous output" in first["wall_time_covers"]
    assert timed["wall_time_covers"] == report.WALL_TIME_GIVEN


def test_seconds_must_be_a_finite_non_negative_number(tmp_path):
    reporter = make_reporter(tmp_path)
    for seconds in (-1.0, float("nan"), "3"):
        with pytest.raises(report.InvalidInputError, match="seconds"):
            reporter.table("t", pd.DataFrame({"a": [1]}), caption="x", seconds=seconds)
    assert not (tmp_path / "tables").exists()  # refused before anything was written


def test_data_source_and_weights_per_output(tmp_path):
    reporter = make_reporter(tmp_path)
    frame = pd.DataFrame({"a": [1.0]})
    reporter.table("default", frame, caption="the Reporter's defaults")
    figure, axes = plt.subplots()
    reporter.figure("canon", figure, caption="real files", data_source="real Canon DNG files: a.dng",
                    weights="../shared/weights/lamba/sony.pt")
    plt.close(figure)
    reporter.table("trained", frame, caption="x", weights=tmp_path / "step_4.pt")
    default, canon = _meta(tmp_path, "tables", "default"), _meta(tmp_path, "figures", "canon")
    assert default["data_source"] == "synthetic (llve.data.synth)" and default["weights"] == ""
    assert canon["data_source"] == "real Canon DNG files: a.dng"
    assert canon["weights"] == "../shared/weights/lamba/sony.pt"
    assert _meta(tmp_path, "tables", "trained")["weights"] == str(tmp_path / "step_4.pt")
    reporter = make_reporter(tmp_path, weights="w.pt", data_source="SID Sony under /data")
    reporter.table("reporter_defaults", frame, caption="x")
    meta = _meta(tmp_path, "tables", "reporter_defaults")
    assert (meta["weights"], meta["data_source"]) == ("w.pt", "SID Sony under /data")


# --------------------------------------------------------------------------- build folders (issue #6)


def test_build_root_and_checkpoint_dir_follow_out_dir_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(report.BUILD_DIR_VARIABLE, raising=False)
    assert report.build_root("ci") == report.REPOSITORY_ROOT / "build" / "ci"
    assert report.checkpoint_dir("lamba", "small", "run") == (
        report.REPOSITORY_ROOT / "build" / "small" / "checkpoints" / "lamba" / "run")
    assert report.build_root("paper", tmp_path) == tmp_path / "build" / "paper"
    assert report.checkpoint_dir("lamba", "ci", "run", out_dir=tmp_path) == (
        tmp_path / "build" / "ci" / "checkpoints" / "lamba" / "run")
    # inside a kernel of `llve reproduce --out`, the three-argument call follows the run
    monkeypatch.setenv(report.BUILD_DIR_VARIABLE, str(tmp_path / "run" / "build"))
    assert report.checkpoint_dir("lamba", "ci", "run") == (
        tmp_path / "run" / "build" / "ci" / "checkpoints" / "lamba" / "run")
    assert report.build_root("ci", tmp_path / "other") == tmp_path / "other" / "build" / "ci"
    with pytest.raises(UnknownNameError, match="unknown scale 'huge'"):
        report.checkpoint_dir("lamba", "huge", "run")
