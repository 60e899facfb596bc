"""SID Sony loading (a fake tree of tiny DNGs named .ARW) and crops that keep the CFA phase."""

import numpy as np
import pytest
import torch

from llve.data.datasets import (
    SID_MISALIGNED_TEST_SCENES, RandomCropDataset, RawCrop, SidSonyDataset, check_layout,
    parse_sid_file_name, random_raw_crop, transpose_keeps_pattern,
)
from llve.data.raw import pack, unpack, write_dng
from llve.errors import DatasetNotFoundError, InvalidInputError, UnknownNameError

SIZE = (48, 64)  # LibRaw reads nothing under 22 px; small keeps LibRaw's AHD demosaic fast


def write_sid_file(folder, name, seed, level):
    mosaic = np.random.default_rng(seed).uniform(0.0, level, SIZE).astype(np.float32)
    seconds = parse_sid_file_name(name).exposure_s
    # rawpy recognises the file by its content, so a DNG named .ARW opens like a camera raw
    return write_dng(folder / name, mosaic, "RGGB", 512, 16383, (2.0, 1.0, 1.6),
                     exposure_time_s=seconds)


@pytest.fixture(scope="module")
def sid_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sid")
    short, long = root / "Sony" / "short", root / "Sony" / "long"
    short.mkdir(parents=True)
    long.mkdir(parents=True)
    shorts = ["00001_00_0.1s.ARW", "00001_01_0.04s.ARW", "00002_00_0.033s.ARW",
              "10034_00_0.04s.ARW", "10003_00_0.1s.ARW", "20005_00_0.1s.ARW"]
    longs = ["00001_00_10s.ARW", "00002_00_30s.ARW", "10034_00_10s.ARW", "10003_00_10s.ARW",
             "20005_00_30s.ARW"]
    for seed, name in enumerate(shorts):
        write_sid_file(short, name, seed, 0.01)
    for seed, name in enumerate(longs):
        write_sid_file(long, name, 100 + seed, 0.8)
    return root


def test_file_names_parse_into_scene_shot_time_and_split():
    name = parse_sid_file_name("10034_05_0.033s.ARW")
    assert (name.scene, name.shot, name.exposure_s, name.split) == ("10034", "05", 0.033, "test")
    assert parse_sid_file_name("/data/Sony/long/20001_00_10s.ARW").split == "val"
    assert parse_sid_file_name("00001_00_30s.ARW").split == "train"
    for bad in ("00001_00_0.1.ARW", "30001_00_10s.ARW", "1_00_10s.ARW", "00001_00_0s.ARW"):
        with pytest.raises(InvalidInputError, match="SID file name"):
            parse_sid_file_name(bad)


def test_splits_pairs_and_ratio_rule(sid_root):
    train = SidSonyDataset(sid_root, "train")
    assert [pair.short.name for pair in train.pairs] == [
        "00001_00_0.1s.ARW", "00001_01_0.04s.ARW", "00002_00_0.033s.ARW"]
    assert [pair.long.name for pair in train.pairs] == [
        "00001_00_10s.ARW", "00001_00_10s.ARW", "00002_00_30s.ARW"]
    # min(t_gt / t_in, 300): 10/0.1 = 100, 10/0.04 = 250, 30/0.033 = 909 -> 300
    assert [pair.ratio for pair in train.pairs] == pytest.approx([100, 250, 300])
    assert [pair.scene for pair in SidSonyDataset(sid_root, "val").pairs] == ["20005"]
    assert not any(pair.excluded_from_scores for pair in train.pairs)


def test_misaligned_test_scenes_are_flagged(sid_root):
    test = SidSonyDataset(sid_root, "test")
    flags = {pair.scene: pair.excluded_from_scores for pair in test.pairs}
    assert flags == {"10003": False, "10034": True}
    assert "10034" in SID_MISALIGNED_TEST_SCENES and {"10045", "10172"} < SID_MISALIGNED_TEST_SCENES


def test_items_follow_the_sid_protocol(sid_root):
    dataset = SidSonyDataset(sid_root, "train")
    item = dataset[2]
    assert item["mosaic"].shape == SIZE and item["mosaic"].dtype == np.float32
    assert 0 <= item["mosaic"].min() and item["mosaic"].max() < 0.02  # normalised, not amplified
    assert item["target"].shape == SIZE + (3,) and 0 <= item["target"].min() <= 1
    assert (item["ratio"], item["scene"], item["pattern"]) == (pytest.approx(300), "00002", "RGGB")
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_ground_truth_cache_gives_the_same_target(sid_root, tmp_path):
    plain = SidSonyDataset(sid_root, "train")[0]["target"]
    cached = SidSonyDataset(sid_root, "train", cache_dir=tmp_path)
    first, again = cached[0]["target"], cached[0]["target"]  # rendered, then memory-mapped
    names = [path.name for path in tmp_path.iterdir()]  # keyed by the file, not just its name
    assert len(names) == 1 and names[0].startswith("00001_00_10s-") and names[0].endswith(".npy")
    np.testing.assert_allclose(first, plain, atol=1 / 65535)
    np.testing.assert_array_equal(first, again)


def test_random_crop_dataset_is_a_pure_function_of_the_index(sid_root):
    crops = RandomCropDataset(SidSonyDataset(sid_root, "train"), crop_size=16, seed=3,
                              crops_per_pair=4)
    assert len(crops) == 12
    first, again, other = crops[5], crops[5], crops[6]
    assert first["mosaic"].shape == (1, 16, 16) and first["target"].shape == (3, 16, 16)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["mosaic"], other["mosaic"])
    assert 0.2 < first["mosaic"].max() < 3  # amplified by the pair's ratio (250), not clipped


def test_layout_error_prints_the_expected_tree_and_what_is_missing(tmp_path):
    (tmp_path / "Sony" / "short").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as error:
        check_layout(tmp_path)
    message = str(error.value)
    assert "Expected layout:" in message and "└── Sony/" in message
    assert "Sony/short/*.ARW (no matching file)" in message
    assert "Sony/long/ (folder not found)" in message
    with pytest.raises(DatasetNotFoundError):
        SidSonyDataset(tmp_path / "nowhere")
    with pytest.raises(UnknownNameError):
        check_layout(tmp_path, "not_a_dataset")


def test_layout_found_under_a_shared_data_root(sid_root):
    assert check_layout(sid_root) == sid_root
    data_root = sid_root.parent / "data_root"
    data_root.mkdir(exist_ok=True)
    (data_root / "SID").symlink_to(sid_root, target_is_directory=True)
    assert check_layout(data_root) == data_root / "SID"


def distinct_planes(pattern="RGGB", height=12, width=16):
    """A mosaic whose R, G1, B, G2 samples are 1, 2, 3, 4 (planes told apart by value)."""
    planes = np.stack([np.full((height // 2, width // 2), value) for value in (1.0, 2.0, 3.0, 4.0)])
    return unpack(planes, pattern)


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_every_crop_keeps_the_cfa_phase(pattern):
    mosaic = distinct_planes(pattern)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        crop = random_raw_crop(*mosaic.shape, 8, rng, pattern)
        seen.add((crop.flip_rows, crop.flip_columns, crop.transpose))
        planes = pack(crop.apply(mosaic), pattern)  # R, G1, B, G2 read by the pattern
        red, blue = planes[0], planes[2]
        assert np.all(red == 1.0) and np.all(blue == 3.0), (pattern, crop)
        assert set(np.unique(planes[[1, 3]])) <= {2.0, 4.0}  # greens stay green
    assert len(seen) == (8 if transpose_keeps_pattern(pattern) else 4)


def test_mirrored_crop_is_an_exact_mirror_of_the_target():
    image = np.arange(12 * 16, dtype=np.float32).reshape(12, 16)
    target = np.stack([image, -image, 2 * image], axis=-1)
    crop = RawCrop(top=3, left=5, size=8, flip_rows=True, flip_columns=True, transpose=True)
    window = image[3:11, 5:13][::-1, ::-1].T
    np.testing.assert_array_equal(crop.apply(image), window)
    np.testing.assert_array_equal(crop.apply(target)[..., 1], -window)  # same pixels, aligned


def test_crop_arguments_are_checked():
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInputError):
        random_raw_crop(12, 16, 7, rng)  # odd size
    with pytest.raises(InvalidInputError):
        random_raw_crop(12, 16, 14, rng)  # larger than the image
    with pytest.raises(InvalidInputError):
        RawCrop(10, 0, 8).apply(np.zeros((12, 16)))
    crop = random_raw_crop(8, 8, 8, rng)  # no room to shift: never mirrored
    assert (crop.top, crop.left, crop.flip_rows, crop.flip_columns) == (0, 0, False, False)
