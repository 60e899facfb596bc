"""llve: a notebook-first, reproducible companion to five low-light enhancement papers.

The notebooks under ``notebooks/`` stay thin; everything they call lives here:
``llve.data`` (raw I/O, synthetic low light), ``llve.metrics``, ``llve.complexity``,
``llve.models``, ``llve.train``, ``llve.report`` and the ``llve reproduce`` command.
"""

__version__ = "0.1.0"

PAPERS = ("foundations", "lamba", "darkdiff", "cfa", "jffra", "uhr_cyclegan")
"""Short names used everywhere (directories, tables, CLI): the shared foundations plus the five papers."""
