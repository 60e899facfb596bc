"""What each notebook must have recorded (its ``<notebook>.numbers.json``) after a ``ci`` run.

One function per notebook, keyed ``<folder>/<stem>``; the foundations check is here, each
paper's checks live in ``tests/checks_<paper>*.py`` (a ``CHECKS`` dict each) and are merged
below. A notebook without an entry fails the suite: every notebook's numbers are asserted, not
just its exit status.
"""

import importlib
import math
import os
from pathlib import Path

from conftest import REAL_RAW


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def foundations_low_light_data(numbers):
    # The short exposure's mean times the ratio recovers the clean raw's mean (physics of the
    # synthesis), for each ratio shown.
    for ratio in (100, 250, 300):
        recovered = numbers[f"amplified_mean_ratio_{ratio}"]
        clean = numbers["clean_raw_mean"]
        assert abs(recovered - clean) < 0.1 * clean + 0.002, (ratio, recovered, clean)
    # Less light, lower SNR: strictly decreasing over the ratios shown.
    snr = [numbers[f"snr_db_ratio_{ratio}"] for ratio in (100, 250, 300)]
    assert snr[0] > snr[1] > snr[2], snr
    # Read-noise comparison: both the synthetic and the real dark frame gave per-channel stats.
    assert set(numbers["synthetic_read_noise_std_dn"]) == {"R", "G1", "G2", "B"}
    assert all(_finite(v) and v > 0 for v in numbers["synthetic_read_noise_std_dn"].values())
    real = numbers.get("real_read_noise_std_dn")
    if REAL_RAW.exists() or os.environ.get("CI") == "true":  # CI always has ../shared
        assert set(real) == {"R", "G1", "G2", "B"}
        assert all(_finite(v) and v > 0 for v in real.values())
        assert numbers["matched_system_gain"] > 0
    assert numbers["figures_written"] >= 4


CHECKS = {
    "foundations/00_low_light_data": foundations_low_light_data,
}
for _module in sorted(Path(__file__).parent.glob("checks_*.py")):
    CHECKS.update(importlib.import_module(_module.stem).CHECKS)
