"""Adaptive temporal smoothing of a frame-by-frame enhanced UHR video (uhr_cyclegan, paper §3.4).

Paper: N. Anantrasirichai and D. Bull, "Contextual colorization and denoising for low-light ultra
high resolution sequences", ICIP 2021, §3.4 "Temporal smoothing". The released code does not
contain this step (../shared/papers/FACTS.md): everything here is written from the paper's text,
which says:

- frames are enhanced one at a time, so brightness and colour flicker; a **pixelwise average
  over a temporal sliding window** smooths them;
- each frame of the window is **warped and registered to the current frame** (multi-scale
  gradient matching for large displacements, then wavelet-based registration for the fine ones);
- the window is per pixel, at most ``N_max`` frames backward and ``N_max`` forward
  (``N_max = 6``): "pixels with larger motion will be constructed with fewer frames, whilst the
  stable pixels will be the average of all 2·N_max + 1"; "if the motion is more than 256
  pixels, no neighbouring frames are used".

What is implemented, per output frame t (:func:`smooth_frame`):

1. Registration: for every neighbour t+d (0 < |d| ≤ N_max, inside the clip) the flow
   ``F_d = estimate_flow(frame_t, frame_{t+d})`` (:mod:`llve.models.flow`: RAFT-small when its
   weights are found, OpenCV DIS otherwise), so ``warp(frame_{t+d}, F_d)`` is the neighbour
   registered onto frame t (llve's backward-warp convention, :mod:`llve.data.video`).
2. Window rule (:func:`window_half_sizes`): the motion of pixel p towards neighbour t+d is the
   length of its registration displacement, ``m_d(p) = ‖F_d(p)‖`` in full-resolution pixels.
   The half window is the largest ``n ≤ N_max`` such that every neighbour with ``|d| ≤ n``
   (on both sides) moved at most ``max_motion`` = 256 pixels (at 5K–8K; deviation 5):

       n(p) = max{ n ≤ N_max : m_d(p) ≤ 256 for all 0 < |d| ≤ n that exist }.

   So a pixel whose adjacent frames already moved more than 256 px uses no neighbours (the
   paper's rule), a stable pixel uses all 2·N_max + 1 frames, and, since displacements grow with
   temporal distance, a pixel moving v px per frame keeps about ``min(N_max, ⌊256 / v⌋)``
   frames per side: larger motion, fewer frames. The window is symmetric so the average stays
   centred on frame t; at the clip's ends the missing frames are simply absent (the window is
   not cut to the shorter side, or the first and last frames would not be smoothed at all).
3. Plain pixel average: ``out_t(p) = Σ_{d ∈ W(p)} warp(frame_{t+d}, F_d)(p) / |W(p)|`` with
   ``W(p) = {0} ∪ {d : |d| ≤ n(p), p + F_d(p) inside the image}`` (deviation 4; with the
   optional photometric check of deviation 6, also close enough to frame t's value).

Differences from the paper, each for a reason:

1. Registration is one dense optical-flow estimate per neighbour (RAFT-small or DIS, both
   coarse-to-fine, i.e. multi-scale), standing in for the paper's gradient-matching warp [27]
   followed by wavelet registration [28]: neither of those has public code here, and they serve
   the same purpose (dense registration of each window frame onto the current one). The flow
   method used is recorded (:attr:`TemporalSmoother.flow_method`).
2. For UHR frames the flow is computed on a copy downscaled by an integer factor
   ``f = ⌈max(H, W) / flow_max_side⌉`` (area averaging; ``flow_max_side`` = 1024, so 8K
   7680×4320 frames use f = 8, 960×540; 5K 5120×2880 use f = 5, 1024×576; frames up to 1024 px
   use f = 1), then the flow is upsampled bilinearly and multiplied by the actual per-axis size
   ratio. The paper gives no resolution for its registration; a flow network or DIS at 8K would
   cost minutes per frame pair, and 256 px of full-resolution motion is 32 px at f = 8, well
   within both estimators' range. The window rule runs at the flow resolution (nearest-neighbour
   upsampled to full resolution), the warps and the average at full resolution.
3. Registration input is brightness-normalised (the averaged frames are not): the current
   frame's downscaled copy is stretched so its 99th percentile is 0.9 (frames on [0, 1]), and
   each neighbour's by the same gain times ``mean(current) / mean(neighbour)``. So the flicker
   being removed does not bias the flow, and dark frames use the estimators' 8-bit (DIS) or
   0..255 (RAFT) range instead of a few grey levels. The paper does not say how its
   registration copes with flicker.
4. Pixels whose registered position falls outside the neighbour frame are left out of that
   neighbour's term (they would read replicated border pixels). The paper does not discuss
   borders or occlusions; occlusions are not detected (no forward–backward check): the window
   rule is the paper's only defence against ghosting.
5. ``max_motion`` is in pixels of the frames being smoothed, 256 by default as in the paper,
   whose frames are 5K–8K wide. On much smaller frames 256 px never binds (it is most of the
   frame), so every pixel gets the full window and moving objects ghost; experiments on small
   frames pass :func:`scaled_max_motion` (256 px per 7680 px of width, i.e. the 8K fraction).
6. Optional, off by default (not in the paper): ``max_difference`` leaves out registered
   neighbour pixels that still differ from the current pixel after the global flicker gain is
   matched, a photometric guard against misregistration (occlusions, flow errors at motion
   boundaries).

Streaming: :class:`TemporalSmoother` takes frames one at a time (``push``) and returns each
smoothed frame as soon as its N_max forward neighbours have arrived (``flush`` ends the clip);
it holds at most 2·N_max + 1 frames. :func:`smooth_clip` runs it over a whole array.

Metrics (for flicker and ghosting checks):

- :func:`brightness_flicker`: ``(1/(T−1)) Σ_t |μ_{t+1} − μ_t|`` with μ_t the mean of frame t over
  pixels and channels: the frame-to-frame jump of the global brightness (0 for a static clip
  without flicker; camera motion alone gives small non-zero values).
- :func:`warped_flicker`: :func:`llve.metrics.warping_error` of the clip with a given flow
  (``(1/(T−1)) Σ_t mean_p ‖O_t(p) − warp(O_{t+1}, F_t)(p)‖²`` over pixels whose match stays inside
  the frame): local flicker along the motion; name the flow's source with every number.
- :func:`ghosting_error`: mean absolute error against the clean clip over a mask of moving
  pixels (``Σ_{t,p∈M} |S_t(p) − C_t(p)|₁ / (C·|M|)``): smoothing that blends misregistered
  frames raises it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping

import cv2
import numpy as np
import torch

from llve.data.synth import Seed, as_generator
from llve.data.video import warp
from llve.errors import InvalidInputError
from llve.metrics import warping_error
from llve.models.flow import estimate_flow, resolve_method

MAX_NEIGHBOURS = 6  # N_max: frames backward and forward (paper §3.4)
MAX_MOTION = 256.0  # pixels of motion beyond which no neighbour is used (paper §3.4)
PAPER_WIDTH = 7680  # the paper's largest frames (8K); its 5K sequences use the same 256 px
FLOW_MAX_SIDE = 1024  # longest side of the copy the flow is computed on (deviation 2)

FlowFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``flow(current, neighbour)`` -> H×W×2 flow from current to neighbour (llve's convention)."""


# --- the window rule ---------------------------------------------------------------------------


def window_half_sizes(motion: Mapping[int, np.ndarray], max_neighbours: int = MAX_NEIGHBOURS,
                      max_motion: float = MAX_MOTION) -> np.ndarray:
    """Per-pixel half window n(p) (H×W int): the largest n ≤ ``max_neighbours`` such that every
    neighbour offset d with 0 < |d| ≤ n present in ``motion`` has ``motion[d](p) ≤ max_motion``.

    ``motion``: temporal offset d (±1..±max_neighbours, absent at the clip's ends) -> H×W motion
    magnitude of each pixel towards that neighbour, in pixels. Module docstring, step 2.
    """
    if not motion:
        raise InvalidInputError("motion needs at least one neighbour offset")
    shape = next(iter(motion.values())).shape
    for offset, magnitude in motion.items():
        if not (isinstance(offset, (int, np.integer)) and 0 < abs(offset) <= max_neighbours):
            raise InvalidInputError(f"motion offsets must be 0 < |d| <= {max_neighbours}, got {offset}")
        if magnitude.shape != shape:
            raise InvalidInputError(f"motion maps must share one shape, got {magnitude.shape} "
                                    f"for d={offset} and {shape}")
    half = np.zeros(shape, np.int16)
    alive = np.ones(shape, bool)  # n(p) >= k so far
    for k in range(1, max_neighbours + 1):
        for offset in (-k, k):
            if offset in motion:
                alive &= motion[offset] <= max_motion
        half[alive] = k
    return half


def scaled_max_motion(width: int, reference_width: int = PAPER_WIDTH) -> float:
    """The paper's 256-pixel limit as the same fraction of the frame width:
    ``256 · width / reference_width`` (deviation 5). ``scaled_max_motion(7680) == 256``."""
    if width < 1 or reference_width < 1:
        raise InvalidInputError(f"widths must be >= 1, got {width}, {reference_width}")
    return MAX_MOTION * width / reference_width


# --- registration at a reduced resolution ------------------------------------------------------


def flow_downscale(shape: tuple[int, int], flow_max_side: int = FLOW_MAX_SIDE) -> int:
    """The integer factor ⌈max(H, W) / flow_max_side⌉ (at least 1) the flow copy is reduced by."""
    if flow_max_side < 8:
        raise InvalidInputError(f"flow_max_side must be >= 8 pixels, got {flow_max_side}")
    return max(1, math.ceil(max(shape) / flow_max_side))


def _downscaled(frame: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return frame
    height, width = frame.shape[:2]
    size = (max(1, round(width / factor)), max(1, round(height / factor)))  # cv2: (w, h)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _upsampled_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """H×W×2 flow in full-resolution pixels from a flow on the reduced grid (bilinear)."""
    height, width = shape
    if flow.shape[:2] == (height, width):
        return flow
    scale = np.array([width / flow.shape[1], height / flow.shape[0]], np.float32)  # (x, y)
    return cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * scale


def _nearest(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if values.shape == tuple(shape):
        return values
    return cv2.resize(values, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


REGISTRATION_WHITE = 0.9  # the current frame's 99th percentile in the registration copies


def _registration_pair(current: np.ndarray, neighbour: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Brightness-normalised copies for registration only (deviation 3): the current frame
    stretched so its 99th percentile is :data:`REGISTRATION_WHITE`, the neighbour by the same
    gain times ``mean(current) / mean(neighbour)`` (its flicker taken out)."""
    white, mean = float(np.percentile(current, 99)), float(neighbour.mean())
    gain = REGISTRATION_WHITE / white if white > 0 else 1.0
    match = float(current.mean()) / mean if mean > 0 else 1.0
    return current * np.float32(gain), neighbour * np.float32(gain * match)


def _inside(flow: np.ndarray) -> np.ndarray:
    """H×W bool: p + flow(p) lies inside the frame."""
    height, width = flow.shape[:2]
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


# --- one frame and the stream ------------------------------------------------------------------


def _check_frame(frame: object, name: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3):
        raise InvalidInputError(f"{name} must be a numpy array H×W or H×W×C, got "
                                f"{getattr(frame, 'shape', type(frame).__name__)}")
    if not np.issubdtype(frame.dtype, np.floating):
        raise InvalidInputError(f"{name} must be a float array, got dtype {frame.dtype}")
    if not np.isfinite(frame).all():
        raise InvalidInputError(f"{name} contains NaN or inf values")
    return frame.astype(np.float32, copy=False)


def smooth_frame(current: np.ndarray, neighbours: Mapping[int, np.ndarray], flow: FlowFunction,
                 max_neighbours: int = MAX_NEIGHBOURS, max_motion: float = MAX_MOTION,
                 flow_max_side: int = FLOW_MAX_SIDE,
                 reduced: Mapping[int, np.ndarray] | None = None,
                 max_difference: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One smoothed frame and its half-window map (at the flow resolution).

    ``current``: H×W[×C] float frame t on [0, 1]; ``neighbours``: offset d -> frame t+d (same shape);
    ``flow``: ``(current_copy, neighbour_copy) -> flow`` on the reduced copies. ``reduced``
    optionally gives the reduced copies already made (offset 0 = current), so a stream reduces
    each frame once. ``max_difference`` (off by default): also leave out a registered
    neighbour pixel whose brightness-matched value differs from the current pixel by more than
    this (mean absolute over channels; deviation 6). Module docstring, steps 1–3.
    """
    shape = current.shape[:2]
    factor = flow_downscale(shape, flow_max_side)
    reduced = dict(reduced or {})
    for offset, frame in [(0, current), *neighbours.items()]:
        if offset not in reduced:
            reduced[offset] = _downscaled(frame, factor)
    flows, motion = {}, {}
    for offset in neighbours:
        small = np.asarray(flow(*_registration_pair(reduced[0], reduced[offset])),
                           np.float32)  # h×w×2 on the reduced grid
        scale = np.array([shape[1] / small.shape[1], shape[0] / small.shape[0]], np.float32)
        flows[offset] = small
        motion[offset] = np.linalg.norm(small * scale, axis=-1)  # full-resolution pixels
    if not neighbours:
        return current.copy(), np.zeros(reduced[0].shape[:2], np.int16)
    half = window_half_sizes(motion, max_neighbours, max_motion)
    half_full = _nearest(half, shape)
    total = current.astype(np.float32).copy()
    count = np.ones(shape, np.float32)
    for offset, frame in neighbours.items():
        full_flow = _upsampled_flow(flows[offset], shape)
        use = (half_full >= abs(offset)) & _inside(full_flow)
        if not use.any():
            continue
        registered = warp(frame, full_flow)  # frame t+d moved onto frame t
        if max_difference is not None:
            match = float(current.mean()) / max(float(frame.mean()), 1e-12)  # flicker out
            difference = np.abs(registered * np.float32(match) - current)
            difference = difference.mean(axis=-1) if difference.ndim == 3 else difference
            use &= difference <= max_difference
        weight = use.astype(np.float32)
        total += registered * (weight[..., None] if registered.ndim == 3 else weight)
        count += weight
    return total / (count[..., None] if total.ndim == 3 else count), half


class TemporalSmoother:
    """Streaming adaptive temporal smoothing: ``push`` frames in, smoothed frames come out.

    Each ``push`` returns the frames that became complete (frame t once frame t + N_max has
    arrived; none for the first N_max pushes); ``flush`` returns the rest at the end of the clip.
    ``flow_method`` / ``raft_weights`` / ``device`` choose the registration flow
    (:func:`llve.models.flow.estimate_flow`; :attr:`flow_method` is the method actually used),
    or ``flow`` replaces it by any ``(current, neighbour) -> flow`` function. With
    ``keep_windows`` the half-window maps (flow resolution) are kept in :attr:`windows`.
    ``max_motion``: the paper's 256 px is meant for 5K–8K frames; for smaller frames
    :func:`scaled_max_motion` gives the same fraction of the width. ``max_difference``: the
    optional photometric check of :func:`smooth_frame` (not in the paper; off by default).
    """

    def __init__(self, max_neighbours: int = MAX_NEIGHBOURS, max_motion: float = MAX_MOTION,
                 flow_method: str = "auto", raft_weights: str | os.PathLike | None = None,
                 flow_max_side: int = FLOW_MAX_SIDE, device: str = "auto",
                 flow: FlowFunction | None = None, keep_windows: bool = False,
                 max_difference: float | None = None):
        if not (isinstance(max_neighbours, (int, np.integer)) and max_neighbours >= 0):
            raise InvalidInputError(f"max_neighbours must be an int >= 0, got {max_neighbours!r}")
        if not max_motion >= 0:
            raise InvalidInputError(f"max_motion must be >= 0 pixels, got {max_motion!r}")
        flow_downscale((1, 1), flow_max_side)  # checks flow_max_side
        self.max_neighbours = int(max_neighbours)
        self.max_motion = float(max_motion)
        self.flow_max_side = flow_max_side
        if max_difference is not None and not max_difference >= 0:
            raise InvalidInputError(f"max_difference must be >= 0 or None, got {max_difference!r}")
        self.max_difference = max_difference
        if flow is None:
            self.flow_method = resolve_method(flow_method, raft_weights)

            def flow(current: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
                return estimate_flow(current, neighbour, self.flow_method, raft_weights,
                                     device=device).flow
        else:
            self.flow_method = getattr(flow, "__name__", "custom")
        self._flow = flow
        self.keep_windows = keep_windows
        self.windows: list[np.ndarray] = []
        self._frames: dict[int, np.ndarray] = {}  # index -> frame, at most 2·N_max + 1
        self._reduced: dict[int, np.ndarray] = {}
        self._received = 0
        self._emitted = 0
        self._shape: tuple[int, ...] | None = None

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        """Add the next frame; return the smoothed frames that became complete."""
        frame = _check_frame(frame, f"frame {self._received}")
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise InvalidInputError(f"frame {self._received} has shape {frame.shape}, the clip's "
                                    f"frames have {self._shape}")
        factor = flow_downscale(frame.shape[:2], self.flow_max_side)
        self._frames[self._received] = frame
        self._reduced[self._received] = _downscaled(frame, factor)
        self._received += 1
        ready = []
        while self._emitted + self.max_neighbours < self._received:
            ready.append(self._emit())
        return ready

    def flush(self) -> list[np.ndarray]:
        """The remaining smoothed frames (their forward windows end with the clip)."""
        ready = []
        while self._emitted < self._received:
            ready.append(self._emit())
        return ready

    def _emit(self) -> np.ndarray:
        t = self._emitted
        offsets = [d for d in range(-self.max_neighbours, self.max_neighbours + 1)
                   if d and (t + d) in self._frames]
        smoothed, half = smooth_frame(
            self._frames[t], {d: self._frames[t + d] for d in offsets}, self._flow,
            self.max_neighbours, self.max_motion, self.flow_max_side,
            reduced={d: self._reduced[t + d] for d in [0, *offsets]},
            max_difference=self.max_difference)
        if self.keep_windows:
            self.windows.append(half)
        self._emitted += 1
        for old in [index for index in self._frames if index < self._emitted - self.max_neighbours]:
            del self._frames[old], self._reduced[old]  # no later frame needs it
        return smoothed


def smooth_stream(frames: Iterable[np.ndarray], **options) -> Iterator[np.ndarray]:
    """Smoothed frames, in order, from any iterable of frames (options: :class:`TemporalSmoother`)."""
    smoother = TemporalSmoother(**options)
    for frame in frames:
        yield from smoother.push(frame)
    yield from smoother.flush()


def smooth_clip(frames: np.ndarray, **options) -> np.ndarray:
    """:func:`smooth_stream` over a T×H×W[×C] array; returns the smoothed T×H×W[×C] float32."""
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or len(frames) < 1:
        raise InvalidInputError(f"frames must be T×H×W or T×H×W×C, got shape {frames.shape}")
    return np.stack(list(smooth_stream(frames, **options)))


# --- flicker injection and metrics -------------------------------------------------------------


def add_flicker(frames: np.ndarray, amplitude: float = 0.1, colour_amplitude: float = 0.0,
                seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames T×H×W×C multiplied by per-frame gains: ``g_{t,c} = (1 + a·u_t)·(1 + b·v_{t,c})``
    with u, v ~ U(−1, 1) independent (a = ``amplitude`` brightness, b = ``colour_amplitude``
    per channel). Returns (flickering float32 frames, gains T×C). No clipping."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 4:
        raise InvalidInputError(f"frames must be T×H×W×C, got shape {frames.shape}")
    if not (0 <= amplitude < 1 and 0 <= colour_amplitude < 1):
        raise InvalidInputError(f"amplitudes must be in [0, 1), got {amplitude}, {colour_amplitude}")
    rng = as_generator(seed)
    length, channels = frames.shape[0], frames.shape[-1]
    gains = (1 + amplitude * rng.uniform(-1, 1, (length, 1)))
    gains = gains * (1 + colour_amplitude * rng.uniform(-1, 1, (length, channels)))
    return frames * gains[:, None, None, :].astype(np.float32), gains


def _check_clip(frames: object, name: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or len(frames) < 2:
        raise InvalidInputError(f"{name} must be T×H×W[×C] with T >= 2, got shape {frames.shape}")
    if not np.isfinite(frames).all():
        raise InvalidInputError(f"{name} contains NaN or inf values")
    return frames.astype(np.float64)


def brightness_flicker(frames: np.ndarray) -> float:
    """``(1/(T−1)) Σ_t |μ_{t+1} − μ_t|``, μ_t = the mean of frame t (pixels and channels)."""
    means = _check_clip(frames, "frames").reshape(len(frames), -1).mean(axis=1)
    return float(np.abs(np.diff(means)).mean())


def warped_flicker(frames: np.ndarray, flow: np.ndarray) -> float:
    """:func:`llve.metrics.warping_error` of T×H×W×C frames with the flow t -> t+1 (T−1)×H×W×2:
    mean squared difference of consecutive frames aligned along the flow (module docstring)."""
    frames = _check_clip(frames, "frames")
    frames = frames[..., None] if frames.ndim == 3 else frames
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)[None]  # 1×T×C×H×W
    flow_tensor = torch.from_numpy(np.asarray(flow, np.float64)).permute(0, 3, 1, 2)[None]
    return float(warping_error(video, flow_tensor)[0])  # flow: 1×(T−1)×2×H×W


def ghosting_error(smoothed: np.ndarray, clean: np.ndarray, moving_mask: np.ndarray) -> float:
    """Mean absolute error of ``smoothed`` against ``clean`` (T×H×W[×C]) over the pixels where
    ``moving_mask`` (T×H×W bool) is set, averaged over channels."""
    smoothed, clean = _check_clip(smoothed, "smoothed"), _check_clip(clean, "clean")
    if smoothed.shape != clean.shape:
        raise InvalidInputError(f"smoothed and clean must have the same shape, got "
                                f"{smoothed.shape} and {clean.shape}")
    mask = np.asarray(moving_mask, bool)
    if mask.shape != clean.shape[:3]:
        raise InvalidInputError(f"moving_mask must have shape {clean.shape[:3]}, got {mask.shape}")
    if not mask.any():
        raise InvalidInputError("moving_mask selects no pixels")
    error = np.abs(smoothed - clean)
    error = error.mean(axis=-1) if error.ndim == 4 else error
    return float(error[mask].mean())
