"""One package per paper (DESIGN.md §1): everything a paper adds, and nothing another needs.

``llve.papers.lamba`` holds Lamba & Mitra's network, its inference form, the amplifier, the
experiment, the paper's numbers and the builders of its tables, figures, claims and demo. What
two papers share lives lower down (``llve.data``, ``llve.models``, ``llve.metrics``,
``llve.complexity``), never imported sideways from another paper's package.
"""
