"""Camera raw files: reading (rawpy/LibRaw), Bayer packing, DNG writing and noise statistics.

One normalised representation, :class:`RawImage`, whatever camera a file comes from.

Conventions
-----------
Mosaic
    ``RawImage.mosaic`` is float32 H×W, the **visible area** only (masked border pixels dropped),
    ``(DN - black) / (white - black)`` with the black level of each pixel's CFA plane. With
    ``clip=True`` (the default, as SID does with ``max(raw - 512, 0)``) it is clipped to [0, 1];
    with ``clip=False`` read noise keeps its negative values, which noise statistics need. The
    untouched digital numbers stay in ``RawImage.raw_dn`` (uint16) either way.
Odd sizes
    Packing needs whole 2×2 blocks, so a visible area with an odd height or width loses its last
    row or column; ``RawImage.trimmed`` records how many were dropped. Trimming at the bottom and
    right keeps the top-left CFA phase, so ``pattern`` is unchanged.
Pattern and planes
    ``pattern`` names the top-left 2×2 block ("RGGB", "BGGR", "GRBG", "GBRG"; see ``llve.data.cfa``);
    it comes from rawpy's ``raw_pattern``, never an assumed RGGB. Planes are named R, G1 (green on
    the red row), B, G2 (green on the blue row). rawpy's ``black_level_per_channel`` is indexed by
    the colour index stored in ``raw_pattern`` (R, G, B, G2), not by mosaic position; here it is
    turned into ``black_level = {"R": ..., "G1": ..., "B": ..., "G2": ...}``.
White balance
    ``white_balance`` is (R, G, B) gains normalised so green is 1. rawpy's ``camera_whitebalance``
    (the as-shot gains, 1/AsShotNeutral in a DNG) is used when its R, G, B entries are all positive
    and finite; otherwise (LibRaw reports [0, 1, 0, 0] or a -1 when a file has none) the daylight
    gains, otherwise unity. ``white_balance_source`` says which: "camera", "daylight" or "unity".
Colour matrices
    rawpy exposes two matrices. ``rgb_xyz_matrix`` (4×3; LibRaw's ``cam_xyz``) maps **XYZ to
    camera** RGB despite its name; LibRaw fills it from its own camera table only, so it is all
    zeros for most DNGs. ``color_matrix`` (3×4; LibRaw's ``rgb_cam``) maps **white-balanced camera
    RGB to linear sRGB** and is also computed from a DNG's ColorMatrix tags. ``camera_to_srgb`` is
    the 3×3 white-balanced-camera -> linear-sRGB matrix: from ``rgb_xyz_matrix`` by the dcraw /
    Brooks et al. recipe where it is present, else ``color_matrix``, else the identity
    (``colour_matrix_source`` says which). On a file that has both, the two agree to 1e-4.
Camera name
    ``camera`` is the file's own make and model: the TIFF Make + Model tags (the model alone when
    it already starts with the make), else the DNG UniqueCameraModel tag, else, for a Canon CRW
    (CIFF, not TIFF-based), the make and model strings of its 0x080a record, the record LibRaw
    reads them from (rawpy does not expose LibRaw's make/model). Otherwise "unknown camera" (CR3,
    RAF and other non-TIFF formats are not parsed). A placeholder is reported as written: the
    raw-video DNGs whose Model tag is "Canikon" come out as "Canon Canikon", as LibRaw has it.
Exposure metadata
    ``exposure_time_s`` and ``iso`` are None when a file does not record them. TIFF-based raws
    (DNG, ARW, NEF, CR2, ...) are read from their ExposureTime / ISOSpeedRatings tags; LibRaw's own
    values are used only when the file has no such tag. This matters: Magic Lantern DNGs store
    ExposureTime 0 and ShutterSpeedValue 0, which LibRaw turns into a fictitious 1 s (2**0).
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import rawpy
import tifffile
import torch

from llve.data.cfa import PACK_ORDERS, pattern_from_rawpy, plane_positions
from llve.errors import InvalidInputError, RawFileError, UnknownNameError, UnsupportedSensorError

PLANES = ("R", "G1", "B", "G2")
"""Plane names in the order ``black_level`` dictionaries and :func:`noise_statistics` use."""

SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
"""Linear sRGB (D65) -> CIE XYZ, as in dcraw's ``xyz_rgb`` and Brooks et al. (2019)."""

ArrayLike = np.ndarray | torch.Tensor


@dataclass(eq=False)
class RawImage:
    """One Bayer raw frame in llve's normalised form (see the module docstring for conventions)."""

    path: Path
    camera: str
    mosaic: np.ndarray = field(repr=False)  # float32 H×W, black-subtracted, white-normalised
    raw_dn: np.ndarray = field(repr=False)  # uint16 H×W digital numbers of the same pixels
    pattern: str
    black_level: dict[str, float]  # DN per plane: R, G1, B, G2
    white_level: float  # DN
    white_balance: tuple[float, float, float]  # R, G, B gains, green = 1
    white_balance_source: str  # "camera", "daylight" or "unity"
    camera_to_srgb: np.ndarray  # 3×3, white-balanced camera RGB -> linear sRGB
    colour_matrix_source: str  # "rgb_xyz_matrix", "color_matrix" or "identity"
    xyz_to_camera: np.ndarray | None  # 3×3 from rawpy's rgb_xyz_matrix, None when LibRaw has none
    exposure_time_s: float | None
    iso: float | None
    visible_area: tuple[int, int, int, int]  # top, left, height, width in the full sensor array
    trimmed: tuple[int, int]  # rows, columns dropped at the bottom/right to keep whole 2×2 blocks
    clipped: bool  # whether ``mosaic`` was clipped to [0, 1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.mosaic.shape


# --------------------------------------------------------------------------------------------
# Reading


@contextmanager
def open_raw(path: str | os.PathLike) -> Iterator[rawpy.RawPy]:
    """Open ``path`` with rawpy, turning every LibRaw failure into a :class:`RawFileError`.

    Decoding failures inside the ``with`` block (LibRaw unpacks lazily, so a truncated file only
    fails when the pixels are first touched) are converted too.
    """
    path = Path(path)
    if not path.exists():
        raise RawFileError(f"{path}: no such file")
    if not path.is_file():
        raise RawFileError(f"{path}: not a regular file (a directory?); expected a raw image file")
    try:
        raw = rawpy.imread(str(path))
    except rawpy.LibRawError as error:
        # `from None`: the user needs our message, not LibRaw's internal traceback.
        raise RawFileError(f"{path}: LibRaw cannot open it as a raw image ({_reason(error)}); "
                           "expected a camera raw or DNG file") from None
    try:
        with raw:
            yield raw
    except rawpy.LibRawError as error:
        raise RawFileError(f"{path}: the pixel data could not be decoded ({_reason(error)}); "
                           "the file is probably truncated or corrupt") from None


def read_raw(path: str | os.PathLike, clip: bool = True) -> RawImage:
    """Read a Bayer raw file (any LibRaw-supported camera raw or DNG) into a :class:`RawImage`.

    ``clip=True`` clips the normalised mosaic to [0, 1]; ``clip=False`` keeps values below 0 (read
    noise around the black level) and above 1. Raises :class:`RawFileError` for missing,
    unreadable or corrupt files and :class:`UnsupportedSensorError` for non-Bayer sensors.
    """
    path = Path(path)
    with open_raw(path) as raw:
        pattern = _bayer_pattern(raw, path)
        visible = raw.raw_image_visible
        height, width = (visible.shape[0] // 2) * 2, (visible.shape[1] // 2) * 2
        trimmed = (visible.shape[0] - height, visible.shape[1] - width)
        raw_dn = np.array(visible[:height, :width], dtype=np.uint16)  # copy: LibRaw frees its buffer
        positions = plane_positions(pattern)
        black_level = {plane: float(raw.black_level_per_channel[raw.raw_pattern[positions[plane]]])
                       for plane in PLANES}
        white_level = float(raw.white_level)
        white_balance, white_balance_source = choose_white_balance(
            raw.camera_whitebalance, raw.daylight_whitebalance)
        camera_to_srgb, colour_matrix_source, xyz_to_camera = _colour_matrices(raw)
        libraw_shutter_s, libraw_iso = raw.other.shutter_speed, raw.other.iso_speed
        sizes = raw.sizes
    tags = _tiff_tags(path)
    return RawImage(
        path=path,
        camera=_camera_name(tags) or _ciff_camera_name(path) or "unknown camera",
        mosaic=normalise_dn(raw_dn, pattern, black_level, white_level, clip=clip),
        raw_dn=raw_dn,
        pattern=pattern,
        black_level=black_level,
        white_level=white_level,
        white_balance=white_balance,
        white_balance_source=white_balance_source,
        camera_to_srgb=camera_to_srgb,
        colour_matrix_source=colour_matrix_source,
        xyz_to_camera=xyz_to_camera,
        exposure_time_s=_exposure_time_s(tags, libraw_shutter_s),
        iso=_iso(tags, libraw_iso),
        visible_area=(sizes.top_margin, sizes.left_margin, height, width),
        trimmed=trimmed,
        clipped=clip,
    )


def normalise_dn(raw_dn: np.ndarray, pattern: str, black_level: float | Mapping[str, float],
                 white_level: float, clip: bool = True) -> np.ndarray:
    """Digital numbers H×W -> float32 ``(DN - black) / (white - black)`` per CFA plane."""
    black = _per_pixel(black_level, pattern, raw_dn.shape)
    normalised = ((raw_dn.astype(np.float64) - black) / (white_level - black)).astype(np.float32)
    return np.clip(normalised, 0.0, 1.0) if clip else normalised


def dn_from_normalised(mosaic: np.ndarray, pattern: str, black_level: float | Mapping[str, float],
                       white_level: float) -> np.ndarray:
    """Inverse of :func:`normalise_dn`: ``round(black + x·(white - black))`` as uint16.

    Values below 0 keep their sub-black DN (read noise is real signal; cameras record it too);
    the result is clipped to [0, white_level] as a sensor saturates.
    """
    black = _per_pixel(black_level, pattern, mosaic.shape)
    dn = np.rint(black + mosaic.astype(np.float64) * (white_level - black))
    return np.clip(dn, 0, white_level).astype(np.uint16)


def choose_white_balance(camera: Sequence[float], daylight: Sequence[float]
                         ) -> tuple[tuple[float, float, float], str]:
    """Green-normalised (R, G, B) gains and their source from rawpy's camera/daylight gains."""
    for source, gains in (("camera", camera), ("daylight", daylight)):
        red, green, blue = (float(value) for value in list(gains)[:3])
        if all(np.isfinite(value) and value > 0 for value in (red, green, blue)):
            return (red / green, 1.0, blue / green), source
    return (1.0, 1.0, 1.0), "unity"


def camera_to_srgb_from_xyz(xyz_to_camera: np.ndarray) -> np.ndarray:
    """White-balanced camera RGB -> linear sRGB from an XYZ -> camera matrix (dcraw, Brooks).

    ``xyz_to_camera @ SRGB_TO_XYZ`` maps sRGB to camera RGB; normalising its rows to sum to 1
    makes sRGB white land on camera (1, 1, 1), i.e. on white *after* white balance; the inverse
    is the matrix to apply to white-balanced camera RGB.
    """
    srgb_to_camera = np.asarray(xyz_to_camera, dtype=np.float64) @ SRGB_TO_XYZ
    srgb_to_camera = srgb_to_camera / srgb_to_camera.sum(axis=1, keepdims=True)
    return np.linalg.inv(srgb_to_camera)


def _reason(error: Exception) -> str:
    message = error.args[0] if error.args else type(error).__name__
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _bayer_pattern(raw: rawpy.RawPy, path: Path) -> str:
    # A "Stack" raw (linear DNG, Foveon, sRAW) has several values per pixel and no CFA at all.
    if raw.raw_type != rawpy.RawType.Flat or raw.raw_pattern is None:
        raise UnsupportedSensorError(
            f"{path}: not a colour-filter-array mosaic (LibRaw raw_type {raw.raw_type.name}); "
            "linear DNGs, Foveon and other demosaiced raws are not supported")
    return pattern_from_rawpy(raw.raw_pattern, raw.color_desc, source=str(path))


def _colour_matrices(raw: rawpy.RawPy) -> tuple[np.ndarray, str, np.ndarray | None]:
    xyz_to_camera = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    if np.any(xyz_to_camera):
        return camera_to_srgb_from_xyz(xyz_to_camera), "rgb_xyz_matrix", xyz_to_camera
    camera_to_srgb = np.asarray(raw.color_matrix, dtype=np.float64)[:, :3]
    if np.any(camera_to_srgb):
        return camera_to_srgb, "color_matrix", None
    return np.eye(3), "identity", None


def _tiff_tags(path: Path) -> dict[str, object]:
    """IFD0 tags plus the EXIF sub-IFD of a TIFF-based raw, by name; {} for other formats."""
    try:
        with tifffile.TiffFile(path) as tiff:
            tags = {tag.name: tag.value for tag in tiff.pages[0].tags.values()}
    except Exception:  # CR3, RAF, ... are not TIFF; their metadata comes from LibRaw alone
        return {}
    exif = tags.pop("ExifTag", None)
    return {**(exif if isinstance(exif, dict) else {}), **tags}


def _exposure_time_s(tags: Mapping[str, object], libraw_seconds: float) -> float | None:
    """The file's ExposureTime tag (a rational) when it has one, else LibRaw's value; 0 -> None."""
    if "ExposureTime" in tags:
        numerator, denominator = tags["ExposureTime"]
        seconds = numerator / denominator if denominator else 0.0
    else:
        seconds = libraw_seconds
    return float(seconds) if seconds > 0 else None


def _iso(tags: Mapping[str, object], libraw_iso: float) -> float | None:
    """The file's ISOSpeedRatings tag (first value) when it has one, else LibRaw's; 0 -> None."""
    value = float(np.ravel(tags["ISOSpeedRatings"])[0]) if "ISOSpeedRatings" in tags else libraw_iso
    return float(value) if value > 0 else None


def _camera_name(tags: Mapping[str, object]) -> str:
    """The camera named by TIFF/DNG tags; "" when they name none."""
    return _make_and_model(_text(tags.get("Make")), _text(tags.get("Model"))) or _text(
        tags.get("UniqueCameraModel"))


def _make_and_model(make: str, model: str) -> str:
    if not model:
        return ""
    return model if model.startswith(make) else f"{make} {model}".strip()


CIFF_SIGNATURE = b"HEAPCCDR"  # bytes 6..13 of a Canon CRW: a CIFF heap of type HEAP, subtype CCDR
CIFF_MAKE_MODEL = 0x080A  # record holding "make\0model\0" (dcraw/LibRaw's parse_ciff read it)
_CIFF_MAX_DEPTH = 8


def _ciff_camera_name(path: Path) -> str:
    """Make and model of a Canon CRW (CIFF) file from its 0x080a record; "" for any other file.

    CIFF layout (Canon's CIFF 1.0r4 spec, as dcraw's ``parse_ciff`` reads it): a byte-order
    mark ("II" or "MM"), the uint32 header length, "HEAPCCDR"; the root heap runs from the header
    to the end of the file. A heap's last 4 bytes give the offset (from the heap's start) of its
    record table: a uint16 count, then 10-byte records (uint16 type, uint32 length, uint32
    offset, both from the heap's start). A type whose data-type bits (0x3800) are 0x2800 or
    0x3000 is a sub-heap; type bits 0x4000 mean the payload is the record's own 8 bytes.
    Malformed files give "" (never an error: LibRaw has already accepted or refused the file).
    """
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    if len(data) < 14 or data[6:14] != CIFF_SIGNATURE or data[:2] not in (b"II", b"MM"):
        return ""
    order = "<" if data[:2] == b"II" else ">"
    header = int.from_bytes(data[2:6], "little" if order == "<" else "big")
    found = _ciff_find(data, order, header, len(data) - header, 0)
    if found is None:
        return ""
    make, _, rest = found.partition(b"\0")
    return _make_and_model(_text(make), _text(rest))


def _ciff_find(data: bytes, order: str, start: int, length: int, depth: int) -> bytes | None:
    """The payload of the first 0x080a record in the heap at ``start`` or its sub-heaps."""
    end = start + length
    if depth > _CIFF_MAX_DEPTH or start < 0 or length < 6 or end > len(data):
        return None
    table = start + struct.unpack_from(order + "I", data, end - 4)[0]
    if not start <= table <= end - 6:
        return None
    (count,) = struct.unpack_from(order + "H", data, table)
    if count > 100 or table + 2 + 10 * count > end:  # dcraw's sanity limit, then the bounds
        return None
    for index in range(count):
        kind, size, offset = struct.unpack_from(order + "HII", data, table + 2 + 10 * index)
        if kind & 0xC000 == 0x4000:  # payload stored in the record itself (8 bytes)
            payload_start, size = table + 2 + 10 * index + 2, 8
        else:
            payload_start = start + offset
        if payload_start + size > end:
            continue
        if kind & 0x3FFF == CIFF_MAKE_MODEL:
            return data[payload_start:payload_start + size]
        if kind & 0x3800 in (0x2800, 0x3000):  # a sub-heap
            found = _ciff_find(data, order, payload_start, size, depth + 1)
            if found is not None:
                return found
    return None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value or "").split("\x00")[0].strip()  # some writers pad with NULs and junk


def _by_plane(values: float | Mapping[str, float]) -> dict[str, float]:
    """One value per plane (R, G1, B, G2) from a single number or a per-plane dict."""
    if isinstance(values, Mapping):
        if set(values) != set(PLANES):
            raise InvalidInputError(
                f"black_level has planes {sorted(values)}, expected exactly {list(PLANES)}")
        return {plane: float(values[plane]) for plane in PLANES}
    return {plane: float(values) for plane in PLANES}


def _per_pixel(values_by_plane: float | Mapping[str, float], pattern: str,
               shape: tuple[int, ...]) -> np.ndarray:
    """A per-plane value spread over an H×W mosaic (odd sizes allowed)."""
    values = _by_plane(values_by_plane)
    block = np.zeros((2, 2))
    for plane, (row, column) in plane_positions(pattern).items():
        block[row, column] = values[plane]
    height, width = shape[-2:]
    return np.tile(block, ((height + 1) // 2, (width + 1) // 2))[:height, :width]


# --------------------------------------------------------------------------------------------
# Packing


def pack(mosaic: ArrayLike, pattern: str, order: str = "RGBG") -> ArrayLike:
    """Bayer mosaic …×H×W -> planes …×4×H/2×W/2 (numpy array or torch tensor, any leading dims).

    ``order`` names the plane order (``llve.data.cfa.PACK_ORDERS``): "RGBG" is SID/ELD's
    R, G1, B, G2; "RGGB" is Brooks et al.'s R, G1 (Gr), G2 (Gb), B. The planes follow ``pattern``,
    so the same ``order`` gives the same colours for every Bayer phase.
    """
    height, width = _even_mosaic_shape(mosaic, "pack")
    lead = tuple(mosaic.shape[:-2])
    blocks = mosaic.reshape(*lead, height // 2, 2, width // 2, 2)
    # (…, h, block row, w, block column) -> (…, block row, block column, h, w)
    blocks = _moveaxis(blocks, (-3, -1), (-4, -3))
    raster = blocks.reshape(*lead, 4, height // 2, width // 2)  # index 2·row + column in the block
    return raster[..., _raster_indices(pattern, order), :, :]


def unpack(planes: ArrayLike, pattern: str, order: str = "RGBG") -> ArrayLike:
    """Inverse of :func:`pack`: planes …×4×h×w -> mosaic …×2h×2w."""
    if not isinstance(planes, (np.ndarray, torch.Tensor)) or planes.ndim < 3 or planes.shape[-3] != 4:
        raise InvalidInputError(
            f"unpack expects a numpy array or torch tensor of shape (..., 4, h, w), "
            f"got {type(planes).__name__} of shape {tuple(getattr(planes, 'shape', ()))}")
    half_height, half_width = planes.shape[-2:]
    lead = tuple(planes.shape[:-3])
    raster = planes[..., np.argsort(_raster_indices(pattern, order)).tolist(), :, :]
    blocks = _moveaxis(raster.reshape(*lead, 2, 2, half_height, half_width), (-4, -3), (-3, -1))
    return blocks.reshape(*lead, 2 * half_height, 2 * half_width)


def _raster_indices(pattern: str, order: str) -> list[int]:
    if order not in PACK_ORDERS:
        raise UnknownNameError(f"unknown pack order {order!r}; expected one of {sorted(PACK_ORDERS)}")
    positions = plane_positions(pattern)
    return [2 * positions[plane][0] + positions[plane][1] for plane in PACK_ORDERS[order]]


def _even_mosaic_shape(mosaic: ArrayLike, what: str) -> tuple[int, int]:
    if not isinstance(mosaic, (np.ndarray, torch.Tensor)) or mosaic.ndim < 2:
        raise InvalidInputError(
            f"{what} expects a numpy array or torch tensor of shape (..., H, W), "
            f"got {type(mosaic).__name__} of shape {tuple(getattr(mosaic, 'shape', ()))}")
    height, width = mosaic.shape[-2:]
    if height % 2 or width % 2:
        raise InvalidInputError(
            f"{what}: Bayer mosaic of shape {tuple(mosaic.shape)} has an odd height or width; "
            "crop it to whole 2×2 blocks first")
    return height, width


def _moveaxis(array: ArrayLike, source: tuple[int, ...], destination: tuple[int, ...]) -> ArrayLike:
    if isinstance(array, torch.Tensor):
        return array.movedim(source, destination)
    return np.moveaxis(array, source, destination)


# --------------------------------------------------------------------------------------------
# DNG writing

_CFA_CODES = {"R": 0, "G": 1, "B": 2}  # DNG CFAPattern colour codes
LIBRAW_MIN_SIZE = 22
"""LibRaw (like dcraw) refuses images narrower or shorter than this, so write_dng does too."""


def write_dng(path: str | os.PathLike, mosaic: np.ndarray, pattern: str,
              black_level: float | Mapping[str, float], white_level: int,
              white_balance: Sequence[float] | None,
              xyz_to_camera: np.ndarray | None = None, camera: str = "llve synthetic",
              exposure_time_s: float | None = None, iso: float | None = None) -> Path:
    """Write a Bayer mosaic as a DNG that rawpy/LibRaw (and so :func:`read_raw`) reads back.

    ``mosaic``: a float array is taken as normalised values (x -> ``round(black + x·(white -
    black))``, see :func:`dn_from_normalised`); an integer array as digital numbers, written as
    they are. ``black_level``: integer DN, one for all planes or a dict over R, G1, B, G2.
    ``white_balance``: (R, G, B) gains (normalised to green on writing), stored as
    AsShotNeutral = 1/gains; None writes no as-shot white balance. ``xyz_to_camera``: the DNG
    ColorMatrix1 (XYZ -> camera, D65); by default the inverse of :data:`SRGB_TO_XYZ`, i.e. a camera
    whose raw colours are linear sRGB. Exposure time and ISO go into the TIFF/EP tags of IFD0
    (LibRaw reads the exposure time from there but not the ISO; :func:`read_raw` reads both).
    Height and width must be at least :data:`LIBRAW_MIN_SIZE`.

    The file is written to a temporary name in the same directory and renamed into place, so a
    failure never leaves a partial file at ``path``.
    """
    path = Path(path)
    tags = _dng_tags(pattern, black_level, white_level, white_balance, xyz_to_camera, camera,
                     exposure_time_s, iso)
    raw_dn = _mosaic_as_dn(mosaic, pattern, black_level, white_level)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        tifffile.imwrite(temporary, raw_dn, photometric="CFA", subfiletype=0, metadata=None,
                         software="llve", extratags=tags)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _mosaic_as_dn(mosaic: np.ndarray, pattern: str, black_level: float | Mapping[str, float],
                  white_level: int) -> np.ndarray:
    mosaic = np.asarray(mosaic)
    if mosaic.ndim != 2 or min(mosaic.shape) < LIBRAW_MIN_SIZE:
        raise InvalidInputError(
            f"write_dng expects an H×W mosaic with H, W ≥ {LIBRAW_MIN_SIZE} (LibRaw reads nothing "
            f"smaller), got shape {mosaic.shape}")
    if np.issubdtype(mosaic.dtype, np.floating):
        if not np.all(np.isfinite(mosaic)):
            raise InvalidInputError("write_dng: the mosaic contains NaN or infinite values")
        return dn_from_normalised(mosaic, pattern, black_level, white_level)
    if not np.issubdtype(mosaic.dtype, np.integer):
        raise InvalidInputError(f"write_dng: mosaic dtype {mosaic.dtype} is neither float nor integer")
    if mosaic.min() < 0 or mosaic.max() > np.iinfo(np.uint16).max:
        raise InvalidInputError(
            f"write_dng: integer DN must lie in [0, 65535], got [{mosaic.min()}, {mosaic.max()}]")
    return mosaic.astype(np.uint16)


def _dng_tags(pattern: str, black_level: float | Mapping[str, float], white_level: int,
              white_balance: Sequence[float] | None, xyz_to_camera: np.ndarray | None,
              camera: str, exposure_time_s: float | None, iso: float | None) -> list[tuple]:
    """tifffile ``extratags`` (code, dtype, count, value, write-once) of a minimal Bayer DNG."""
    black = _by_plane(black_level)
    if not all(value.is_integer() and value >= 0 for value in black.values()):
        raise InvalidInputError(f"write_dng: black levels must be non-negative integer DN, got {black}")
    if not (float(white_level).is_integer() and max(black.values()) < white_level <= 65535):
        raise InvalidInputError(
            f"write_dng: white_level must be an integer DN above the black level and ≤ 65535, "
            f"got {white_level}")
    black_in_mosaic_order = [0] * 4
    for plane, (row, column) in plane_positions(pattern).items():
        black_in_mosaic_order[2 * row + column] = int(black[plane])
    matrix = np.linalg.inv(SRGB_TO_XYZ) if xyz_to_camera is None else np.asarray(xyz_to_camera, float)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise InvalidInputError(f"write_dng: xyz_to_camera must be a finite 3×3 matrix, got {matrix}")
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion 1.4.0.0
        (50708, "s", 0, camera, True),  # UniqueCameraModel
        (272, "s", 0, camera, True),  # Model
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(_CFA_CODES[colour] for colour in pattern), True),  # CFAPattern
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim: one black level per 2×2 position
        (50714, "I", 4, tuple(black_in_mosaic_order), True),  # BlackLevel, reading order
        (50717, "I", 1, int(white_level), True),  # WhiteLevel
        (50721, "2i", 9, _rationals(matrix.ravel()), True),  # ColorMatrix1, XYZ -> camera
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1 = D65
    ]
    if white_balance is not None:
        gains = np.asarray(white_balance, dtype=np.float64)
        if gains.shape != (3,) or not np.all(np.isfinite(gains) & (gains > 0)):
            raise InvalidInputError(
                f"write_dng: white_balance must be three positive gains (R, G, B), got {white_balance}")
        tags.append((50728, "2I", 3, _rationals(gains[1] / gains), True))  # AsShotNeutral
    if exposure_time_s is not None:
        tags.append((33434, "2I", 1, _rationals([exposure_time_s]), True))  # ExposureTime
    if iso is not None:
        tags.append((34855, "I", 1, int(round(iso)), True))  # ISOSpeedRatings
    return tags


def _rationals(values: Sequence[float]) -> tuple[int, ...]:
    """Flattened (numerator, denominator) pairs, exact to about 1e-6."""
    pairs = []
    for value in values:
        fraction = Fraction(float(value)).limit_denominator(1_000_000)
        pairs += [fraction.numerator, fraction.denominator]
    return tuple(pairs)


# --------------------------------------------------------------------------------------------
# Noise statistics


def noise_statistics(raw: RawImage | np.ndarray, pattern: str | None = None,
                     black_level: float | Mapping[str, float] | None = None
                     ) -> dict[str, dict[str, float]]:
    """Per-plane signal statistics in DN (black-subtracted, never clipped), e.g. of a dark frame.

    Pass a :class:`RawImage` (its ``raw_dn`` is used, so ``clip`` does not matter) or a DN array
    with its ``pattern`` and ``black_level``. Returns ``{plane: {...}}`` for planes R, G1, G2, B
    with ``mean_dn``, ``std_dn`` (all pixels of the plane), ``row_std_dn`` (std across rows of
    each row's mean: banding/row noise), ``row_std_white_dn`` (what pixel noise alone would give
    that row std: ``std_dn / sqrt(columns)``; row noise is the excess) and ``pixels``.
    ``pandas.DataFrame.from_dict(stats, orient="index")`` makes it a table.
    """
    if isinstance(raw, RawImage):
        raw_dn, pattern, black_level = raw.raw_dn, raw.pattern, raw.black_level
    else:
        raw_dn = np.asarray(raw)
        if pattern is None or black_level is None:
            raise InvalidInputError("noise_statistics on a DN array needs its pattern and black_level")
    _even_mosaic_shape(raw_dn, "noise_statistics")
    if raw_dn.ndim != 2:
        raise InvalidInputError(f"noise_statistics expects one H×W mosaic, got shape {raw_dn.shape}")
    black = _by_plane(black_level)
    positions = plane_positions(pattern)
    statistics = {}
    for plane in ("R", "G1", "G2", "B"):
        row, column = positions[plane]
        signal = raw_dn[row::2, column::2].astype(np.float64) - black[plane]
        std = float(signal.std())
        statistics[plane] = {
            "mean_dn": float(signal.mean()),
            "std_dn": std,
            "row_std_dn": float(signal.mean(axis=1).std()),
            "row_std_white_dn": std / np.sqrt(signal.shape[1]),
            "pixels": int(signal.size),
        }
    return statistics
