"""Small plotting helpers shared by the notebooks (so notebooks stay a few lines per picture).

Images are H×W×3 / H×W arrays or C×H×W tensors in [0, 1]; everything is shown, never saved
here (``llve.report.Reporter.figure`` saves with provenance).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np


def as_display_image(image) -> np.ndarray:
    """H×W×3 (or H×W) float array in [0, 1] from a numpy array or a (1×)C×H×W tensor."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return np.clip(image, 0.0, 1.0)


def image_grid(images: Sequence, titles: Sequence[str] | None = None, columns: int | None = None,
               size: float = 3.2, suptitle: str | None = None):
    """A figure with ``images`` side by side (rows of ``columns``), axes off, titled."""
    columns = columns or len(images)
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for index, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if index < len(images):
            picture = as_display_image(images[index])
            axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
            if titles is not None:
                axis.set_title(titles[index], fontsize=9)
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    return figure
