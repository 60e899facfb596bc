"""Real paired datasets (for users who have them) and CFA-phase-preserving training crops.

Nothing here downloads: a dataset lives under the user's data root (``LLVE_DATA`` or
``--data-root``) and :func:`check_layout` says, by printing the expected folder tree, what is
missing when it is not there.

SID Sony (Chen, Chen, Xu, Koltun, "Learning to See in the Dark", CVPR 2018)
--------------------------------------------------------------------------
Layout: ``<root>/Sony/short/*.ARW`` (short exposures) and ``<root>/Sony/long/*.ARW`` (long
exposures, the ground truth), where ``<root>`` is the SID folder itself or a data root holding
``SID/``. File names are ``SSSSS_EE_Ts.ARW``: a five-digit scene id whose first digit is the
split (0 train, 1 test, 2 validation), a two-digit shot number, and the exposure time in
seconds (``00001_00_0.1s.ARW``, ``00001_00_10s.ARW``). As in SID's code:

- every short exposure is paired with its scene's long exposure (shot ``00``, or the first by
  name when a scene has no shot ``00``);
- the amplification is ``min(t_gt / t_in, 300)`` with both times read from the file names;
- the input is ``max(raw − black, 0) / (white − black)`` (``llve.data.raw.read_raw``), not
  amplified and not clipped at 1 (a raw value cannot exceed white anyway);
- the target is LibRaw's rendering of the long exposure, ``postprocess(use_camera_wb=True,
  half_size=False, no_auto_bright=True, output_bps=16) / 65535``
  (``llve.data.isp.sid_ground_truth``), at the mosaic's full resolution.

Test scenes 10034, 10045 and 10172 are misaligned between their short and long exposures (noted
by SID's authors and excluded from scores by later work, e.g. ELD); their items carry
``excluded_from_scores=True`` so that tables skip them while pictures may still show them.

Crops that keep the CFA phase
-----------------------------
A Bayer mosaic's colour layout depends on where a crop starts and on how it is flipped. The
released Lamba code flips the unpacked mosaic and crops at any offset, so an RGGB network is
trained on GRBG/GBRG/BGGR crops half of the time. :class:`RawCrop` instead

- crops at even offsets (the 2×2 phase is kept);
- mirrors a crop by taking the window one pixel further (an odd offset) and reversing it: a
  window of even size that starts on an odd row ends on an even one, so after the reversal its
  first row is again a red/green row. The mirror is exact, and the same window of the target is
  mirrored with it. (Flipping the four packed planes, the other common fix, also keeps the
  phase but moves each colour plane by one pixel against the mirrored target.)
- transposes only patterns that a transpose maps onto themselves (RGGB, BGGR: the greens trade
  places, R and B stay); a transposed GRBG would be GBRG, so those patterns are not transposed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llve.data.cfa import BAYER_PATTERNS
from llve.data.isp import sid_ground_truth
from llve.data.raw import read_raw
from llve.errors import DatasetNotFoundError, InvalidInputError, UnknownNameError

# --------------------------------------------------------------------------------------------
# Layout checks with an "expected tree" message (shared by every real dataset)


@dataclass(frozen=True)
class DatasetLayout:
    """How a dataset sits on disk: a printable tree and the folders/files that must exist.

    ``required`` maps a path relative to the dataset root to a glob that must match at least one
    entry inside it (``""`` for a path that must merely exist). ``folder_names`` are the names
    the dataset may have under a shared data root (tried after the root itself).
    """

    name: str
    tree: str
    required: Mapping[str, str]
    folder_names: tuple[str, ...] = ()


LAYOUTS: dict[str, DatasetLayout] = {
    "sid_sony": DatasetLayout(
        name="SID Sony (Learning to See in the Dark, Sony α7S II subset)",
        tree=("<root>/                      the SID folder, or a data root holding SID/\n"
              "└── Sony/\n"
              "    ├── short/               short exposures: 00001_00_0.1s.ARW, ...\n"
              "    └── long/                long exposures (target): 00001_00_10s.ARW, ..."),
        required={"Sony/short": "*.ARW", "Sony/long": "*.ARW"},
        folder_names=("SID",),
    ),
}


def missing_entries(root: Path, required: Mapping[str, str]) -> list[str]:
    """The entries of ``required`` (path -> glob) that ``root`` lacks, described for a person."""
    missing = []
    for relative, pattern in required.items():
        path = root / relative
        if not path.exists():
            missing.append(f"{relative}/ (folder not found)")
        elif pattern and not any(path.glob(pattern)):
            missing.append(f"{relative}/{pattern} (no matching file)")
    return missing


def expected_tree_error(layout: DatasetLayout, root: Path, missing: Sequence[str]
                        ) -> DatasetNotFoundError:
    """A :class:`DatasetNotFoundError` that prints the expected tree and what is missing."""
    lines = [f"{layout.name} not found under {root}.", "Expected layout:", layout.tree,
             "Missing:", *[f"  - {entry}" for entry in missing],
             "Nothing is downloaded: get the dataset from its authors and pass its folder as "
             "--data-root (or set LLVE_DATA)."]
    return DatasetNotFoundError("\n".join(lines))


def check_layout(root: str | os.PathLike, dataset: str = "sid_sony") -> Path:
    """The dataset's root folder (``root`` or ``root/<folder name>``); raises when incomplete.

    Raises :class:`DatasetNotFoundError` with the expected tree and the missing entries (as seen
    from ``root`` itself), :class:`UnknownNameError` for an unknown ``dataset``.
    """
    if dataset not in LAYOUTS:
        raise UnknownNameError(f"unknown dataset {dataset!r}: expected one of {sorted(LAYOUTS)}")
    layout = LAYOUTS[dataset]
    root = Path(root).expanduser()
    for candidate in (root, *(root / name for name in layout.folder_names)):
        if candidate.is_dir() and not missing_entries(candidate, layout.required):
            return candidate
    raise expected_tree_error(layout, root, missing_entries(root, layout.required))


# --------------------------------------------------------------------------------------------
# CFA-phase-preserving crops


@dataclass(frozen=True)
class RawCrop:
    """A square window of a mosaic (and of its aligned target), optionally mirrored/transposed.

    ``top``/``left`` are the window's first row/column in the source; they are even, except
    odd along an axis that is flipped (see the module docstring: that keeps the Bayer phase).
    ``apply`` takes H×W or H×W×C arrays, so a mosaic and its full-resolution target get the
    same pixels.
    """

    top: int
    left: int
    size: int
    flip_rows: bool = False
    flip_columns: bool = False
    transpose: bool = False

    def apply(self, image: np.ndarray) -> np.ndarray:
        window = image[self.top:self.top + self.size, self.left:self.left + self.size]
        if window.shape[:2] != (self.size, self.size):
            raise InvalidInputError(f"crop {self} does not fit an image of shape {image.shape}")
        if self.flip_rows:
            window = window[::-1]
        if self.flip_columns:
            window = window[:, ::-1]
        if self.transpose:
            window = window.swapaxes(0, 1)
        return np.ascontiguousarray(window)


def transpose_keeps_pattern(pattern: str) -> bool:
    """Whether transposing a mosaic leaves its Bayer pattern unchanged (RGGB and BGGR)."""
    return pattern[1] == pattern[2]


def random_raw_crop(height: int, width: int, size: int, rng: np.random.Generator,
                    pattern: str = "RGGB", augment: bool = True) -> RawCrop:
    """A random :class:`RawCrop` of side ``size`` that keeps the ``pattern`` phase.

    With ``augment`` each axis is mirrored with probability ½ (when the image is at least
    ``size + 2`` along it: the mirrored window starts one pixel further) and, for patterns a
    transpose keeps, the crop is transposed with probability ½: the 8 symmetries of a square.
    """
    if pattern not in BAYER_PATTERNS:
        raise InvalidInputError(f"pattern must be one of {BAYER_PATTERNS}, got {pattern!r}")
    if size % 2 or size <= 0 or size > min(height, width) or height % 2 or width % 2:
        raise InvalidInputError(f"crop size {size} must be even, positive and fit an even "
                                f"{height}×{width} mosaic")
    flip_rows, flip_columns, transpose = (bool(value) for value in rng.integers(0, 2, 3))
    flip_rows = augment and flip_rows and height - size >= 2
    flip_columns = augment and flip_columns and width - size >= 2
    transpose = augment and transpose and transpose_keeps_pattern(pattern)
    return RawCrop(top=_offset(height - size, flip_rows, rng),
                   left=_offset(width - size, flip_columns, rng), size=size,
                   flip_rows=flip_rows, flip_columns=flip_columns, transpose=transpose)


def _offset(room: int, odd: bool, rng: np.random.Generator) -> int:
    """An even offset in [0, room], or an odd one in [1, room − 1] for a mirrored window."""
    if odd:
        return 1 + 2 * int(rng.integers(0, (room - 2) // 2 + 1))
    return 2 * int(rng.integers(0, room // 2 + 1))


# --------------------------------------------------------------------------------------------
# SID Sony

SID_SPLITS = {"0": "train", "1": "test", "2": "val"}  # first digit of the scene id
SID_RATIO_CAP = 300.0
SID_MISALIGNED_TEST_SCENES = frozenset({"10034", "10045", "10172"})
_SID_NAME = re.compile(r"^(?P<scene>\d{5})_(?P<shot>\d{2})_(?P<seconds>\d+(?:\.\d+)?)s\.ARW$",
                       re.IGNORECASE)


@dataclass(frozen=True)
class SidFileName:
    """What a SID file name says: scene id, shot number, exposure time, split."""

    scene: str
    shot: str
    exposure_s: float
    split: str


def parse_sid_file_name(name: str) -> SidFileName:
    """Parse ``SSSSS_EE_Ts.ARW``; raises :class:`InvalidInputError` for other names."""
    match = _SID_NAME.match(Path(name).name)
    if match is None or match["scene"][0] not in SID_SPLITS or float(match["seconds"]) <= 0:
        raise InvalidInputError(f"{name}: not a SID file name (expected SSSSS_EE_Ts.ARW with a "
                                "first scene digit 0/1/2 and a positive time, e.g. "
                                "00001_00_0.1s.ARW)")
    return SidFileName(scene=match["scene"], shot=match["shot"],
                       exposure_s=float(match["seconds"]), split=SID_SPLITS[match["scene"][0]])


@dataclass(frozen=True)
class SidPair:
    """One short exposure, its scene's long exposure, and the amplification between them."""

    short: Path
    long: Path
    scene: str
    exposure_in_s: float
    exposure_gt_s: float
    ratio: float  # min(t_gt / t_in, 300)
    excluded_from_scores: bool


def sid_pairs(root: Path, split: str) -> list[SidPair]:
    """Every (short, long) pair of ``split`` under a checked SID root, sorted by file name."""
    longs: dict[str, list[Path]] = {}
    for path in sorted((root / "Sony" / "long").glob("*.[Aa][Rr][Ww]")):
        longs.setdefault(parse_sid_file_name(path.name).scene, []).append(path)
    pairs = []
    for short in sorted((root / "Sony" / "short").glob("*.[Aa][Rr][Ww]")):
        name = parse_sid_file_name(short.name)
        if name.split != split:
            continue
        if name.scene not in longs:
            raise DatasetNotFoundError(f"{short}: scene {name.scene} has no long exposure in "
                                       f"{root / 'Sony' / 'long'}")
        # SID's code takes glob('%05d_00*.ARW')[0]: shot 00 of the scene.
        candidates = longs[name.scene]
        long = next((path for path in candidates
                     if parse_sid_file_name(path.name).shot == "00"), candidates[0])
        exposure_gt = parse_sid_file_name(long.name).exposure_s
        pairs.append(SidPair(short=short, long=long, scene=name.scene,
                             exposure_in_s=name.exposure_s, exposure_gt_s=exposure_gt,
                             ratio=min(exposure_gt / name.exposure_s, SID_RATIO_CAP),
                             excluded_from_scores=name.scene in SID_MISALIGNED_TEST_SCENES))
    return pairs


class SidSonyDataset(torch.utils.data.Dataset):
    """SID Sony pairs of one split as dicts (see the module docstring for the protocol).

    Item keys: ``mosaic`` (float32 H×W, normalised, not amplified), ``ratio`` (float),
    ``target`` (float32 H×W×3 sRGB in [0, 1]), ``scene``, ``pattern``, ``excluded_from_scores``,
    ``white_balance`` and ``camera_to_srgb`` (the short exposure's, for viewing it with
    ``llve.data.isp.render_srgb``), ``short_path``, ``long_path``. With ``cache_dir`` each long
    exposure's rendering (LibRaw's AHD demosaic, about 2 s at 4256×2848) is stored once as
    16-bit ``.npy`` (named by the file's stem and a key of its path, size and time) and
    memory-mapped afterwards, so a training crop reads only its own rows.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 cache_dir: str | os.PathLike | None = None) -> None:
        if split not in SID_SPLITS.values():
            raise InvalidInputError(f"split must be one of {sorted(SID_SPLITS.values())}, "
                                    f"got {split!r}")
        self.root = check_layout(root, "sid_sony")
        self.split = split
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.pairs = sid_pairs(self.root, split)
        if not self.pairs:
            raise DatasetNotFoundError(f"{self.root / 'Sony' / 'short'}: no {split} short "
                                       f"exposures (scene ids starting with "
                                       f"{[d for d, s in SID_SPLITS.items() if s == split][0]})")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for {len(self.pairs)} {self.split} pairs")
        return self.load(index)

    def load(self, index: int, crop_size: int = 0, rng: np.random.Generator | None = None,
             augment: bool = True) -> dict[str, Any]:
        """Item ``index``, whole (``crop_size=0``) or as a random phase-preserving crop of side
        ``crop_size`` (mirrored/transposed when ``augment``) drawn from ``rng``."""
        pair = self.pairs[index]
        raw = read_raw(pair.short)
        target = self._target(pair.long)
        if target.shape[:2] != raw.mosaic.shape:
            raise InvalidInputError(f"{pair.long}: rendering {target.shape[:2]} does not match "
                                    f"the mosaic {raw.mosaic.shape} of {pair.short}")
        crop = (random_raw_crop(*raw.mosaic.shape, crop_size, rng, raw.pattern, augment)
                if crop_size else None)
        mosaic = raw.mosaic if crop is None else crop.apply(raw.mosaic)
        target = target if crop is None else crop.apply(target)
        return {"mosaic": mosaic, "ratio": pair.ratio, "target": _as_unit_float(target),
                "scene": pair.scene, "pattern": raw.pattern,
                "excluded_from_scores": pair.excluded_from_scores,
                "white_balance": np.asarray(raw.white_balance),
                "camera_to_srgb": raw.camera_to_srgb,
                "short_path": str(pair.short), "long_path": str(pair.long)}

    def _target(self, long: Path) -> np.ndarray:
        """The long exposure's sRGB (float32), or its cached 16-bit copy (memory-mapped)."""
        if self.cache_dir is None:
            return sid_ground_truth(long)
        cached = self.cache_dir / f"{long.stem}-{_file_key(long)}.npy"
        if not cached.is_file():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            rendered = np.round(sid_ground_truth(long) * 65535).astype(np.uint16)
            temporary = cached.with_name(f".{cached.name}.{os.getpid()}.tmp.npy")
            np.save(temporary, rendered)
            os.replace(temporary, cached)  # atomic: DataLoader workers may race to write it
        return np.load(cached, mmap_mode="r")


def _file_key(path: Path) -> str:
    """A short key of a file's identity (resolved path, size, modification time): a cached
    rendering is never reused for another file of the same name or a replaced one."""
    status = path.stat()
    identity = f"{path.resolve()}|{status.st_size}|{status.st_mtime_ns}"
    return hashlib.sha1(identity.encode()).hexdigest()[:12]


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] from a float rendering or its 16-bit cache."""
    if image.dtype == np.uint16:
        return (image / np.float32(65535)).astype(np.float32)
    return np.asarray(image, dtype=np.float32)


class RandomCropDataset(torch.utils.data.Dataset):
    """Training crops of a paired raw dataset as a map-style dataset that resumes exactly.

    Item ``k`` is pair ``k mod len(dataset)``, cropped by a phase-preserving :class:`RawCrop`
    drawn from ``numpy.random.default_rng([seed, k])``: a pure function of ``k``, so
    ``llve.train``'s seeded sampler gives the same crops after a resume and on any number of
    processes, and DataLoader workers may prepare them. ``crops_per_pair`` sets the length
    (how many distinct crops each pair offers before they repeat). Items: ``mosaic``
    (1×s×s, amplified by the pair's ratio, not clipped) and ``target`` (3×s×s), float tensors.
    """

    def __init__(self, dataset: SidSonyDataset, crop_size: int, seed: int = 0,
                 crops_per_pair: int = 1000, augment: bool = True) -> None:
        self.dataset, self.crop_size, self.seed = dataset, crop_size, seed
        self.crops_per_pair, self.augment = crops_per_pair, augment

    def __len__(self) -> int:
        return len(self.dataset) * self.crops_per_pair

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        item = self.dataset.load(index % len(self.dataset), self.crop_size, rng, self.augment)
        return {"mosaic": torch.from_numpy(item["mosaic"] * np.float32(item["ratio"]))[None],
                "target": torch.from_numpy(item["target"]).permute(2, 0, 1).contiguous()}
