"""Comparing the synthetic sensor noise with a real lens-capped (dark) frame.

A dark frame holds no signal, so everything in it is read noise, row (banding) noise and
quantisation: exactly the signal-independent part of the ELD noise model. Sweeping the model's
system gain K (the analogue of ISO) and finding where its read-noise spread matches the real
frame's is the simplest honest calibration check: it says which synthetic "ISO" resembles the
real camera, and the per-plane table shows what the model does not capture (per-channel
differences, focus-pixel rows, fixed-pattern noise).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from llve.data.cfa import plane_positions
from llve.data.raw import RawImage, noise_statistics
from llve.data.synth import DarkFrame, read_noise_tukey_shape, synthetic_dark_frame

PLANES = ("R", "G1", "G2", "B")


def dark_frame_table(frame: RawImage | DarkFrame) -> pd.DataFrame:
    """Per-plane noise statistics (DN, black subtracted) of a real or synthetic dark frame."""
    if isinstance(frame, DarkFrame):
        statistics = noise_statistics(frame.dn, frame.pattern, frame.black_level)
    else:
        statistics = noise_statistics(frame)
    return pd.DataFrame.from_dict(statistics, orient="index").loc[list(PLANES)]


def read_noise_versus_gain(system_gains: Sequence[float], shape: tuple[int, int] = (256, 256),
                           pattern: str = "RGGB", seed: int = 0) -> pd.DataFrame:
    """Read-noise std (DN, all planes pooled) and row-noise std of ELD dark frames per gain K,
    at the calibrated (typical) noise level of each gain."""
    rows = []
    for index, gain in enumerate(system_gains):
        frame = synthetic_dark_frame(shape, pattern, system_gain=float(gain), seed=seed + index,
                                     typical=True)
        table = dark_frame_table(frame)
        rows.append({"system_gain": float(gain),
                     "read_std_dn": float(np.sqrt((table["std_dn"] ** 2).mean())),
                     "row_std_dn": float(table["row_std_dn"].mean())})
    return pd.DataFrame(rows)


def matching_system_gain(sweep: pd.DataFrame, target_std_dn: float) -> float:
    """The gain K whose synthetic read-noise std equals ``target_std_dn`` (log-log interpolation).

    The std grows monotonically with K in the ELD model (log σ is linear in log K), so the
    interpolation is well defined; targets outside the sweep are clamped to its ends.
    """
    ordered = sweep.sort_values("read_std_dn")
    return float(np.exp(np.interp(np.log(target_std_dn), np.log(ordered["read_std_dn"]),
                                  np.log(ordered["system_gain"]))))


def _plane_tukey_shapes(dn: np.ndarray, pattern: str, black_level, seed: int) -> list[float]:
    positions = plane_positions(pattern)
    blacks = black_level if isinstance(black_level, dict) else {plane: black_level for plane in PLANES}
    return [read_noise_tukey_shape(dn[row::2, column::2], blacks[plane], seed=seed)
            for plane, (row, column) in ((plane, positions[plane]) for plane in PLANES)]


def compare_dark_frames(real: RawImage, synthetic: DarkFrame, seed: int = 0) -> pd.DataFrame:
    """One row per CFA plane: real vs synthetic pixel std, row-noise std (DN) and the Tukey-lambda
    shape of the read noise (ELD's probability-plot fit; 0.14 ≈ Gaussian, < 0 heavier tails)."""
    real_table, synthetic_table = dark_frame_table(real), dark_frame_table(synthetic)
    return pd.DataFrame({
        "plane": list(PLANES),
        "real std (DN)": real_table["std_dn"].to_numpy(),
        "synthetic std (DN)": synthetic_table["std_dn"].to_numpy(),
        "real row std (DN)": real_table["row_std_dn"].to_numpy(),
        "synthetic row std (DN)": synthetic_table["row_std_dn"].to_numpy(),
        "real Tukey shape": _plane_tukey_shapes(real.raw_dn, real.pattern, real.black_level, seed),
        "synthetic Tukey shape": _plane_tukey_shapes(synthetic.dn, synthetic.pattern,
                                                     synthetic.black_level, seed),
        "real mean offset (DN)": real_table["mean_dn"].to_numpy(),
    })
