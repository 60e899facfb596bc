"""The paper's numbers: transcribed once, as the paper prints them."""

import re
from pathlib import Path

import pytest

from llve.papers.lamba import paper_numbers

LLVE = Path(__file__).resolve().parents[2] / "llve"


def test_paper_tables_have_the_expected_rows():
    table_1 = paper_numbers.TABLE_1_PAPER.set_index("method")
    assert list(table_1.index) == ["SID", "DID", "SGN", "LLPackNet", "DCE", "LDC", "Lamba (ours)"]
    assert table_1.loc["Lamba (ours)", "params_m"] == 0.78
    assert table_1.loc["Lamba (ours)", "gmacs_bayer"] == 59.8
    assert (table_1.loc["SID", "psnr_bayer"], table_1.loc["SID", "ssim_bayer"]) == (28.88, 0.787)
    assert table_1.loc["DID", "gmacs_bayer"] == ">2000"
    assert str(table_1.loc["Lamba (ours)", "psnr_bayer"]) == "n/a"  # not legible: says so
    table_2 = paper_numbers.TABLE_2_PAPER
    assert len(table_2) == 10 and table_2["retrained"].sum() == 3
    lamba_row = table_2[(table_2["model"] == "Lamba (ours)") & ~table_2["retrained"]].iloc[0]
    assert (lamba_row["psnr_gt"], lamba_row["psnr_gtgc"]) == (23.85, 26.08)
    assert paper_numbers.TABLE_5_PAPER["cpu_percent"].sum() == pytest.approx(100, abs=0.1)
    assert paper_numbers.RDB_ABLATION_PAPER["psnr"].tolist() == [28.66, 27.96]
    unreadable = [column for column, value in table_1.loc["Lamba (ours)"].items()
                  if str(value) == "n/a"]
    assert unreadable and all("Lamba" in " ".join(paper_numbers.TABLE_1_NOTES[:1])
                              for _ in unreadable)


def test_table_5_shares_are_the_transcribed_percentages():
    shares = paper_numbers.TABLE_5_SHARES
    assert list(shares) == ["LSE", "MSE", "HSE", "Fuse 1", "Fuse 2"]
    assert shares["LSE"] == {"cpu": pytest.approx(0.1458), "gpu": pytest.approx(0.1505)}
    assert sum(share["gpu"] for share in shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert paper_numbers.PARALLEL_SPEEDUP == 40 / 32


@pytest.mark.parametrize("number", ["28.66", "562.06", "59.8", "14.58", "26.08", "27.96"])
def test_paper_numbers_are_typed_only_in_paper_numbers(number):
    """A number the paper reports appears in llve's code in paper_numbers.py and nowhere else
    (docstrings and claim texts quote it through paper_numbers, or not at all)."""
    pattern = re.compile(rf"(?<![\d.]){re.escape(number)}(?![\d])")
    found = [path.relative_to(LLVE).as_posix() for path in LLVE.rglob("*.py")
             if pattern.search(path.read_text()) and path.name != "paper_numbers.py"]
    assert found == [], f"{number} typed outside paper_numbers.py: {found}"
