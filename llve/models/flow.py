"""Optical flow between two frames, with a pluggable estimator: RAFT-small or OpenCV DIS.

Shared by the papers that need registration or an initial flow (jffra's initial flow, uhr_cyclegan's
temporal smoothing, cfa's alignment). :func:`estimate_flow` returns a :class:`FlowEstimate`: the
flow and the name of the method that made it, so every number computed from a flow can say
which estimator it came from.

Convention: llve's (see :mod:`llve.data.video`): pixels, (x, y) = (column, row) in the last axis,
``flow[y, x] = (fx, fy)`` such that ``frame_a[y, x] ≈ frame_b[y + fy, x + fx]``. So
``llve.data.video.warp(frame_b, flow)`` (and ``llve.metrics.warp`` on tensors) reproduces
frame a, and for a :func:`~llve.data.video.dynamic_clip` the flow from frame t to frame t+1 is
``clip.flow_forward[t]``. Both estimators already compute this direction: RAFT's output is the
flow "from frame 1 to frame 2" and OpenCV's ``calc(prev, next)`` returns ``prev(y, x) ≈
next(y + fy, x + fx)``; the tests check it against a dynamic clip's true flow.

Methods:

- ``"raft_small"``: :mod:`llve.models.raft` with the official RAFT-small weights (12 iterations,
  frames fed as RGB in 0..255, grey frames replicated to three channels). Sides must be at least
  57 pixels (RAFT's coarsest correlation level). Runs on ``device`` (``auto``: CUDA if visible).
- ``"dis"``: OpenCV's Dense Inverse Search (Kroeger et al., ECCV 2016),
  ``cv2.DISOpticalFlow_create(PRESET_MEDIUM)`` on 8-bit grey frames (RGB -> grey by OpenCV's
  BT.601 weights after rounding to 0..255). MEDIUM is the most accurate preset this OpenCV offers
  (ULTRAFAST, FAST, MEDIUM; there is no FINE preset); it costs a few milliseconds at 256².
  No weights, deterministic.
- ``"auto"``: RAFT-small when its weights are found (``raft_weights``, else
  ``OFFICIAL_ROOT/raft_small/raft-small.pth`` through :func:`llve.report.official_file`; the
  root follows ``$LLVE_OFFICIAL``), DIS otherwise. ``$LLVE_WEIGHTS`` is not read here: it names
  a paper's own weights.

Frames: numpy arrays H×W (grey) or H×W×C (C = 1 or 3, RGB order), float with values in
``[0, data_range]`` or uint8 (0..255); both frames of one call have the same shape.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from llve.errors import InvalidInputError, UnknownNameError

METHODS = ("auto", "raft_small", "dis")
"""Names :func:`estimate_flow` accepts for ``method``."""

RAFT_WEIGHTS = Path("raft_small") / "raft-small.pth"
"""Where the official RAFT-small weights lie under ``llve.report.OFFICIAL_ROOT``."""

RAFT_MIN_SIDE = 57  # 8·(2**(4 levels − 1) − 1) + 1: RAFT's coarsest correlation level needs 1 pixel


@dataclass(frozen=True)
class FlowEstimate:
    """An estimated flow and where it came from.

    ``flow``: H×W×2 float32, pixels, (x, y) order, frame a -> frame b (module docstring).
    ``method``: ``"raft_small"`` or ``"dis"`` (never ``"auto"``: the method actually used).
    ``detail``: a short human-readable description (weights file, preset) for reports.
    """

    flow: np.ndarray
    method: str
    detail: str


# --- input checks -----------------------------------------------------------------------------


def _check_frame(frame: object, name: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise InvalidInputError(f"{name} must be a numpy array H×W or H×W×C, got "
                                f"{type(frame).__name__}")
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[-1] != 3):
        raise InvalidInputError(f"{name} must be H×W (grey) or H×W×3 (RGB), got shape "
                                f"{frame.shape}")
    if min(frame.shape[:2]) < 2:
        raise InvalidInputError(f"{name} must be at least 2×2 pixels, got {frame.shape[:2]}")
    if frame.dtype != np.uint8 and not np.issubdtype(frame.dtype, np.floating):
        raise InvalidInputError(f"{name} must be float or uint8, got dtype {frame.dtype}")
    if not np.isfinite(frame).all():
        raise InvalidInputError(f"{name} contains NaN or inf values")
    return frame


def _as_uint8(frame: np.ndarray, data_range: float) -> np.ndarray:
    """0..255 uint8 (rounded, clipped) from a checked frame."""
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.rint(frame.astype(np.float64) * (255.0 / data_range)), 0, 255).astype(np.uint8)


def _as_0_255(frame: np.ndarray, data_range: float) -> np.ndarray:
    """Float32 RGB H×W×3 on 0..255, the scale RAFT was trained on (not rounded)."""
    scale = 1.0 if frame.dtype == np.uint8 else 255.0 / data_range
    frame = frame.astype(np.float32) * np.float32(scale)
    return np.repeat(frame[..., None], 3, axis=-1) if frame.ndim == 2 else frame


# --- weights discovery and the two estimators ---------------------------------------------------


def raft_weights_path(raft_weights: str | os.PathLike | None = None) -> Path | None:
    """The RAFT-small weights to use: ``raft_weights`` when given, else the official file beside
    the checkout when present, else None (``auto`` then falls back to DIS)."""
    from llve.report import official_file  # llve.report pulls in pandas: only when needed

    return official_file(RAFT_WEIGHTS, raft_weights)


def resolve_method(method: str = "auto", raft_weights: str | os.PathLike | None = None) -> str:
    """``"raft_small"`` or ``"dis"``: what ``method`` means here (``auto``: RAFT-small when its
    weights are found). Unknown names raise ``UnknownNameError``."""
    if method not in METHODS:
        raise UnknownNameError(f"unknown flow method {method!r}: expected one of {METHODS}")
    if method == "auto":
        return "raft_small" if raft_weights_path(raft_weights) is not None else "dis"
    return method


@functools.lru_cache(maxsize=4)
def _raft_model(path: str, device: str) -> torch.nn.Module:
    """RAFT-small with weights ``path`` in eval mode on ``device`` (loaded once per pair)."""
    from llve.models import build  # the registry imports builders lazily; so do we

    return build("raft_small", "paper", weights=path).eval().to(device)


def _raft_flow(frame_a: np.ndarray, frame_b: np.ndarray, data_range: float,
               weights: Path, device: str) -> np.ndarray:
    if min(frame_a.shape[:2]) < RAFT_MIN_SIDE:
        raise InvalidInputError(f"RAFT-small needs frames of at least {RAFT_MIN_SIDE} pixels a "
                                f"side, got {frame_a.shape[:2]}; use method='dis'")
    from llve.scales import resolve_device

    target = resolve_device(device)
    model = _raft_model(str(weights), str(target))
    pair = [torch.from_numpy(_as_0_255(frame, data_range)).permute(2, 0, 1)[None]  # 1×3×H×W
            for frame in (frame_a, frame_b)]
    with torch.no_grad():
        flow = model(pair[0].to(target), pair[1].to(target))  # 1×2×H×W, channels (x, y)
    return flow[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)  # H×W×2


def _dis_flow(frame_a: np.ndarray, frame_b: np.ndarray, data_range: float) -> np.ndarray:
    grey = []
    for frame in (frame_a, frame_b):
        frame = _as_uint8(frame, data_range)
        grey.append(frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(grey[0], grey[1], None).astype(np.float32)  # H×W×2, (x, y)


def estimate_flow(frame_a: np.ndarray, frame_b: np.ndarray, method: str = "auto",
                  raft_weights: str | os.PathLike | None = None, data_range: float = 1.0,
                  device: str = "auto") -> FlowEstimate:
    """The flow from ``frame_a`` to ``frame_b`` (H×W×2, llve's convention: ``warp(frame_b,
    flow) ≈ frame_a``) and the method that made it.

    ``method``: ``"auto"`` | ``"raft_small"`` | ``"dis"`` (module docstring). ``raft_weights``: a
    RAFT-small weights file (official or llve checkpoint); for ``"raft_small"`` without it the
    official file is looked up and a missing one raises ``CheckpointError``. ``data_range``: the
    white level of float frames (ignored for uint8). ``device``: where RAFT runs.
    """
    frame_a = _check_frame(frame_a, "frame_a")
    frame_b = _check_frame(frame_b, "frame_b")
    if frame_a.shape != frame_b.shape:
        raise InvalidInputError(f"frame_a and frame_b must have the same shape, got "
                                f"{frame_a.shape} and {frame_b.shape}")
    if not (np.isfinite(data_range) and data_range > 0):
        raise InvalidInputError(f"data_range must be a positive number, got {data_range!r}")
    used = resolve_method(method, raft_weights)
    if used == "dis":
        return FlowEstimate(_dis_flow(frame_a, frame_b, data_range), "dis",
                            "OpenCV DIS, preset MEDIUM, 8-bit grey")
    weights = raft_weights_path(raft_weights)
    if weights is None:
        from llve.errors import CheckpointError

        raise CheckpointError(f"method='raft_small' needs RAFT-small weights: pass raft_weights= "
                              f"or place the official file at <official>/{RAFT_WEIGHTS}")
    return FlowEstimate(_raft_flow(frame_a, frame_b, data_range, weights, device), "raft_small",
                        f"RAFT-small, 12 iterations, weights {weights.name}")


# --- a per-clip cache -------------------------------------------------------------------------


class FlowCache:
    """Flows keyed by ``(clip_id, index_a, index_b, method)``, so one clip's flows are estimated
    once however often an experiment asks for them. ``method`` in the key is the resolved one
    (``auto`` becomes what it used). At most ``max_entries`` flows are kept (oldest dropped)."""

    def __init__(self, max_entries: int = 256):
        if max_entries < 1:
            raise InvalidInputError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: dict[tuple, FlowEstimate] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def flow(self, clip_id: str, index_a: int, index_b: int, frame_a: np.ndarray,
             frame_b: np.ndarray, method: str = "auto",
             raft_weights: str | os.PathLike | None = None, **options) -> FlowEstimate:
        """:func:`estimate_flow` of frames ``index_a`` -> ``index_b`` of clip ``clip_id``, cached.
        ``options`` go to :func:`estimate_flow` (``data_range``, ``device``)."""
        key = (clip_id, int(index_a), int(index_b), resolve_method(method, raft_weights))
        if key not in self._entries:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))  # dicts keep insertion order
            self._entries[key] = estimate_flow(frame_a, frame_b, key[3], raft_weights, **options)
        return self._entries[key]

    def clear(self) -> None:
        self._entries.clear()


# --- accuracy ---------------------------------------------------------------------------------


def end_point_error(flow: np.ndarray, true_flow: np.ndarray, mask: np.ndarray | None = None
                    ) -> float:
    """Mean end-point error in pixels: ``mean_p ‖flow(p) − true_flow(p)‖₂`` over the pixels where
    ``mask`` (…×H×W bool or 0/1, the flow's shape without its last axis) is set, all pixels when
    it is None. ``flow``, ``true_flow``: …×H×W×2 in the same convention. An empty mask is an
    error (no pixels to score)."""
    flow = np.asarray(flow)
    true_flow = np.asarray(true_flow)
    for name, value in (("flow", flow), ("true_flow", true_flow)):
        if value.ndim < 3 or value.shape[-1] != 2:
            raise InvalidInputError(f"{name} must be …×H×W×2 (pixels, x then y), got shape "
                                    f"{value.shape}")
        if not np.isfinite(value).all():
            raise InvalidInputError(f"{name} contains NaN or inf values")
    if flow.shape != true_flow.shape:
        raise InvalidInputError(f"flow and true_flow must have the same shape, got {flow.shape} "
                                f"and {true_flow.shape}")
    errors = np.linalg.norm(flow.astype(np.float64) - true_flow, axis=-1)  # …×H×W
    if mask is None:
        return float(errors.mean())
    mask = np.asarray(mask)
    if mask.shape != errors.shape:
        raise InvalidInputError(f"mask must have shape {errors.shape}, got {mask.shape}")
    if not mask.any():
        raise InvalidInputError("mask selects no pixels: nothing to score")
    return float(errors[mask.astype(bool)].mean())
