"""Local + region patches, the tile grid and the Gaussian merge (paper Sec. 3.1 and 3.3).

Training (Sec. 3.1): a local crop N_l × N_l (360 in the paper) and a region crop N_r × N_r
(1000–2500) with the **same centre**, the region resized to N_l × N_l, concatenated into one
6-channel patch. One crop position and one horizontal flip serve both halves (the released
loader draws them independently — a bug, see ``network``'s docstring). The local crop lies
inside the frame; the region crop is centred exactly on it and reflected where it leaves the
frame (numpy's ``reflect``: the edge pixel is not repeated), so it is never shifted off-centre.

Inference (Sec. 3.3): tiles of N_l × N_l at stride N_l/2, each tile with its own region crop,
through the network; the local RGB outputs are merged as Σ w·patch / Σ w with w the outer
product of a Gaussian of μ = N_l/2, σ = N_l/6 (peak 1). The Gaussian is sampled at the
1-based pixel positions i + 1 (MATLAB's ``1:N``), which gives FACTS.md's values for N_l = 512:
w[0] = exp(−255²/(2σ²)) = 0.0115057, w[255] = 1, w[511] = exp(−256²/(2σ²)) = 0.0111090.

Tile grid: tile centres at 0, S, 2S, ... up to the first one at or past the last pixel, so every
tile is a full N_l × N_l window (no stretched or shrunk border tiles) and frame borders sit at a
tile centre, not at the low-weight tile edge; pixels of a tile outside the frame are read by
reflection and their outputs dropped.

Memory: ``enhance_frame`` streams. Tiles are read and run ``batch_size`` at a time, one row of
tiles after another, and accumulated into a band of N_l output rows (Σ w·patch, float32,
N_l × W × 3); when a tile row is done, the S rows above the next one are final, are divided by
Σ w and written to ``out``, and the band moves down. Σ w itself needs no buffer: the grid is a
product of a row grid and a column grid and the weights are outer products, so
Σ w(y, x) = a(y)·b(x) with 1-D sums a and b. Peak memory beyond the input and output is the
band (proportional to the width, not the area) plus one batch of tiles and region crops and
the network's activations. ``out`` may be an in-memory array, an ``np.lib.format.open_memmap``
or an :class:`NpyRowWriter` that appends finished rows to a ``.npy`` file, so the output need
not be in memory either.

The merge places each tile at its own (row, column); the released merge script swaps x and y
(not copied; a test on a non-square frame checks the orientation).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from llve.errors import InvalidInputError

PatchFn = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------
# Weights and the tile grid


def gaussian_weights(patch: int) -> np.ndarray:
    """1-D merge weights: exp(−(i + 1 − μ)² / 2σ²), μ = patch/2, σ = patch/6, i = 0..patch−1."""
    check_size(patch, "patch")
    position = np.arange(1, patch + 1, dtype=np.float64)  # 1-based pixel positions
    sigma = patch / 6
    return np.exp(-((position - patch / 2) ** 2) / (2 * sigma ** 2))


def merge_weights(patch: int) -> np.ndarray:
    """2-D merge weights patch × patch: the outer product of ``gaussian_weights``."""
    weights = gaussian_weights(patch)
    return np.outer(weights, weights)


def axis_starts(size: int, patch: int, stride: int) -> np.ndarray:
    """Tile starts along one axis: centres at 0, stride, ... until one reaches ``size − 1``."""
    count = math.ceil((size - 1) / stride) + 1
    return np.arange(count) * stride - patch // 2


def tile_positions(height: int, width: int, patch: int, stride: int | None = None
                   ) -> list[tuple[int, int]]:
    """(top, left) of every patch × patch tile, row by row; may lie partly outside the frame.

    Default stride patch // 2 (the paper's shift of N_l/2). Parts outside the frame are read
    by reflection (:func:`read_window`).
    """
    stride = check_stride(patch, stride)
    check_size(height, "height"), check_size(width, "width")
    return [(int(top), int(left)) for top in axis_starts(height, patch, stride)
            for left in axis_starts(width, patch, stride)]


def axis_weight_sums(size: int, patch: int, stride: int) -> np.ndarray:
    """Σ_k w(p − start_k) for every pixel p of one axis (float64): one factor of Σ w."""
    sums = np.zeros(size, dtype=np.float64)
    weights = gaussian_weights(patch)
    for start in axis_starts(size, patch, stride):
        lo, hi = max(start, 0), min(start + patch, size)
        if hi <= lo:  # wholly outside (possible when the stride is near the patch size)
            continue
        sums[lo:hi] += weights[lo - start:hi - start]
    return sums


def check_size(value: int, name: str) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")


def check_stride(patch: int, stride: int | None) -> int:
    check_size(patch, "patch")
    stride = patch // 2 if stride is None else stride
    if not isinstance(stride, (int, np.integer)) or not 1 <= stride <= patch:
        raise InvalidInputError(f"stride must be an integer in [1, patch={patch}], got {stride!r}")
    return int(stride)


# --------------------------------------------------------------------------------------
# Reading windows (reflected outside the frame)


def reflect_indices(start: int, length: int, size: int) -> np.ndarray:
    """Indices start..start+length−1 reflected into [0, size) (numpy ``reflect``, any depth)."""
    index = np.arange(start, start + length)
    if size == 1:
        return np.zeros(length, dtype=np.int64)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index < size, index, period - index)


def read_window(frame: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """frame[top:top+height, left:left+width] (H×W×C), reflected where it leaves the frame."""
    rows, cols = frame.shape[:2]
    if 0 <= top and top + height <= rows and 0 <= left and left + width <= cols:
        return np.asarray(frame[top:top + height, left:left + width])  # a view, no copy
    return np.asarray(frame[np.ix_(reflect_indices(top, height, rows),
                                   reflect_indices(left, width, cols))])


def resize_region(region: torch.Tensor, size: int) -> torch.Tensor:
    """N×C×R×R -> N×C×size×size: bilinear with antialiasing (area-like when shrinking)."""
    if region.shape[-1] == size and region.shape[-2] == size:
        return region
    return F.interpolate(region, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)


def check_frame(frame: np.ndarray) -> None:
    if not hasattr(frame, "shape") or len(frame.shape) != 3 or frame.shape[2] != 3:
        shape = tuple(frame.shape) if hasattr(frame, "shape") else type(frame).__name__
        raise InvalidInputError(f"frame must be an H×W×3 RGB array, got {shape}")
    if np.dtype(frame.dtype) != np.float32:
        raise InvalidInputError(f"frame has dtype {frame.dtype}; expected float32 RGB in [0, 1] "
                                "(divide integer images by their maximum first)")


# --------------------------------------------------------------------------------------
# Training pairs


def crop_pair(frame: np.ndarray, top: int, left: int, local: int = 360, region: int = 1000,
              flip: bool = False) -> torch.Tensor:
    """The 6×local×local patch of the local crop at (top, left) and its centred region crop.

    Channels 0–2: frame[top:top+local, left:left+local]; 3–5: the region × region window with
    the same centre (top + local/2, left + local/2), reflected outside the frame, resized to
    local × local. ``flip`` mirrors both halves left-right together. Values as in ``frame``.
    """
    check_frame(frame)
    height, width = frame.shape[:2]
    if local > region:
        raise InvalidInputError(f"the region ({region}) must be at least the local size ({local})")
    if not (0 <= top <= height - local and 0 <= left <= width - local):
        raise InvalidInputError(f"local crop {local}×{local} at ({top}, {left}) leaves the "
                                f"{height}×{width} frame")
    offset = local // 2 - region // 2  # region top-left relative to the local one: same centre
    local_crop = torch.from_numpy(read_window(frame, top, left, local, local).copy())
    region_crop = torch.from_numpy(read_window(frame, top + offset, left + offset, region,
                                               region).copy())
    local_crop = local_crop.permute(2, 0, 1)  # H×W×3 -> 3×H×W
    region_crop = resize_region(region_crop.permute(2, 0, 1)[None], local)[0]  # 3×local×local
    pair = torch.cat([local_crop, region_crop], dim=0)  # 6×local×local
    return pair.flip(-1) if flip else pair  # one flip for both halves


def training_pair(frame: np.ndarray, rng: np.random.Generator, local: int = 360,
                  region: int = 1000, flip: bool = True) -> torch.Tensor:
    """A random ``crop_pair``: one position (uniform, local crop inside) and one coin flip."""
    check_frame(frame)
    height, width = frame.shape[:2]
    if height < local or width < local:
        raise InvalidInputError(f"frame {height}×{width} is smaller than the local crop {local}")
    top = int(rng.integers(0, height - local + 1))
    left = int(rng.integers(0, width - local + 1))
    return crop_pair(frame, top, left, local, region, flip=bool(flip and rng.random() < 0.5))


# --------------------------------------------------------------------------------------
# Streaming frame enhancement


class NpyRowWriter:
    """A write-only H×W×C float32 ``.npy`` file that takes finished rows in order.

    ``writer[r0:r1] = rows`` appends rows r0..r1−1 (r0 must be the next unwritten row), so
    ``enhance_frame(..., out=NpyRowWriter(path, shape))`` keeps no output in memory; read the
    result with ``np.load(path, mmap_mode="r")``. Use as a context manager or call ``close``.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int, int]):
        self.path, self.shape, self.next_row = Path(path), tuple(shape), 0
        self.dtype = np.dtype(np.float32)
        self.file = open(self.path, "wb")
        np.lib.format.write_array_header_1_0(
            self.file, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                        "shape": self.shape})

    def __setitem__(self, rows: slice, values: np.ndarray) -> None:
        start, stop, step = rows.indices(self.shape[0])
        if start != self.next_row or step != 1:
            raise InvalidInputError(f"NpyRowWriter takes rows in order: expected row "
                                    f"{self.next_row}, got {start}:{stop}")
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape != (stop - start, *self.shape[1:]):
            raise InvalidInputError(f"rows {start}:{stop} need shape "
                                    f"{(stop - start, *self.shape[1:])}, got {values.shape}")
        self.file.write(values.tobytes())
        self.next_row = stop

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
            if self.next_row != self.shape[0]:
                raise InvalidInputError(f"{self.path}: only {self.next_row} of {self.shape[0]} "
                                        "rows were written")

    def __enter__(self) -> "NpyRowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _tile_inputs(frame: np.ndarray, positions: list[tuple[int, int]], patch: int,
                 region: int | None) -> torch.Tensor:
    """B×3×patch×patch local tiles (+ B×3 resized region crops -> B×6) of ``positions``."""
    local = np.stack([read_window(frame, top, left, patch, patch) for top, left in positions])
    tiles = torch.from_numpy(local).permute(0, 3, 1, 2)  # B×P×P×3 -> B×3×P×P
    if region is None:
        return tiles.contiguous()
    offset = patch // 2 - region // 2  # region window shares the tile's centre
    crops = np.stack([read_window(frame, top + offset, left + offset, region, region)
                      for top, left in positions])
    crops = resize_region(torch.from_numpy(crops).permute(0, 3, 1, 2), patch)  # B×3×P×P
    return torch.cat([tiles, crops], dim=1).contiguous()  # B×6×P×P


def enhance_frame(frame: np.ndarray, patch_fn: PatchFn, patch: int = 512,
                  region: int | None = None, stride: int | None = None, batch_size: int = 4,
                  out=None) -> np.ndarray:
    """Enhance an H×W×3 float32 frame tile by tile and merge with Gaussian weights.

    ``patch_fn`` maps a float32 batch B×C×patch×patch in the frame's range (C = 3, or 6 with a
    ``region`` size: local RGB + the region crop resized to the patch) to B×C'×patch×patch
    (C' ≥ 3; channels 0–2 are the local RGB that is merged). It runs under
    ``torch.inference_mode``. ``out``: where the result goes (default: a new H×W×3 float32
    array); any object taking ``out[r0:r1] = rows`` for consecutive row ranges (an array, an
    ``open_memmap``, an :class:`NpyRowWriter`). Returns ``out``.
    """
    check_frame(frame)
    stride = check_stride(patch, stride)
    if region is not None and region < patch:
        raise InvalidInputError(f"region ({region}) must be at least the patch size ({patch})")
    check_size(batch_size, "batch_size")
    height, width = frame.shape[:2]
    if out is None:
        out = np.empty((height, width, 3), dtype=np.float32)
    row_starts = axis_starts(height, patch, stride)
    col_starts = axis_starts(width, patch, stride)
    row_sums = axis_weight_sums(height, patch, stride)  # Σ w = row_sums[y] · col_sums[x]
    col_sums = axis_weight_sums(width, patch, stride)
    weights = merge_weights(patch).astype(np.float32)[..., None]  # P×P×1
    band = np.zeros((patch, width, 3), dtype=np.float32)  # Σ w·patch of rows band_top..+patch
    band_top = int(row_starts[0])
    written = 0

    def flush(stop: int) -> None:
        """Divide rows written..stop−1 by Σ w and hand them to ``out``."""
        nonlocal written
        if stop <= written:
            return
        rows = band[written - band_top:stop - band_top]
        norm = (row_sums[written:stop, None] * col_sums[None, :]).astype(np.float32)
        out[written:stop] = rows / norm[..., None]
        written = stop

    for tile_row, top in enumerate(row_starts):
        top = int(top)
        if top != band_top:  # move the band down: rows above ``top`` are final
            flush(min(max(top, 0), height))
            shift = top - band_top
            band[:patch - shift] = band[shift:]
            band[patch - shift:] = 0
            band_top = top
        positions = [(top, int(left)) for left in col_starts]
        for batch in _batches(positions, batch_size):
            with torch.inference_mode():
                result = patch_fn(_tile_inputs(frame, batch, patch, region))
            if result.ndim != 4 or result.shape[0] != len(batch) or result.shape[1] < 3 \
                    or tuple(result.shape[2:]) != (patch, patch):
                raise InvalidInputError(f"patch_fn must return B×C×{patch}×{patch} with C >= 3 "
                                        f"and B = {len(batch)}, got {tuple(result.shape)}")
            local = result[:, :3].float().permute(0, 2, 3, 1).cpu().numpy()  # B×P×P×3
            for (_, left), tile in zip(batch, local):
                # The part of the tile inside the frame, in band and tile coordinates.
                y0, y1 = max(top, 0), min(top + patch, height)
                x0, x1 = max(left, 0), min(left + patch, width)
                if y1 <= y0 or x1 <= x0:  # a tile wholly outside the frame (stride near patch)
                    continue
                band[y0 - band_top:y1 - band_top, x0:x1] += (
                    tile[y0 - top:y1 - top, x0 - left:x1 - left]
                    * weights[y0 - top:y1 - top, x0 - left:x1 - left])
    flush(height)
    return out


def generator_patch_fn(generator: torch.nn.Module, device: str | torch.device = "cpu") -> PatchFn:
    """A ``patch_fn`` running a UHR CycleGAN generator on [0, 1] tiles: [0, 1] -> [-1, 1] ->
    generator -> local RGB back in [0, 1]."""
    generator = generator.eval()

    def run(tiles: torch.Tensor) -> torch.Tensor:
        output = generator(tiles.to(device) * 2 - 1)
        return ((output[:, :3] + 1) / 2).cpu()

    return run
