"""llve.data.raw: real camera files, packing, DNG round trips, bad inputs, noise statistics."""

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file
import rawpy
import tifffile
import torch

from llve.data import raw as raw_module
from llve.data.cfa import BAYER_PATTERNS, PACK_ORDERS, pattern_from_rawpy, plane_positions
from llve.data.raw import (
    choose_white_balance, dn_from_normalised, noise_statistics, normalise_dn, pack,
    read_raw, unpack, write_dng,
)
from llve.errors import InvalidInputError, RawFileError, UnknownNameError, UnsupportedSensorError

REAL_RAW = (Path(__file__).parents[1] / "../shared/data/real_raw").resolve()
CHART = "canon550d_magiclantern_colorchart.dng"
DARK = "canon650d_rawvideo_darkframe_1280x720.dng"
LAKE = "canon650d_rawvideo_lake_M26-1615_00000.dng"
REAL_FILES = [CHART, DARK, "canon650d_rawvideo_flatfield_1728x972.dng",
              "canon650d_rawvideo_harbor_000000.dng", LAKE]
RAW_VIDEO_FILES = REAL_FILES[1:]


def real_file(name: str) -> Path:
    return shared_file(REAL_RAW / name)


def verified(name: str) -> dict:
    """The independently recorded rawpy facts about a real file (verify_rawpy.json)."""
    return json.loads((REAL_RAW / "verify_rawpy.json").read_text())[name]


# ---------------------------------------------------------------------------- real files

@pytest.mark.parametrize("name", REAL_FILES)
def test_real_file_reads_packs_and_stays_in_range(name):
    image = read_raw(real_file(name))
    facts = verified(name)
    with rawpy.imread(str(image.path)) as raw:
        assert image.pattern == pattern_from_rawpy(raw.raw_pattern, raw.color_desc)
    assert image.mosaic.shape == tuple(facts["visible_shape"]) == image.raw_dn.shape
    assert image.mosaic.dtype == np.float32 and image.raw_dn.dtype == np.uint16
    assert np.isfinite(image.mosaic).all()
    assert image.mosaic.min() >= 0.0 and image.mosaic.max() <= 1.0
    assert image.black_level == {plane: facts["black_level_per_channel"][0]
                                 for plane in ("R", "G1", "B", "G2")}
    assert image.white_level == facts["white_level"]
    assert image.trimmed == (0, 0)
    planes = pack(image.mosaic, image.pattern)
    assert planes.shape == (4, image.shape[0] // 2, image.shape[1] // 2)


def test_masked_left_border_of_the_550d_is_excluded():
    image = read_raw(real_file(CHART))
    assert image.shape == (1156, 1734)
    assert image.visible_area == (26, 152, 1156, 1734)
    with rawpy.imread(str(image.path)) as raw:
        full_sensor = raw.raw_image.copy()
    assert full_sensor.shape == (1182, 1888)
    np.testing.assert_array_equal(image.raw_dn, full_sensor[26:26 + 1156, 152:152 + 1734])
    assert image.camera == "Canon EOS Kiss X4"


# What each sample is named, from its own tags (verify_rawpy.json, which LibRaw 0.22 agrees
# with): the harbour/dark/flat-field frames' Model tag is the placeholder "Canikon".
CAMERA_NAMES = {CHART: "Canon EOS Kiss X4", LAKE: "Canon EOS 650D",
                **{name: "Canon Canikon" for name in RAW_VIDEO_FILES if name != LAKE}}


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_file_camera_names(name):
    facts = verified(name)
    make, model = facts["exif_make"], facts["exif_model"]
    recorded = (model if model.startswith(make) else f"{make} {model}") if model else \
        facts["unique_camera_model"].split("\x00")[0]
    assert read_raw(real_file(name)).camera == CAMERA_NAMES[name] == recorded


def ciff_heap(records) -> bytes:
    """A CIFF heap: payloads, then the record table, then the table's offset (uint32, LE)."""
    payloads, table = b"", b""
    for kind, payload in records:
        table += struct.pack("<HII", kind, len(payload), len(payloads))
        payloads += payload
    return payloads + struct.pack("<H", len(records)) + table + struct.pack("<I", len(payloads))


def write_crw(path, make_model: bytes) -> Path:
    """A minimal Canon CRW (CIFF) header, nested as Canon writes it (root -> ImageProps 0x300a
    -> CameraObject 0x2807 -> MakeModel 0x080a), after unrelated records; no pixel data."""
    camera_object = ciff_heap([(0x0810, b"an owner\0"), (0x080A, make_model)])
    properties = ciff_heap([(0x0805, b"a description\0"), (0x2807, camera_object)])
    root = ciff_heap([(0x0032, b"\0" * 8), (0x300A, properties)])
    header = b"II" + struct.pack("<I", 26) + b"HEAPCCDR" + struct.pack("<I", 0x00010002) + bytes(8)
    path.write_bytes(header + root)
    return path


def test_crw_camera_name_from_the_ciff_make_model_record(tmp_path, monkeypatch):
    crw = write_crw(tmp_path / "IMG_0001.CRW", b"Canon\0Canon EOS D30\0\0junk")
    assert raw_module._ciff_camera_name(crw) == "Canon EOS D30"
    assert raw_module._ciff_camera_name(write_crw(tmp_path / "b.crw", b"Canon\0PowerShot G2\0")) \
        == "Canon PowerShot G2"
    # read_raw names it: LibRaw cannot decode this header-only file, so its pixels come from a
    # DNG here; the name comes from the CRW (tifffile cannot read CIFF, so no TIFF tags).
    with pytest.raises(RawFileError):
        read_raw(crw)
    dng = write_dng(tmp_path / "pixels.dng", np.full((24, 24), 0.5), "RGGB", 64, 1023, None)
    original_open_raw = raw_module.open_raw
    monkeypatch.setattr(raw_module, "open_raw", lambda path: original_open_raw(dng))
    assert read_raw(crw).camera == "Canon EOS D30"


def test_ciff_parser_gives_up_quietly_on_other_and_malformed_files(tmp_path):
    dng = write_dng(tmp_path / "a.dng", np.full((24, 24), 0.5), "RGGB", 64, 1023, None)
    assert raw_module._ciff_camera_name(dng) == ""
    crw = write_crw(tmp_path / "c.crw", b"Canon\0Canon EOS D60\0")
    data = crw.read_bytes()
    for broken in (data[:40], data[:-4] + struct.pack("<I", 10**6), data[:14]):
        (tmp_path / "broken.crw").write_bytes(broken)
        assert raw_module._ciff_camera_name(tmp_path / "broken.crw") == ""


def test_magic_lantern_white_balance_is_normalised_to_green():
    image = read_raw(real_file(CHART))
    assert image.white_balance_source == "camera"
    np.testing.assert_allclose(image.white_balance, [2.48, 1.0, 1.69], atol=0.01)


def test_colour_matrix_from_rgb_xyz_matrix_agrees_with_libraws_own():
    image = read_raw(real_file(LAKE))  # the one sample whose camera LibRaw knows by name
    assert image.colour_matrix_source == "rgb_xyz_matrix" and image.camera == "Canon EOS 650D"
    with rawpy.imread(str(image.path)) as raw:
        np.testing.assert_allclose(image.camera_to_srgb, raw.color_matrix[:, :3], atol=1e-4)
    np.testing.assert_allclose(image.camera_to_srgb.sum(axis=1), 1.0, atol=1e-4)  # white stays white


@pytest.mark.parametrize("name", RAW_VIDEO_FILES)
def test_raw_video_frames_have_no_exposure_metadata(name):
    # Magic Lantern writes ExposureTime 0 and ShutterSpeedValue 0; LibRaw alone would say 1 s.
    image = read_raw(real_file(name))
    assert image.exposure_time_s is None and image.iso is None


def test_dark_frame_read_noise_matches_the_recorded_statistics():
    image = read_raw(real_file(DARK), clip=False)
    stats = noise_statistics(image)
    recorded = verified(DARK)["cfa_stats_minus_black"]
    for plane, key in (("R", "(0,0)R0"), ("G1", "(0,1)G1"), ("G2", "(1,0)G3"), ("B", "(1,1)B2")):
        assert stats[plane]["std_dn"] == pytest.approx(recorded[key]["std"], abs=0.05)
        assert stats[plane]["mean_dn"] == pytest.approx(recorded[key]["mean"], abs=0.05)
        assert stats[plane]["pixels"] == 360 * 640
        assert 0.0 < stats[plane]["row_std_dn"] < 2.0
    # About 14 DN on red and blue, 6.8 DN on green (PROVENANCE.md).
    assert 13.5 < stats["R"]["std_dn"] < 15.0 and 13.5 < stats["B"]["std_dn"] < 15.0
    assert 6.5 < stats["G1"]["std_dn"] < 7.1 and 6.5 < stats["G2"]["std_dn"] < 7.1


def test_clip_false_keeps_read_noise_below_black():
    path = real_file(DARK)
    unclipped, clipped = read_raw(path, clip=False), read_raw(path)
    assert unclipped.mosaic.min() < 0.0 and clipped.mosaic.min() == 0.0
    np.testing.assert_array_equal(np.clip(unclipped.mosaic, 0, 1), clipped.mosaic)
    assert clipped.clipped and not unclipped.clipped


# ---------------------------------------------------------------------------- packing

def colour_coded_mosaic(pattern: str, height: int = 6, width: int = 8) -> np.ndarray:
    """A mosaic whose every pixel holds 10·(plane number) + a unique fraction: planes are known."""
    codes = {"R": 1, "G1": 2, "B": 3, "G2": 4}
    mosaic = np.zeros((height, width))
    for plane, (row, column) in plane_positions(pattern).items():
        mosaic[row::2, column::2] = 10 * codes[plane]
    return mosaic + np.arange(height * width).reshape(height, width) / 1000


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("order", sorted(PACK_ORDERS))
def test_pack_puts_each_colour_in_its_named_plane(pattern, order):
    planes = pack(colour_coded_mosaic(pattern), pattern, order)
    expected_codes = [{"R": 10, "G1": 20, "B": 30, "G2": 40}[name] for name in PACK_ORDERS[order]]
    np.testing.assert_array_equal(np.floor(planes[:, 0, 0] / 10) * 10, expected_codes)
    assert (np.floor(planes / 10) * 10 == np.array(expected_codes)[:, None, None]).all()


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("order", sorted(PACK_ORDERS))
def test_pack_unpack_round_trip_numpy_and_torch_with_leading_dims(pattern, order):
    mosaic = np.random.default_rng(0).random((2, 3, 6, 10)).astype(np.float32)
    planes = pack(mosaic, pattern, order)
    assert planes.shape == (2, 3, 4, 3, 5)
    np.testing.assert_array_equal(unpack(planes, pattern, order), mosaic)
    tensor = torch.from_numpy(mosaic)
    tensor_planes = pack(tensor, pattern, order)
    assert isinstance(tensor_planes, torch.Tensor)
    np.testing.assert_array_equal(tensor_planes.numpy(), planes)
    assert torch.equal(unpack(tensor_planes, pattern, order), tensor)


def test_sid_order_matches_the_sid_code_for_rggb():
    # SID's pack_raw: concatenate im[0::2, 0::2], im[0::2, 1::2], im[1::2, 1::2], im[1::2, 0::2].
    mosaic = np.arange(48.0).reshape(6, 8)
    expected = np.stack([mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 1::2], mosaic[1::2, 0::2]])
    np.testing.assert_array_equal(pack(mosaic, "RGGB", "RGBG"), expected)


def test_pack_keeps_gradients():
    mosaic = torch.rand(1, 4, 6, requires_grad=True)
    (pack(mosaic, "GRBG") * torch.arange(4.0)[:, None, None]).sum().backward()
    assert mosaic.grad is not None and mosaic.grad.shape == mosaic.shape


def test_pack_rejects_odd_sizes_and_unknown_orders():
    with pytest.raises(InvalidInputError, match=r"\(5, 8\)"):
        pack(np.zeros((5, 8)), "RGGB")
    with pytest.raises(InvalidInputError, match=r"\(2, 6, 7\)"):
        pack(torch.zeros(2, 6, 7), "RGGB")
    with pytest.raises(UnknownNameError, match="GRGB"):
        pack(np.zeros((4, 4)), "RGGB", order="GRGB")
    with pytest.raises(InvalidInputError, match="4, h, w"):
        unpack(np.zeros((3, 2, 2)), "RGGB")
    with pytest.raises(UnsupportedSensorError):
        pack(np.zeros((4, 4)), "RGBG")


# ---------------------------------------------------------------------------- DNG writing

BLACK = {"R": 500, "G1": 510, "B": 520, "G2": 530}  # distinct so a mixed-up plane shows
WHITE = 16383


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_dng_round_trip(tmp_path, pattern):
    rng = np.random.default_rng(1)
    written = rng.uniform(-0.01, 1.0, size=(40, 62)).astype(np.float32)  # a little below black too
    path = write_dng(tmp_path / f"{pattern}.dng", written, pattern, BLACK, WHITE, (2.1, 1.0, 1.55),
                     exposure_time_s=1 / 30, iso=3200, camera="llve test camera")
    image = read_raw(path, clip=False)
    assert image.pattern == pattern
    assert image.black_level == BLACK and image.white_level == WHITE
    np.testing.assert_array_equal(image.raw_dn, dn_from_normalised(written, pattern, BLACK, WHITE))
    np.testing.assert_allclose(image.white_balance, (2.1, 1.0, 1.55), atol=1e-4)
    assert image.white_balance_source == "camera"
    smallest_range = WHITE - max(BLACK.values())
    assert np.abs(image.mosaic - written).max() <= 0.5 / smallest_range + 1e-7
    assert image.exposure_time_s == pytest.approx(1 / 30) and image.iso == 3200
    assert image.camera == "llve test camera"
    # The default colour matrix describes a camera whose raw colours are linear sRGB.
    assert image.colour_matrix_source == "color_matrix"
    np.testing.assert_allclose(image.camera_to_srgb, np.eye(3), atol=1e-4)
    with rawpy.imread(str(path)) as raw:  # LibRaw's full pipeline runs on our DNGs too
        assert raw.postprocess(half_size=True).shape == (20, 31, 3)


def test_dng_integer_dn_written_as_is(tmp_path):
    dn = np.random.default_rng(2).integers(0, 4096, size=(24, 32)).astype(np.uint16)
    image = read_raw(write_dng(tmp_path / "dn.dng", dn, "GBRG", 240, 4095, (1.8, 1, 1.4)))
    np.testing.assert_array_equal(image.raw_dn, dn)
    assert image.black_level == dict.fromkeys(("R", "G1", "B", "G2"), 240.0)


def test_dng_without_white_balance_falls_back_to_daylight(tmp_path):
    image = read_raw(write_dng(tmp_path / "nowb.dng", np.full((24, 24), 0.5), "RGGB", 64, 1023, None))
    assert image.white_balance_source == "daylight" and image.white_balance == (1.0, 1.0, 1.0)
    assert image.exposure_time_s is None and image.iso is None


def test_white_balance_fallbacks():
    assert choose_white_balance([1.0, 0.4, 0.68, 0.0], [2, 1, 1.5, 0]) == ((2.5, 1.0, 1.7), "camera")
    assert choose_white_balance([-1.0, 1, 1, 0], [2, 1, 1.5, 0]) == ((2.0, 1.0, 1.5), "daylight")
    assert choose_white_balance([0.0, 1, 0, 0], [0, 0, 0, 0]) == ((1.0, 1.0, 1.0), "unity")


def test_write_dng_is_atomic(tmp_path, monkeypatch):
    def fail_half_way(name, *args, **kwargs):
        Path(name).write_bytes(b"II*\0partial")
        raise OSError("disk full")

    monkeypatch.setattr(raw_module.tifffile, "imwrite", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        write_dng(tmp_path / "frame.dng", np.zeros((24, 24)), "RGGB", 512, 16383, (2, 1, 1.5))
    assert list(tmp_path.iterdir()) == []


def test_write_dng_rejects_bad_input(tmp_path):
    good = dict(pattern="RGGB", black_level=512, white_level=16383, white_balance=(2, 1, 1.5))
    square = np.zeros((24, 24))
    cases = [
        (np.full((24, 24), np.nan), good),
        (square, {**good, "pattern": "RGBX"}),
        (square, {**good, "black_level": 511.5}),
        (square, {**good, "black_level": {"R": 512, "G": 512, "B": 512}}),
        (square, {**good, "white_level": 100}),
        (square, {**good, "white_balance": (2, 0, 1)}),
        (np.full((24, 24), 70000, dtype=np.int32), good),
        (np.zeros((24, 21)), good),  # LibRaw would not read it back
        (np.zeros(576), good),
    ]
    for mosaic, arguments in cases:
        with pytest.raises((InvalidInputError, UnsupportedSensorError)):
            write_dng(tmp_path / "bad.dng", mosaic, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_normalise_and_denormalise_are_inverse_on_dn():
    dn = np.random.default_rng(3).integers(0, 16383, size=(6, 6)).astype(np.uint16)
    normalised = normalise_dn(dn, "BGGR", BLACK, WHITE, clip=False)
    np.testing.assert_array_equal(dn_from_normalised(normalised, "BGGR", BLACK, WHITE), dn)


def test_odd_visible_size_is_trimmed_to_whole_blocks(tmp_path):
    written = np.random.default_rng(4).random((23, 25))
    image = read_raw(write_dng(tmp_path / "odd.dng", written, "GRBG", 64, 4095, (1, 1, 1)))
    assert image.shape == (22, 24) and image.trimmed == (1, 1) and image.pattern == "GRBG"


# ---------------------------------------------------------------------------- bad files

def test_missing_file(tmp_path):
    with pytest.raises(RawFileError, match="nothere.dng: no such file"):
        read_raw(tmp_path / "nothere.dng")


def test_directory_is_not_a_raw_file(tmp_path):
    with pytest.raises(RawFileError, match=tmp_path.name):
        read_raw(tmp_path)


def test_text_file_is_not_a_raw_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not a raw image\n")
    with pytest.raises(RawFileError, match="notes.txt: LibRaw cannot open it"):
        read_raw(path)


def test_png_is_not_a_raw_file(tmp_path):
    import imageio.v3 as imageio

    path = tmp_path / "photo.png"
    imageio.imwrite(path, np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(RawFileError, match="photo.png: LibRaw cannot open it"):
        read_raw(path)


def test_truncated_dng(tmp_path):
    source = real_file(DARK)
    shutil.copy(source, tmp_path / "intact.dng")  # control: a whole copy reads like the original
    np.testing.assert_array_equal(read_raw(tmp_path / "intact.dng").raw_dn, read_raw(source).raw_dn)
    path = tmp_path / "truncated.dng"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(RawFileError, match="truncated.dng: the pixel data could not be decoded"):
        read_raw(path)


def test_xtrans_like_sensor_is_rejected(tmp_path):
    # A 6×6 X-Trans CFA in a DNG: LibRaw reads it and reports a 6×6 raw_pattern.
    xtrans = "GGRGGB" "GGBGGR" "BRGRBG" "GGBGGR" "GGRGGB" "RBGBRG"
    path = tmp_path / "xtrans.dng"
    tifffile.imwrite(path, np.full((24, 24), 1000, dtype=np.uint16), photometric="CFA",
                     subfiletype=0, metadata=None, extratags=[
                         (50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "fake", True),
                         (33421, "H", 2, (6, 6), True),
                         (33422, "B", 36, tuple("RGB".index(c) for c in xtrans), True)])
    with pytest.raises(UnsupportedSensorError, match="xtrans.dng.*6, 6"):
        read_raw(path)


def test_linear_dng_is_rejected(tmp_path):
    # Already demosaiced (LinearRaw, 3 samples per pixel): no CFA to pack.
    path = tmp_path / "linear.dng"
    tifffile.imwrite(path, np.full((24, 24, 3), 1000, dtype=np.uint16), photometric=34892,
                     subfiletype=0, metadata=None, extratags=[
                         (50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "fake", True)])
    with pytest.raises(UnsupportedSensorError, match="linear.dng: not a colour-filter-array"):
        read_raw(path)


# ---------------------------------------------------------------------------- noise statistics

def test_noise_statistics_recover_known_pixel_and_row_noise():
    rng = np.random.default_rng(5)
    height, width = 400, 600
    pixel_noise = {"R": 3.0, "G1": 2.0, "B": 4.0, "G2": 2.0}
    dn = np.zeros((height, width))
    for plane, (row, column) in plane_positions("BGGR").items():
        dn[row::2, column::2] = 100 + rng.normal(0, pixel_noise[plane], (height // 2, width // 2))
    dn += rng.normal(0, 1.5, (height, 1))  # row (banding) noise shared by a whole sensor row
    stats = noise_statistics(np.rint(dn).astype(np.uint16), "BGGR", 90)
    assert list(stats) == ["R", "G1", "G2", "B"]
    for plane, sigma in pixel_noise.items():
        assert stats[plane]["mean_dn"] == pytest.approx(10, abs=0.3)
        assert stats[plane]["std_dn"] == pytest.approx(np.hypot(sigma, 1.5), rel=0.03)
        assert stats[plane]["row_std_dn"] == pytest.approx(1.5, rel=0.15)
        assert stats[plane]["row_std_white_dn"] < 0.4


def test_noise_statistics_needs_pattern_and_black_for_arrays():
    with pytest.raises(InvalidInputError, match="pattern and black_level"):
        noise_statistics(np.zeros((4, 4), dtype=np.uint16))
