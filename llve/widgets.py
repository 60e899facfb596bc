"""Widget helpers every paper's demo uses: PNG views, image panels, cached renders, static sweeps.

A demo is a pure function from control values to pictures (tested without a browser), a few
ipywidgets controls, and image views that show PNGs. Headless runs (papermill) cannot drive
live widgets, so each demo also saves a *static sweep*: the same pictures for a row of control
values, one column each (DESIGN.md §3). The paper-specific parts live in each paper's
``demo.py`` (``llve.papers.lamba.demo``: the amplifier).
"""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Callable, Hashable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from llve.errors import InvalidInputError
from llve.plots import as_display_image


def png_bytes(picture: np.ndarray | Figure) -> bytes:
    """PNG encoding of an sRGB image in [0, 1] (H×W×3) or a matplotlib figure."""
    buffer = io.BytesIO()
    if isinstance(picture, Figure):
        picture.savefig(buffer, format="png")
    else:
        pixels = np.round(as_display_image(picture) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(buffer, "png")
    return buffer.getvalue()


def cached_view(render: Callable[..., np.ndarray | Figure], maxsize: int = 64
                ) -> Callable[..., bytes]:
    """``render(*controls)`` as PNG bytes, memoised on the (hashable) control values.

    Moving a slider back to a value already seen shows its picture at once instead of
    recomputing it (a restoration at demo size takes a fraction of a second to seconds).
    """
    @functools.lru_cache(maxsize=maxsize)
    def view(*controls: Hashable) -> bytes:
        return png_bytes(render(*controls))

    return view


def image_panel(title: str, css_class: str, width: str = "256px"
                ) -> tuple[widgets.Image, widgets.VBox]:
    """A titled PNG view: (the ``Image`` to update, the box to lay out). ``css_class`` lets a
    browser test find it."""
    view = widgets.Image(format="png", layout=widgets.Layout(width=width))
    view.add_class(css_class)
    return view, widgets.VBox([widgets.HTML(f"<b>{html.escape(title)}</b>"), view])


def static_sweep(values: Sequence, panels: Callable[[object], Sequence[tuple[np.ndarray, str]]],
                 extra_rows: int = 0, column_width: float = 1.9, row_height: float = 2.1):
    """The headless stand-in of a live control: one column per control value.

    ``panels(value)`` returns the (picture, title) pairs of one column, top to bottom (the same
    count for every value). Returns (figure, gridspec) so a demo can draw ``extra_rows`` more
    rows (for example a curve over the control) under the pictures.
    """
    if not values:
        raise InvalidInputError("static_sweep needs at least one control value")
    columns = [panels(value) for value in values]
    rows = len(columns[0])
    figure = plt.figure(figsize=(column_width * len(values), row_height * (rows + 1.2 * extra_rows)))
    grid = figure.add_gridspec(rows + extra_rows, len(values),
                               height_ratios=(1,) * rows + (1.2,) * extra_rows)
    for column, pictures in enumerate(columns):
        for row, (picture, title) in enumerate(pictures):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(as_display_image(picture))
            axis.axis("off")
            axis.set_title(title, fontsize=8)
    return figure, grid
