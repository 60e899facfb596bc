"""Lamba & Mitra (CVPR 2021): every number the paper reports that llve compares against, once.

Transcribed from the paper text (``../shared/papers/003_*.txt``) and FACTS.md, as data with the
table or section each comes from. Every other place (notebooks, tables, claims) reads them
here; nothing else in llve types a paper number.
"""

from __future__ import annotations

import pandas as pd

from llve.report import not_available


_UNREADABLE = not_available("cell not legible in the paper text we transcribed from")
_DASH = not_available("not reported in the paper ('–')")
_TABLE_1_COLUMNS = (
    "params_m", "gmacs_bayer", "gmacs_xtrans", "memory_gb_bayer", "memory_gb_xtrans",
    "gpu_ms_bayer", "gpu_ms_xtrans", "cpu_s_bayer", "cpu_s_xtrans", "psnr_bayer", "ssim_bayer",
    "psnr_xtrans", "ssim_xtrans", "niqe_bayer", "ma_bayer", "niqe_xtrans", "ma_xtrans")
_TABLE_1_ROWS = {
    # method: values in _TABLE_1_COLUMNS order, as printed (">2000" is a bound, kept as text)
    "SID": (7.7, 562.06, 1118.8, 6.184, 11.27, 156.85, 303.64, 9.35, 18.59,
            28.88, 0.787, 26.61, 0.680, 4.39, 6.93, 4.45, 6.78),
    "DID": (2.5, ">2000", ">2000", 10.72, 19.12, ">1000", ">1000", 110.29, ">200",
            28.41, 0.780, _DASH, _DASH, 4.52, 6.85, _DASH, _DASH),
    "SGN": (3.5, ">2000", _UNREADABLE, 9.3, 18.21, 867.50, ">1000", 35.20, 68.94,
            28.91, 0.789, 26.90, 0.683, 4.40, 6.92, 4.46, 6.78),
    "LLPackNet": (1.16, 83.46, 166.12, 2.23, 4.94, 40.17, 78.94, 2.75, 4.79,
                  27.83, 0.75, 24.13, 0.59, 5.12, 5.98, 5.20, 5.97),
    "DCE": (0.79, 361, 719.26, 3.58, 8.13, 116.21, 225.13, 6.20, 12.32,
            26.53, 0.73, _DASH, _DASH, 4.64, 6.09, _DASH, _DASH),
    "LDC": (8.6, ">2000", ">2000", _UNREADABLE, _UNREADABLE, ">1000", ">1000", ">200", ">200",
            29.56, 0.799, 26.70, 0.681, 4.40, 6.91, 4.47, 6.77),
    "Lamba (ours)": (0.78, 59.8, 119.03, 1.16, 2.48, _UNREADABLE, _UNREADABLE, _UNREADABLE,
                     _UNREADABLE, _UNREADABLE, _UNREADABLE, 26.60, 0.682, _UNREADABLE,
                     _UNREADABLE, 4.46, 6.77),
}
TABLE_1_PAPER = pd.DataFrame(
    [{"method": method, **dict(zip(_TABLE_1_COLUMNS, values))}
     for method, values in _TABLE_1_ROWS.items()]).astype(object)
"""Paper Table 1 (SID Sony "Bayer" and Fuji "X-Trans"; GT exposure amplification; memory is
peak RAM, times averaged over 100 runs at full resolution on a GTX 1080Ti / Xeon E5-1620V4;
PSNR/SSIM on sRGB). The extracted text is garbled (bold cells seem to be lost); see
:data:`TABLE_1_NOTES` for which cells could not be read and how the others were assigned."""

TABLE_1_NOTES = (
    "Lamba's own Bayer PSNR/SSIM and NIQE/Ma, and its GPU and CPU times, are missing from the "
    "extracted text (the ablation in Sec. 4.6 gives 28.66 dB / 0.79 for the same model, see "
    "RDB_ABLATION_PAPER; the text claims 32 fps (~31 ms) on the GPU and ~1 s on a CPU for 4K "
    "images, which are not table cells).",
    "GMACs: only three '>2000' cells are printed for DID (Bayer, X-Trans) and SGN (Bayer, "
    "X-Trans); they are assigned in reading order, leaving SGN X-Trans unreadable (the "
    "introduction gives SGN 2474 GMAC for a 4K raw image).",
    "Memory: six of seven column pairs are printed. 1.16/2.48 GB is assigned to Lamba (LLPackNet's "
    "2.23 GB is underlined as second best, so the best must be below it, and LDC is a >2000-GMAC "
    "model), leaving LDC's memory unreadable.",
    "GPU/CPU time: the last printed pair ('>1000 >1000', '>200 >200') is assigned to LDC; "
    "LLPackNet's underlined 40.17 ms / 2.75 s are the second best, so Lamba's (best) cells are "
    "the missing ones.",
)

TABLE_2_PAPER = pd.DataFrame(
    [("LLPackNet", "LLPackNet's MLP [34]", True, 23.27, 0.69, 23.43, 0.71, 5.83, 5.50),
     ("LLPackNet", "ours (Eq. 5-7)", False, 23.35, 0.71, 24.34, 0.74, 5.97, 5.12),
     ("SID", "LLPackNet's MLP [34]", True, 22.98, 0.71, 23.17, 0.72, 6.21, 4.90),
     ("SID", "ours (Eq. 5-7)", False, 23.84, 0.74, 26.13, 0.78, 6.94, 4.39),
     ("Lamba (ours)", "LLPackNet's MLP [34]", True, 23.30, 0.71, 23.80, 0.72, 6.11, 4.62),
     ("Lamba (ours)", "ours (Eq. 5-7)", False, 23.85, 0.75, 26.08, 0.79, 6.93, 4.40),
     ("DID", "ours (Eq. 5-7)", False, 23.29, 0.71, 25.64, 0.74, 6.84, 4.49),
     ("SGN", "ours (Eq. 5-7)", False, 23.90, 0.73, 26.12, 0.77, 6.94, 4.40),
     ("DCE", "ours (Eq. 5-7)", False, 22.72, 0.70, 25.13, 0.72, 6.08, 4.65),
     ("LDC", "ours (Eq. 5-7)", False, 23.86, 0.75, 26.10, 0.79, 6.92, 4.40)],
    columns=["model", "amplifier", "retrained", "psnr_gt", "ssim_gt", "psnr_gtgc", "ssim_gtgc",
             "ma", "niqe"])
"""Paper Table 2: amplifiers on the SID Sony test set (no GT exposure). ``retrained``: the MLP
amplifier was retrained with each model ("R"); the paper's amplifier was added without
fine-tuning ("NR"). GT-GC: best of the gamma-corrected ground truths (:func:`best_gamma_psnr`).
Every cell was legible."""

TABLE_5_PAPER = pd.DataFrame(
    [("Lower Scale Encoder (LSE)", 14.58, 15.05), ("Medium Scale Encoder (MSE)", 16.23, 15.14),
     ("Higher Scale Encoder (HSE)", 15.36, 16.90), ("Fuse Block 1 (FB 1)", 17.94, 19.61),
     ("Fuse Block 2 (FB 2)", 35.89, 33.30)],
    columns=["block", "cpu_percent", "gpu_percent"])
"""Paper Table 5: each block's share of the network's run time (serial execution); running
LSE/MSE/HSE in parallel gave ≈ 30% speed-up. Every cell was legible."""

RDB_ABLATION_PAPER = pd.DataFrame(
    [("RDB* (proposed)", 28.66, 0.79), ("RDB (canonical)", 27.96, 0.77)],
    columns=["block", "psnr", "ssim"])
"""Paper Sec. 4.6: Lamba retrained on SID Sony with canonical RDBs instead of RDB* (GT exposure
amplification)."""

AMPLIFIER_ABLATION_PAPER = {"psnr_drop_db": 0.5, "ssim_drop": 0.01}
"""Paper Sec. 4.6: Eq. 4 (no highlight masking) instead of Eq. 5 on the pre-trained Sony model
lowered PSNR/SSIM by this much, with greenish colour casts (Fig. 9)."""


TABLE_5_SHARES = {short: {"cpu": row.cpu_percent / 100, "gpu": row.gpu_percent / 100}
                  for short, row in zip(("LSE", "MSE", "HSE", "Fuse 1", "Fuse 2"),
                                        TABLE_5_PAPER.itertuples(index=False))}
"""Table 5 as fractions keyed by the block names of ``llve.papers.lamba.speed``."""

PARALLEL_SPEEDUP = 40 / 32
"""Sec. 4.5: running LSE, MSE and HSE concurrently took their GPU from 32 to 40 fps at 4K."""

CPU_SECONDS_4K = 1.0
"""Abstract and Sec. 1: "≈ 1 s" for a 4K (2848×4256) raw image on a CPU (4-core Xeon E5-1620V4)."""

GPU_FPS_4K = 32
"""Sec. 1: 32 fps for 4K raw images on a GTX 1080Ti (the Table 1 time cell is not legible)."""

SPEEDUP_OVER_SID = (5, 100)
"""Abstract: "5-100× faster" than the state of the art (SID's CPU time is 9.35 s in Table 1)."""

LAMBA_PSNR_SID = 28.66
"""Sec. 4.6 (RDB* row): Lamba's PSNR on SID Sony with the GT exposure ratio; SSIM 0.79."""
