"""Data: raw files (rawpy in, DNG out), packing, a reference ISP, synthetic low light, video.

Submodules: ``raw`` (read_raw, pack, unpack, write_dng, noise_statistics), ``isp`` (viewing
pipeline and SID's ground truth), ``images`` (offline clean sources, and save_image: PNG out),
``synth`` (unprocessing + ELD / Poisson-Gaussian noise, dark pairs), ``video`` (static/dynamic
clips, real video), ``calibration`` (synthetic vs real dark-frame noise), ``datasets`` (real
dataset loaders and their layout checks).
"""

from __future__ import annotations

import os
from pathlib import Path

from llve.data.raw import RawImage, pack, read_raw, unpack, write_dng

SHARED_DATA = Path(os.environ.get("LLVE_SHARED_DATA",
                                  Path(__file__).resolve().parents[2].parent / "shared" / "data"))
"""Real sample files (camera raws, a video clip) beside the checkout; optional everywhere."""


def shared_sample(relative_path: str) -> Path | None:
    """Path of a real sample file under ``SHARED_DATA``, or None when it is not there."""
    path = SHARED_DATA / relative_path
    return path if path.exists() else None


def __getattr__(name: str):
    # save_image lives in llve.data.images, imported on first use: it pulls in OpenCV and SciPy,
    # which ``import llve.data`` alone should not pay for.
    if name == "save_image":
        from llve.data.images import save_image

        return save_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RawImage", "read_raw", "pack", "unpack", "write_dng", "save_image", "SHARED_DATA",
           "shared_sample"]
