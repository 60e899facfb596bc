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
