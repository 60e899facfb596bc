"""Per-paper workflows the notebooks call: datasets, training recipes, evaluations, paper numbers.

Models live in ``llve.models``; what a paper *does* with them (its training recipe, its tables,
the numbers it reported) lives here, one module per paper.
"""
