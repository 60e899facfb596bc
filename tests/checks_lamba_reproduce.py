"""Numbers the Lamba ablation and reproduction notebooks must record at ``ci`` scale."""

import math

from conftest import REAL_RAW


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def lamba_ablation(numbers):
    assert _finite(numbers["rdb_star_psnr"]) and _finite(numbers["rdb_canonical_psnr"])
    factors = numbers["factors_with_lamps"]
    # Lamps inflate the plain mean, so Eq. 4 amplifies less than Eq. 5 on lamp scenes (Fig. 9).
    assert factors["mean"] < factors["weighted"], factors
    assert all(1.0 <= value <= 300.0 for value in factors.values())
    assert set(numbers["colour_cast"]) == {"mean", "weighted"}
    assert len(numbers["claims_ablation_verdicts"]) == 2


def lamba_reproduce(numbers):
    assert 9.3 < numbers["macs_ratio"] < 9.5  # 560.09 / 59.575, independent of the image size
    assert numbers["lamba_cpu_s"] > 0 and numbers["sid_over_lamba"] > 0
    assert 0 < numbers["encoder_share"] < 1 and numbers["parallel_speedup"] > 0
    assert abs(sum(numbers["shares"].values()) - 1) < 1e-6
    factors = numbers["m_sweep_factors"]
    assert len(factors) == 9 and all(a <= b for a, b in zip(factors, factors[1:]))
    assert all(1.0 <= factor <= 300.0 for factor in factors)
    assert {row["amplifier"] for row in numbers["table2"]} == {"ratio", "mean", "weighted"}
    if REAL_RAW.exists():
        assert numbers["real_frames"] == 3
    assert len(numbers["claims_verdicts"]) == 7


CHECKS = {"lamba/20_ablation": lamba_ablation, "lamba/30_reproduce": lamba_reproduce}
