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

DRV (SMID, ICCV 2019) and DAVIS 2017
------------------------------------
DRV: SMID's pre-processed 16-bit PNGs (``VBM4D_rawRGB/{scene}/*.png``, ground truth
``long/{scene}/half0001*.png``), 202 static scenes split as in SMID's lists (cfa trains on its
train + val, 153 scenes, and tests on the 49 test scenes) and 23 dynamic videos M0000–M0022
without ground truth (:func:`drv_static_clip`, :func:`drv_dynamic_video`,
:class:`DrvStaticDataset`; raw files by :func:`drv_raw_files`). DAVIS 2017:
``JPEGImages/480p/{sequence}/{frame:05d}.jpg`` (:func:`davis_sequence`). Frames are float32
H×W×3 RGB in [0, 1].

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

import cv2
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


# --------------------------------------------------------------------------------------------
# DRV (Chen, Chen, Do, Koltun, "Seeing Motion in the Dark", ICCV 2019) — used by cfa
#
# Scene ids and splits from the SMID release (github.com/cchen156/Seeing-Motion-in-the-Dark,
# DRV/train_list.txt, val_list.txt, test_list.txt). The cfa release trains on train + val (its
# train_list.txt is the two lists concatenated: 153 scenes) and tests on the 49 test scenes.

DRV_SMID_TRAIN_SCENES = tuple(f"{n:04d}" for n in (
    22, 6, 3, 16, 11, 17, 14, 8, 5, 21, 25, 27, 26, 19, 15, 1, 23, 2, 33, 30, 43, 38, 34, 44, 41,
    40, 35, 32, 46, 42, 28, 29, 59, 60, 61, 62, 63, 64, 72, 69, 77, 73, 74, 71, 67, 68, 70, 85,
    82, 86, 87, 84, 80, 81, 101, 95, 90, 96, 93, 100, 98, 94, 102, 113, 114, 115, 116, 117, 118,
    119, 120, 121, 122, 123, 124, 125, 126, 127, 149, 133, 130, 143, 138, 134, 155, 144, 141,
    135, 132, 156, 148, 152, 146, 142, 128, 150, 137, 189, 197, 179, 111, 192, 163, 160, 173,
    168, 187, 202, 190, 164, 195, 199, 185, 174, 198, 171, 165, 162, 186, 178, 182, 194, 188,
    184, 183, 200, 176, 201, 161))
DRV_VAL_SCENES = tuple(f"{n:04d}" for n in (
    4, 18, 24, 31, 45, 53, 54, 55, 56, 57, 58, 79, 140, 97, 108, 109, 110, 112, 89, 131, 136,
    158, 193, 159))
DRV_TEST_SCENES = tuple(f"{n:04d}" for n in (
    13, 9, 20, 7, 10, 12, 154, 36, 37, 39, 47, 48, 49, 50, 51, 52, 65, 66, 75, 76, 78, 88, 92,
    99, 91, 103, 104, 105, 106, 107, 151, 145, 147, 139, 129, 83, 153, 157, 180, 175, 181, 196,
    170, 166, 172, 177, 167, 169, 191))
DRV_DYNAMIC_VIDEOS = tuple(f"M{n:04d}" for n in range(23))  # M0000–M0022, no ground truth
DRV_SPLITS: dict[str, tuple[str, ...]] = {
    "train": DRV_SMID_TRAIN_SCENES + DRV_VAL_SCENES,  # cfa's 153 training scenes
    "smid_train": DRV_SMID_TRAIN_SCENES,  # SMID's own train/val split: 129 + 24
    "val": DRV_VAL_SCENES,
    "test": DRV_TEST_SCENES,  # 49 static test scenes
    "dynamic": DRV_DYNAMIC_VIDEOS,
}
DRV_INPUT_FOLDER = "VBM4D_rawRGB"  # SMID's pre-processed inputs: 16-bit PNG, 918×1374
DRV_TARGET_GLOB = "half0001*.png"  # the ground truth PNG inside long/{scene}/

LAYOUTS["drv"] = DatasetLayout(
    name="DRV (Seeing Motion in the Dark, pre-processed)",
    tree=("<root>/                      the DRV folder, or a data root holding DRV/\n"
          "├── VBM4D_rawRGB/            pre-processed inputs, 16-bit PNG 918×1374\n"
          "│   ├── 0001/ … 0202/        static scenes: frames sorted by name\n"
          "│   └── M0000/ … M0022/      dynamic videos (no ground truth)\n"
          "├── long/\n"
          "│   └── 0001/ … 0202/        half0001*.png (ground truth, 16-bit), 0001*.ARW (raw)\n"
          "└── short/                   optional, raw only: 0001/ … /*.ARW"),
    required={DRV_INPUT_FOLDER: "*", "long": "*"},
    folder_names=("DRV",),
)


def drv_scenes(split: str) -> tuple[str, ...]:
    """The scene ids (``"0001"``…) or dynamic video ids (``"M0000"``…) of a DRV split:
    ``train`` (153, cfa's), ``smid_train`` (129), ``val`` (24), ``test`` (49), ``dynamic`` (23)."""
    if split not in DRV_SPLITS:
        raise UnknownNameError(f"unknown DRV split {split!r}: expected one of {sorted(DRV_SPLITS)}")
    return DRV_SPLITS[split]


def read_image_unit(path: Path) -> np.ndarray:
    """An 8- or 16-bit PNG/JPEG as float32 H×W×3 RGB in [0, 1] (value / 255 or / 65535).

    OpenCV returns B, G, R: the channels are reversed here, so the array is in the file's own
    R, G, B order (the SMID and cfa releases feed OpenCV's B, G, R order to their networks).
    """
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetNotFoundError(f"{path}: not a readable image")
    if image.dtype not in (np.uint8, np.uint16) or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInputError(f"{path}: expected an 8- or 16-bit 3-channel image, got "
                                f"{image.dtype} of shape {image.shape}")
    scale = np.float32(np.iinfo(image.dtype).max)
    return np.ascontiguousarray(image[..., ::-1]).astype(np.float32) / scale


def _require(layout: str, root: Path, required: Mapping[str, str]) -> None:
    """Raise the layout's expected-tree error when ``root`` lacks any of ``required``."""
    missing = missing_entries(root, required)
    if missing:
        raise expected_tree_error(LAYOUTS[layout], root, missing)


def _frame_window(files: Sequence[Path], start: int, frames: int | None, where: Path
                  ) -> list[Path]:
    """``frames`` files from index ``start`` (all from ``start`` when None), checked."""
    if not isinstance(start, int) or start < 0:
        raise InvalidInputError(f"start must be a non-negative int, got {start!r}")
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise InvalidInputError(f"frames must be a positive int or None, got {frames!r}")
    stop = len(files) if frames is None else start + frames
    if stop > len(files) or start >= len(files):
        raise DatasetNotFoundError(f"{where}: frames {start}..{stop - 1} requested, "
                                   f"{len(files)} frames present")
    return list(files[start:stop])


@dataclass(frozen=True)
class DrvStaticClip:
    """Consecutive input frames of a DRV static scene and its ground truth.

    ``frames``: T×H×W×3 float32 in [0, 1] (the pre-processed PNGs / 65535, RGB); ``target``:
    H×W×3 float32 in [0, 1]; ``first_frame``: index of ``frames[0]`` in the scene's sorted files.
    """

    frames: np.ndarray
    target: np.ndarray
    scene: str
    first_frame: int
    frame_paths: tuple[Path, ...]
    target_path: Path


def drv_static_clip(root: str | os.PathLike, scene: str, frames: int = 3, start: int = 0
                    ) -> DrvStaticClip:
    """``frames`` consecutive pre-processed frames of static ``scene`` from index ``start``
    (``VBM4D_rawRGB/{scene}/*.png`` sorted by name) and ``long/{scene}/half0001*.png``.

    Raises :class:`DatasetNotFoundError` (with the expected tree) when the folders or files are
    missing, :class:`InvalidInputError` for a dynamic video id or a bad ``start``/``frames``.
    """
    root = check_layout(root, "drv")
    if str(scene).startswith("M"):
        raise InvalidInputError(f"scene {scene!r} is a dynamic video (no ground truth): use "
                                "drv_dynamic_video")
    _require("drv", root, {f"{DRV_INPUT_FOLDER}/{scene}": "*.png",
                           f"long/{scene}": DRV_TARGET_GLOB})
    inputs = sorted((root / DRV_INPUT_FOLDER / scene).glob("*.png"))
    chosen = _frame_window(inputs, start, frames, root / DRV_INPUT_FOLDER / scene)
    target_path = sorted((root / "long" / scene).glob(DRV_TARGET_GLOB))[0]
    return DrvStaticClip(frames=np.stack([read_image_unit(path) for path in chosen]),
                         target=read_image_unit(target_path), scene=scene, first_frame=start,
                         frame_paths=tuple(chosen), target_path=target_path)


@dataclass(frozen=True)
class VideoFrames:
    """Frames of a video without ground truth: T×H×W×3 float32 RGB in [0, 1], and their files."""

    frames: np.ndarray
    name: str
    first_frame: int
    frame_paths: tuple[Path, ...]


def drv_dynamic_video(root: str | os.PathLike, video_id: str, frames: int | None = None,
                      start: int = 0) -> VideoFrames:
    """Pre-processed frames of DRV dynamic video ``video_id`` (``"M0000"``…``"M0022"``):
    ``VBM4D_rawRGB/{video_id}/*.png`` sorted by name, ``frames`` of them from ``start`` (all
    when None). Raises like :func:`drv_static_clip`."""
    root = check_layout(root, "drv")
    if video_id not in DRV_DYNAMIC_VIDEOS:
        raise InvalidInputError(f"video_id must be one of M0000…M0022, got {video_id!r}")
    _require("drv", root, {f"{DRV_INPUT_FOLDER}/{video_id}": "*.png"})
    folder = root / DRV_INPUT_FOLDER / video_id
    chosen = _frame_window(sorted(folder.glob("*.png")), start, frames, folder)
    return VideoFrames(frames=np.stack([read_image_unit(path) for path in chosen]), name=video_id,
                       first_frame=start, frame_paths=tuple(chosen))


@dataclass(frozen=True)
class DrvRawFiles:
    """The raw files of a DRV static scene: its short exposures (sorted) and the long one.
    Read them with :func:`llve.data.raw.read_raw`, which takes black and white levels from
    each file's own metadata."""

    short: tuple[Path, ...]
    long: Path


def drv_raw_files(root: str | os.PathLike, scene: str) -> DrvRawFiles:
    """``short/{scene}/*.ARW`` and ``long/{scene}/0001*.ARW`` under a DRV root (raw release)."""
    root = check_layout(root, "drv")
    _require("drv", root, {f"short/{scene}": "*.[Aa][Rr][Ww]", f"long/{scene}": "0001*.[Aa][Rr][Ww]"})
    return DrvRawFiles(short=tuple(sorted((root / "short" / scene).glob("*.[Aa][Rr][Ww]"))),
                       long=sorted((root / "long" / scene).glob("0001*.[Aa][Rr][Ww]"))[0])


class DrvStaticDataset(torch.utils.data.Dataset):
    """One clip per scene of a DRV split (``train``, ``smid_train``, ``val`` or ``test``): item
    ``k`` is :func:`drv_static_clip` of scene ``k`` with the given ``frames`` and ``start``
    (cfa trains on three fixed frames per static scene), as tensors ``frames`` T×3×H×W and
    ``target`` 3×H×W, with ``scene``. ``scenes`` restricts it to some of the split's scenes.
    Every scene is checked when the dataset is built."""

    def __init__(self, root: str | os.PathLike, split: str = "train", frames: int = 3,
                 start: int = 0, scenes: Sequence[str] | None = None) -> None:
        if split == "dynamic":
            raise InvalidInputError("split 'dynamic' has no ground truth: use drv_dynamic_video")
        self.root = check_layout(root, "drv")
        self.scenes = drv_scenes(split)
        if scenes is not None:
            outside = [scene for scene in scenes if scene not in self.scenes]
            if outside:
                raise InvalidInputError(f"scenes {outside} are not in DRV split {split!r}")
            self.scenes = tuple(scenes)
        self.frames, self.start = frames, start
        _require("drv", self.root, {
            **{f"{DRV_INPUT_FOLDER}/{scene}": "*.png" for scene in self.scenes},
            **{f"long/{scene}": DRV_TARGET_GLOB for scene in self.scenes}})

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.scenes):
            raise IndexError(f"index {index} out of range for {len(self.scenes)} scenes")
        clip = drv_static_clip(self.root, self.scenes[index], self.frames, self.start)
        return {"frames": torch.from_numpy(clip.frames).permute(0, 3, 1, 2).contiguous(),
                "target": torch.from_numpy(clip.target).permute(2, 0, 1).contiguous(),
                "scene": clip.scene}


# --------------------------------------------------------------------------------------------
# DAVIS 2017 (Pont-Tuset et al.): clean real-motion sequences (cfa darkens them synthetically)

DAVIS_RESOLUTIONS = ("480p", "Full-Resolution")
LAYOUTS["davis"] = DatasetLayout(
    name="DAVIS 2017 (trainval)",
    tree=("<root>/                      the DAVIS folder, or a data root holding DAVIS/\n"
          "├── JPEGImages/\n"
          "│   └── 480p/\n"
          "│       └── bear/ …          00000.jpg, 00001.jpg, … (one folder per sequence)\n"
          "└── ImageSets/2017/          optional: train.txt, val.txt (one sequence a line)"),
    required={"JPEGImages/480p": "*"},
    folder_names=("DAVIS",),
)


def davis_sequences(root: str | os.PathLike, split: str | None = None) -> list[str]:
    """Sequence names of a DAVIS root: those of ``ImageSets/2017/{split}.txt`` (``train`` or
    ``val``), or every folder of ``JPEGImages/480p`` (sorted) when ``split`` is None."""
    root = check_layout(root, "davis")
    if split is None:
        return sorted(path.name for path in (root / "JPEGImages" / "480p").iterdir() if path.is_dir())
    if split not in ("train", "val"):
        raise UnknownNameError(f"unknown DAVIS split {split!r}: expected 'train', 'val' or None")
    _require("davis", root, {f"ImageSets/2017/{split}.txt": ""})
    lines = (root / "ImageSets" / "2017" / f"{split}.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip()]


def davis_sequence(root: str | os.PathLike, name: str, frames: int | None = None,
                   start: int = 0, resolution: str = "480p") -> VideoFrames:
    """Frames of DAVIS sequence ``name``: ``JPEGImages/{resolution}/{name}/{frame:05d}.jpg``
    sorted by name, ``frames`` of them from ``start`` (all when None), as T×H×W×3 float32 RGB
    in [0, 1] (8-bit JPEG / 255). Raises :class:`DatasetNotFoundError` with the expected tree
    when the sequence is missing."""
    if resolution not in DAVIS_RESOLUTIONS:
        raise InvalidInputError(f"resolution must be one of {DAVIS_RESOLUTIONS}, got {resolution!r}")
    root = check_layout(root, "davis")
    _require("davis", root, {f"JPEGImages/{resolution}/{name}": "*.jpg"})
    folder = root / "JPEGImages" / resolution / name
    chosen = _frame_window(sorted(folder.glob("*.jpg")), start, frames, folder)
    return VideoFrames(frames=np.stack([read_image_unit(path) for path in chosen]), name=name,
                       first_frame=start, frame_paths=tuple(chosen))
