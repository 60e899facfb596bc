"""DRV and DAVIS loading from tiny fake trees (16-bit PNGs, JPEGs written with OpenCV)."""

import cv2
import numpy as np
import pytest
import torch

from llve.data.datasets import (
    DRV_DYNAMIC_VIDEOS, DrvStaticDataset, check_layout, davis_sequence,
    davis_sequences, drv_dynamic_video, drv_raw_files, drv_scenes, drv_static_clip,
)
from llve.errors import DatasetNotFoundError, InvalidInputError, UnknownNameError

SIZE = (12, 18)  # H×W of every fake frame (DRV's are 918×1374)


def write_png16(path, seed):
    """A random 16-bit RGB PNG; returns the RGB array OpenCV was given in B, G, R order."""
    rgb = np.random.default_rng(seed).integers(0, 65536, (*SIZE, 3), dtype=np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    return rgb


@pytest.fixture(scope="module")
def drv_root(tmp_path_factory):
    """A data root holding DRV/ with static scenes 0013 (6 frames) and 0009, video M0003."""
    root = tmp_path_factory.mktemp("data")
    drv = root / "DRV"
    frames = {name: [write_png16(drv / "VBM4D_rawRGB" / "0013" / f"{name}_{k:04d}.png", k)
                     for k in range(6)] for name in ("0013",)}
    frames["target"] = write_png16(drv / "long" / "0013" / "half0001_0013.png", 99)
    write_png16(drv / "VBM4D_rawRGB" / "0009" / "0000.png", 7)
    write_png16(drv / "long" / "0009" / "half0001.png", 8)
    frames["M0003"] = [write_png16(drv / "VBM4D_rawRGB" / "M0003" / f"{k:04d}.png", 50 + k)
                       for k in range(4)]
    for name in ("0013/0001.ARW", "0013/0002.ARW"):
        (drv / "short" / name).parent.mkdir(parents=True, exist_ok=True)
        (drv / "short" / name).write_bytes(b"raw")
    (drv / "long" / "0013" / "0001_10s.ARW").write_bytes(b"raw")
    return root, frames


def test_drv_splits_are_smids_lists():
    train, test = drv_scenes("train"), drv_scenes("test")
    assert (len(train), len(drv_scenes("smid_train")), len(drv_scenes("val")), len(test)) == (153, 129, 24, 49)
    assert train == drv_scenes("smid_train") + drv_scenes("val")
    assert not set(train) & set(test)
    assert set(train) | set(test) == {f"{n:04d}" for n in range(1, 203)}
    assert drv_scenes("dynamic") == DRV_DYNAMIC_VIDEOS and DRV_DYNAMIC_VIDEOS[-1] == "M0022"
    with pytest.raises(UnknownNameError, match="unknown DRV split"):
        drv_scenes("training")


def test_drv_static_clip_reads_16_bit_frames_in_rgb(drv_root):
    root, written = drv_root
    clip = drv_static_clip(root, "0013", frames=3, start=2)
    assert clip.frames.shape == (3, *SIZE, 3) and clip.frames.dtype == np.float32
    np.testing.assert_array_equal(clip.frames, np.stack(written["0013"][2:5]) / np.float32(65535))
    np.testing.assert_array_equal(clip.target, written["target"] / np.float32(65535))
    assert clip.first_frame == 2 and clip.frame_paths[0].name == "0013_0002.png"
    assert clip.target_path.name == "half0001_0013.png"
    with pytest.raises(DatasetNotFoundError, match="frames 4..6 requested, 6 frames present"):
        drv_static_clip(root, "0013", frames=3, start=4)
    with pytest.raises(InvalidInputError, match="dynamic video"):
        drv_static_clip(root, "M0003")


def test_drv_dynamic_video_and_raw_files(drv_root):
    root, written = drv_root
    video = drv_dynamic_video(root / "DRV", "M0003")
    assert video.frames.shape == (4, *SIZE, 3) and video.name == "M0003"
    np.testing.assert_array_equal(video.frames[1], written["M0003"][1] / np.float32(65535))
    assert drv_dynamic_video(root, "M0003", frames=2, start=1).frames.shape[0] == 2
    with pytest.raises(InvalidInputError, match="M0000…M0022"):
        drv_dynamic_video(root, "M0023")
    raw = drv_raw_files(root, "0013")
    assert [p.name for p in raw.short] == ["0001.ARW", "0002.ARW"] and raw.long.name == "0001_10s.ARW"
    with pytest.raises(DatasetNotFoundError, match=r"short/0009/ \(folder not found\)"):
        drv_raw_files(root, "0009")


def test_drv_static_dataset_checks_every_scene(drv_root, tmp_path):
    root, _ = drv_root
    with pytest.raises(DatasetNotFoundError) as error:
        DrvStaticDataset(root, "test")  # only 0013 and 0009 of the 49 test scenes exist
    message = str(error.value)
    assert "VBM4D_rawRGB/0020/*.png (no matching file)" not in message  # the folder itself is absent
    assert "VBM4D_rawRGB/0020/ (folder not found)" in message and "long/0154/" in message
    assert "VBM4D_rawRGB/0013/" not in message

    dataset = DrvStaticDataset(root, "test", frames=1, scenes=["0013", "0009"])
    assert len(dataset) == 2
    item = dataset[1]
    assert item["frames"].shape == (1, 3, *SIZE) and item["target"].shape == (3, *SIZE)
    assert item["scene"] == "0009" and item["frames"].dtype == torch.float32
    with pytest.raises(InvalidInputError, match="not in DRV split 'train'"):
        DrvStaticDataset(root, "train", scenes=["0013"])
    with pytest.raises(InvalidInputError, match="no ground truth"):
        DrvStaticDataset(root, "dynamic")


def test_drv_missing_folder_prints_the_expected_tree(tmp_path):
    (tmp_path / "VBM4D_rawRGB").mkdir()
    with pytest.raises(DatasetNotFoundError) as error:
        check_layout(tmp_path, "drv")
    message = str(error.value)
    assert "DRV (Seeing Motion in the Dark" in message and "Expected layout:" in message
    assert "half0001*.png (ground truth, 16-bit)" in message
    assert "long/ (folder not found)" in message
    assert "VBM4D_rawRGB/* (no matching file)" in message
    with pytest.raises(DatasetNotFoundError, match="Expected layout"):
        drv_static_clip(tmp_path, "0013")


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis") / "DAVIS"
    frames = {}
    for name, count in (("bear", 3), ("car-shadow", 2)):
        folder = root / "JPEGImages" / "480p" / name
        folder.mkdir(parents=True)
        frames[name] = []
        for k in range(count):
            rgb = np.full((*SIZE, 3), (40 * k + 20, 120, 200), dtype=np.uint8)  # flat: JPEG-exact
            assert cv2.imwrite(str(folder / f"{k:05d}.jpg"), rgb[..., ::-1])
            frames[name].append(rgb)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("car-shadow\n")
    return root, frames


def test_davis_sequences_and_frames(davis_root):
    root, written = davis_root
    assert davis_sequences(root.parent) == ["bear", "car-shadow"]  # found under the data root
    assert davis_sequences(root, "val") == ["car-shadow"]
    sequence = davis_sequence(root, "bear", frames=2, start=1)
    assert sequence.frames.shape == (2, *SIZE, 3) and sequence.frame_paths[0].name == "00001.jpg"
    np.testing.assert_allclose(sequence.frames, np.stack(written["bear"][1:]) / 255, atol=2 / 255)
    assert sequence.frames[0, 0, 0, 2] > sequence.frames[0, 0, 0, 0]  # RGB order: blue is 200
    with pytest.raises(DatasetNotFoundError, match=r"ImageSets/2017/train\.txt"):
        davis_sequences(root, "train")
    with pytest.raises(UnknownNameError):
        davis_sequences(root, "test-dev")


def test_davis_missing_sequence_prints_the_expected_tree(davis_root, tmp_path):
    root, _ = davis_root
    with pytest.raises(DatasetNotFoundError) as error:
        davis_sequence(root, "horsejump-high")
    message = str(error.value)
    assert "DAVIS 2017" in message and "00000.jpg, 00001.jpg" in message
    assert "JPEGImages/480p/horsejump-high/ (folder not found)" in message
    with pytest.raises(DatasetNotFoundError, match=r"JPEGImages/480p/ \(folder not found\)"):
        davis_sequence(tmp_path, "bear")
