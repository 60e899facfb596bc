"""Lamba & Mitra, "Restoring Extremely Dark Images in Real Time", CVPR 2021: all of it.

Official code: https://github.com/MohitLamba94/Restoring-Extremely-Dark-Images-In-Real-Time

- ``network``: the paper's network (``Lamba``, ``LambaConfig``), registered as ``"lamba"``.
- ``inference``: ``LambaInference``, the same function arranged for speed.
- ``amplifier``: the amplification estimators (Eq. 3, Eq. 4, Eq. 5–7).
- ``operation_counts``: the paper's Eq. 1–2 beside the network's counted MACs.
- ``experiment``: synthetic SID-like data, the training recipe, the evaluation.
- ``speed``: the efficiency measurements (Table 1's latency, Table 5, Sec. 4.5).
- ``paper_numbers``: the paper's reported numbers, transcribed once.
- ``colour_chart``: the released model on a Canon colour chart (ΔE2000), camera adaptation.
- ``tables``, ``figures``: the builders of the reproduced tables, claims checks and figures.
- ``demo``: the amplifier widget demo (imports ipywidgets; not imported here).
"""

from llve.papers.lamba import (  # noqa: F401
    amplifier, colour_chart, experiment, figures, inference, network, operation_counts,
    paper_numbers, speed, tables,
)
