"""Low-light video clips: static clips, synthetic camera motion with true flow, real video files.

- **Static clips** repeat one clean frame with independent noise per frame: how the cfa paper
  (Chhirolya et al., BMVC 2022) and SMID (Chen et al., ICCV 2019) train on static videos.
- **Dynamic clips** move a virtual camera smoothly over a larger image (translation, small rotation
  and zoom), rendered with bilinear ``cv2.remap``; the motion is a known similarity transform per
  frame, so the optical flow between frames is exact (no occlusions except at the borders).
- **Darkening**: in sRGB as the cfa paper's Setting 2 (:func:`llve.data.synth.darken_srgb`), or in
  raw as a stand-in for its Setting 3 — the paper moves real DRV raw frames along synthetic camera
  paths; here the raw distortion is synthesised too: every frame unprocessed with one shared
  camera draw, plus raw sensor noise (:func:`llve.data.synth.dark_pair` on the clip).
- **Real video** through ``cv2.VideoCapture`` (:func:`load_video`), e.g. a real-motion clip to
  darken synthetically.

Flow convention (pixels, (x, y) = (column, row) order in the last axis):
``flow_forward[t]`` maps pixels of frame t to frame t+1, so ``frames[t][y, x] ≈
frames[t+1][y + fy, x + fx]`` with ``(fx, fy) = flow_forward[t][y, x]``; :func:`warp` applies exactly
this backward warp. ``flow_backward[t]`` maps pixels of frame t+1 to frame t.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from llve.data.synth import (
    DarkPair, NoiseModel, Seed, SrgbDarkeningParams, SyntheticRawMetadata, as_generator,
    dark_pair, darken_srgb)
from llve.errors import DatasetNotFoundError, InvalidInputError

# --- darkening ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DarkClip:
    """A darkened clip and its clean target.

    - ``dark``: ``domain="srgb"``: (T, H, W, 3) float32 dark noisy sRGB in [0, 1];
      ``domain="raw"``: (T, H, W) float32 noisy short-exposure raw, normalised, not amplified.
    - ``target``: (T, H, W, 3) float32 clean sRGB.
    - ``clean_raw``: raw domain only, (T, H, W) long-exposure raw in [0, 1]; else ``None``.
    - ``metadata``: the sRGB darkening parameters, or the synthetic raw metadata.
    """

    dark: np.ndarray
    target: np.ndarray
    domain: str
    metadata: SrgbDarkeningParams | SyntheticRawMetadata
    clean_raw: np.ndarray | None = None


def darken_clip(frames: np.ndarray, domain: str = "raw", seed: Seed = 0, ratio: float = 100.0,
                noise: str | NoiseModel = "eld", pattern: str = "RGGB") -> DarkClip:
    """Darken clean sRGB frames (T, H, W, 3) with one parameter draw for the whole clip.

    ``domain="srgb"``: cfa Setting 2 (gamma darkening + Poisson–Gaussian noise,
    :func:`~llve.data.synth.darken_srgb`; ``ratio``, ``noise``, ``pattern`` unused).
    ``domain="raw"``: raw-domain darkening standing in for cfa Setting 3's real raw distortion —
    one shared unprocessing draw, exposure ``ratio`` and raw ``noise``
    (:func:`~llve.data.synth.dark_pair`). Noise is independent per frame.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise InvalidInputError(f"expected frames (T, H, W, 3), got shape {frames.shape}")
    if domain == "srgb":
        dark, params = darken_srgb(frames, seed=seed)
        return DarkClip(dark=dark, target=frames.astype(np.float32), domain=domain, metadata=params)
    if domain == "raw":
        pair: DarkPair = dark_pair(frames, ratio=ratio, noise=noise, pattern=pattern, seed=seed)
        return DarkClip(dark=pair.noisy, target=pair.srgb, domain=domain, metadata=pair.metadata,
                        clean_raw=pair.clean)
    raise InvalidInputError(f"domain must be 'raw' or 'srgb', got {domain!r}")


def static_clip(image: np.ndarray, frames: int = 3, domain: str = "raw", seed: Seed = 0,
                ratio: float = 100.0, noise: str | NoiseModel = "eld",
                pattern: str = "RGGB") -> DarkClip:
    """One clean sRGB frame (H, W, 3) repeated ``frames`` times, each with independent noise."""
    if frames < 1:
        raise InvalidInputError(f"frames must be >= 1, got {frames}")
    image = np.asarray(image)
    clip = np.broadcast_to(image, (frames,) + image.shape)
    return darken_clip(clip, domain=domain, seed=seed, ratio=ratio, noise=noise, pattern=pattern)


# --- synthetic camera motion --------------------------------------------------------------------


@dataclass(frozen=True)
class DynamicClip:
    """Frames of a virtual camera moving over a large image, with exact flow.

    ``frames`` (T, h, w, C) float32; ``flow_forward`` and ``flow_backward`` (T-1, h, w, 2) float32 in
    pixels, (x, y) order (see the module docstring); ``poses`` (T, 4): centre x, centre y (pixels of
    the large image), rotation (radians), scale (>1 means the view covers more of the image).
    """

    frames: np.ndarray
    flow_forward: np.ndarray
    flow_backward: np.ndarray
    poses: np.ndarray


def _smooth_walk(rng: np.random.Generator, frames: int, dims: int, smoothness: float) -> np.ndarray:
    """Cumulative sum of low-pass filtered random velocities, starting at 0.

    Each of the ``dims`` velocity components peaks at a random fraction (25–100%) of 1, so clips
    differ in how fast they move, not only in direction.
    """
    velocities = ndimage.gaussian_filter1d(rng.standard_normal((frames + 8, dims)), smoothness,
                                           axis=0, mode="nearest")[4:4 + frames]
    velocities *= rng.uniform(0.25, 1.0, dims) / np.maximum(np.abs(velocities).max(axis=0), 1e-12)
    return np.cumsum(velocities, axis=0) - velocities[0]


def _pose_matrices(poses: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    """(T, 3, 3) homogeneous maps from a frame's pixel (x, y) to its position in the large image.

    A pose (cx, cy, angle, scale) puts the crop's centre at (cx, cy), rotated and scaled about it.
    """
    height, width = crop
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    cos, sin, scale = np.cos(poses[:, 2]), np.sin(poses[:, 2]), poses[:, 3]
    linear = scale[:, None, None] * np.stack([np.stack([cos, -sin], -1),
                                              np.stack([sin, cos], -1)], -2)
    matrices = np.zeros((len(poses), 3, 3))
    matrices[:, :2, :2] = linear
    matrices[:, :2, 2] = poses[:, :2] - linear @ centre
    matrices[:, 2, 2] = 1.0
    return matrices


def _apply(matrix: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply one 3×3 affine map to coordinate arrays (elementwise: no slow small matmuls)."""
    return (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2],
            matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2])


def _fit_in_image(poses: np.ndarray, crop: tuple[int, int], image_shape: tuple[int, int],
                  rng: np.random.Generator) -> np.ndarray:
    """Shrink the motion until every frame's footprint fits the image, then place it randomly."""
    height, width = crop
    corners_x = np.array([0.0, width - 1, 0.0, width - 1])
    corners_y = np.array([0.0, 0.0, height - 1, height - 1])
    limit = np.array([image_shape[1] - 1, image_shape[0] - 1], float)
    for _ in range(60):
        footprint = np.array([np.stack(_apply(matrix, corners_x, corners_y), axis=1)
                              for matrix in _pose_matrices(poses, crop)]).reshape(-1, 2)
        low, high = footprint.min(axis=0), footprint.max(axis=0)
        if np.all(high - low <= limit):
            placed = poses.copy()
            placed[:, :2] += -low + rng.uniform(0, 1, 2) * (limit - (high - low))
            return placed
        poses = poses.copy()
        poses[:, :2] *= 0.8
        poses[:, 2] *= 0.8
        poses[:, 3] = poses[:, 3] ** 0.8
    raise InvalidInputError(
        f"image of shape {image_shape} is too small for a {crop} crop; use a larger image or crop")


def dynamic_clip(image_large: np.ndarray, frames: int = 5, crop: int | tuple[int, int] = 256,
                 seed: Seed = 0, max_speed: float = 4.0, max_rotation_deg: float = 0.5,
                 max_zoom: float = 0.01, smoothness: float = 2.0) -> DynamicClip:
    """A smooth random camera path over ``image_large`` (H, W[, C]): ``frames`` views of ``crop``.

    Per frame the camera translates by at most ``max_speed`` pixels per axis, rotates by at most
    ``max_rotation_deg`` and zooms by at most ``max_zoom`` (relative); velocities are Gaussian-
    filtered white noise (``smoothness`` frames), so the path accelerates smoothly. The motion is
    shrunk if the views would leave the image. Frames are rendered by bilinear ``cv2.remap``;
    flow is computed from the poses, not estimated.
    """
    image_large = np.asarray(image_large, dtype=np.float32)
    height, width = (crop, crop) if isinstance(crop, (int, np.integer)) else tuple(crop)
    if image_large.ndim not in (2, 3) or frames < 2 or height < 2 or width < 2:
        raise InvalidInputError(
            f"need an (H, W[, C]) image, frames >= 2 and a crop of at least 2x2; got "
            f"{image_large.shape}, frames={frames}, crop={crop}")
    rng = as_generator(seed)
    walk = _smooth_walk(rng, frames, 4, smoothness)
    poses = np.stack([walk[:, 0] * max_speed, walk[:, 1] * max_speed,
                      walk[:, 2] * np.deg2rad(max_rotation_deg),
                      np.exp(walk[:, 3] * np.log1p(max_zoom))], axis=1)
    poses = _fit_in_image(poses, (height, width), image_large.shape[:2], rng)
    matrices = _pose_matrices(poses, (height, width))

    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float64)
    rendered = []
    for matrix in matrices:
        map_x, map_y = _apply(matrix, grid_x, grid_y)
        rendered.append(cv2.remap(image_large, map_x.astype(np.float32), map_y.astype(np.float32),
                                  interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101))

    def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Where each pixel of the source frame lands in the target frame, minus where it is."""
        target_x, target_y = _apply(np.linalg.inv(target) @ source, grid_x, grid_y)
        return np.stack([target_x - grid_x, target_y - grid_y], axis=-1).astype(np.float32)

    return DynamicClip(
        frames=np.stack(rendered),
        flow_forward=np.stack([flow(matrices[t], matrices[t + 1]) for t in range(frames - 1)]),
        flow_backward=np.stack([flow(matrices[t + 1], matrices[t]) for t in range(frames - 1)]),
        poses=poses)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out[y, x] = image[y + fy, x + fx]`` (bilinear), flow (H, W, 2) in (x, y).

    With ``flow = clip.flow_forward[t]``, warping frame t+1 reproduces frame t.
    """
    height, width = flow.shape[:2]
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(np.asarray(image, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# --- real video files ---------------------------------------------------------------------------


def _output_size(frame_shape: tuple[int, int], size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) for ``size``: a pair as given, an int as the length of the shorter side."""
    if isinstance(size, (int, np.integer)):
        scale = size / min(frame_shape)
        return max(1, round(frame_shape[0] * scale)), max(1, round(frame_shape[1] * scale))
    return int(size[0]), int(size[1])


def load_video(path: str | Path, max_frames: int | None = None,
               size: int | tuple[int, int] | None = None, start: int = 0) -> np.ndarray:
    """Decode a video file into float32 sRGB frames (T, H, W, 3) in [0, 1], RGB channel order.

    ``start`` skips that many frames; ``max_frames`` caps T; ``size`` resizes (area averaging):
    a (height, width) pair, or an int for the shorter side keeping the aspect ratio.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"video file not found: {path}")
    if start < 0 or (max_frames is not None and max_frames < 1):
        raise InvalidInputError(f"need start >= 0 and max_frames >= 1, got {start}, {max_frames}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InvalidInputError(f"cannot open {path} as a video (unsupported or corrupt file)")
        capture.set(cv2.CAP_PROP_POS_FRAMES, start)
        frames = []
        while max_frames is None or len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if size is not None:
                height, width = _output_size(frame.shape[:2], size)
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            frames.append(frame)
    finally:
        capture.release()
    if not frames:
        raise InvalidInputError(f"no frames decoded from {path} starting at frame {start}")
    return np.stack(frames).astype(np.float32) / 255.0
