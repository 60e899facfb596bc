"""What ``notebooks/demos/amplifier.py`` must record after a ``ci`` run (its numbers.json).

Merged into ``notebook_checks.CHECKS`` under the notebook's name ``demos/amplifier``.
"""

import math

CLAMP = 300.0  # the released estimator's (and SID's) upper bound


def demos_amplifier(numbers):
    ms = numbers["sweep_m"]
    released = numbers["sweep_weighted_released"]
    printed = numbers["sweep_weighted_printed"]
    mean = numbers["sweep_mean_released"]
    assert ms == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # Eq. 5 as released, A = (m/10)·Σw/Σ(w·x): proportional to m below the clamp.
    unclamped = [(m, factor) for m, factor in zip(ms, released) if 1.0 < factor < CLAMP]
    assert len(unclamped) >= 2, released
    slope = unclamped[0][1] / unclamped[0][0]
    assert all(math.isclose(factor / m, slope, rel_tol=1e-9) for m, factor in unclamped)
    assert all(later >= earlier for earlier, later in zip(released, released[1:]))
    assert all(1.0 <= factor <= CLAMP for factor in released + printed + mean)
    # The printed Eq. 5 multiplies by m, not m/10: ten times larger, then clamped.
    for code, paper in zip(released, printed):
        assert math.isclose(paper, min(max(10 * code, 1.0), CLAMP), rel_tol=1e-9), (code, paper)
    assert printed[-1] == CLAMP
    # On the lamp-lit frame the saturated lamps drag Eq. 4's plain mean up, so it amplifies less.
    assert all(weighted > plain for weighted, plain in zip(released, mean)), (released, mean)
    assert numbers["sweep_true_ratio"] == 100
    # A constant image 0.001 at m = 0.5 gives (0.5/10)/0.001 = 50.
    assert math.isclose(numbers["constant_image_factor"], 50.0, rel_tol=1e-6)
    # Every frame got finite Eq. 4/5 estimates; only frames without a known ratio lack Eq. 3.
    estimates = numbers["estimates_m05"]
    assert len(estimates) >= 3
    for row in estimates:
        for column in ("Eq. 5 (released)", "Eq. 5 (printed)", "Eq. 4 (released)"):
            assert 1.0 <= row[column] <= CLAMP, row
    assert {row["true ratio"] for row in estimates} >= {100, 250, 300}
    assert isinstance(numbers["model"], str) and numbers["model"]


CHECKS = {"demos/amplifier": demos_amplifier}
