"""Offline clean images: every name loads, procedural scenes are deterministic and varied;
save_image's PNG round trips and refusals."""

import struct
import zlib
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from llve.data import save_image
from llve.data.images import (
    GRAY_IMAGE_NAMES, IMAGE_NAMES, clean_image, clean_images, procedural_scene, stereo_motorcycle)
from llve.errors import InvalidInputError, UnknownNameError


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_every_image_loads_offline_as_float_srgb(name):
    image = clean_image(name)
    assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.01
    resized = clean_image(name, size=64)
    assert resized.shape == (64, 64, 3) and resized.dtype == np.float32
    assert 0.0 <= resized.min() and resized.max() <= 1.0


def test_names_are_fixed_and_gray_images_are_replicated():
    assert len(IMAGE_NAMES) == len(set(IMAGE_NAMES)) == 20
    camera = clean_image(GRAY_IMAGE_NAMES[0])
    assert np.array_equal(camera[..., 0], camera[..., 2])
    with pytest.raises(UnknownNameError, match="unknown image"):
        clean_image("horse")  # a scikit-image loader that would download
    with pytest.raises(InvalidInputError):
        clean_image("astronaut", size=3)


def test_procedural_scene_is_deterministic_varied_and_has_highlights():
    scene = procedural_scene(128, seed=3)
    assert scene.shape == (128, 128, 3) and scene.dtype == np.float32
    assert np.array_equal(scene, procedural_scene(128, seed=3))
    assert not np.array_equal(scene, procedural_scene(128, seed=4))
    assert 0.0 <= scene.min() and scene.max() <= 1.0
    for seed in range(4):
        scene = procedural_scene(128, seed=seed)
        assert scene.max() > 0.95  # a near-saturated light source
        assert np.abs(np.diff(scene, axis=1)).mean() > 0.005  # edges and texture, not flat


def test_clean_images_mix_is_deterministic():
    images = clean_images(6, size=64, seed=1)
    assert len(images) == 6 and all(image.shape == (64, 64, 3) for image in images)
    again = clean_images(6, size=64, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(images, again))
    other = clean_images(6, size=64, seed=2)
    assert not all(np.array_equal(a, b) for a, b in zip(images, other))
    procedural_only = clean_images(2, size=64, seed=1, real_fraction=0.0)
    assert all(image.max() > 0.95 for image in procedural_only)
    with pytest.raises(InvalidInputError):
        clean_images(2, size=64, real_fraction=1.5)


def test_stereo_pair_disparity_is_a_real_two_view_warp():
    import cv2

    left, right, disparity = stereo_motorcycle()
    assert left.shape == right.shape and disparity.shape == left.shape[:2]
    height, width = disparity.shape
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    source_x = grid_x - np.nan_to_num(disparity)
    warped = cv2.remap(right, source_x, grid_y, cv2.INTER_LINEAR)
    valid = np.isfinite(disparity) & (source_x >= 0)
    # left[y, x] ≈ right[y, x - d]: 22.4 dB measured (occlusions, lighting) vs 12.6 dB unwarped
    assert _psnr(warped[valid], left[valid]) > 20.0
    assert _psnr(right, left) < 14.0


def test_gray_images_keep_their_shape():
    from llve.data.images import GRAY_IMAGE_NAMES, clean_image

    for name in GRAY_IMAGE_NAMES:
        image = clean_image(name)
        assert image.ndim == 3 and image.shape[-1] == 3 and min(image.shape[:2]) > 100, name
        assert image.std() > 0.01, name  # a real picture, not a constant strip


# ---------------------------------------------------------------------------- save_image

def read_png(path) -> np.ndarray:
    """An independent PNG reader (zlib + the five row filters): 8- or 16-bit RGB, no interlace.

    Pillow reads 16-bit RGB PNGs as 8-bit, so the 16-bit round trip is checked against this.
    """
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = data[position + 4:position + 8]
        chunks[kind] = chunks.get(kind, b"") + data[position + 8:position + 8 + length]
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert colour == 2 and interlace == 0 and depth in (8, 16)  # RGB, not interlaced
    stride, pixel = width * 3 * depth // 8, 3 * depth // 8
    raw = zlib.decompress(chunks[b"IDAT"])
    rows, previous = [], [0] * stride
    for y in range(height):
        kind, line = raw[y * (stride + 1)], list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - pixel] if i >= pixel else 0
            up, up_left = previous[i], previous[i - pixel] if i >= pixel else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                estimate = left + up - up_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
                line[i] = (line[i] + (left, up, up_left)[distances.index(min(distances))]) & 255
        rows.append(line)
        previous = line
    values = np.array(rows, dtype=np.uint8).reshape(height, width * 3 * depth // 8)
    if depth == 16:
        values = values.view(">u2").astype(np.uint16)
    return values.reshape(height, width, 3)


def gradient_image(height=12, width=20):
    rng = np.random.default_rng(3)
    image = rng.random((height, width, 3))
    image[0, :3] = [[0.0, 1.0, 0.5], [1 / 255, 254 / 255, 0.2], [1 / 65535, 65534 / 65535, 0.8]]
    return image  # float64, with exact ends and one-step neighbours in the first row


def test_save_image_8_bit_round_trip(tmp_path):
    image = gradient_image()
    path = save_image(tmp_path / "out.png", image)
    assert path == tmp_path / "out.png"
    with PIL.Image.open(path) as png:
        assert png.mode == "RGB" and png.size == (20, 12)
        read = np.asarray(png)
    np.testing.assert_array_equal(read, np.rint(image * 255).astype(np.uint8))
    assert np.abs(read / 255 - image).max() <= 0.5 / 255 + 1e-12
    np.testing.assert_array_equal(read_png(path), read)  # the test's reader agrees with Pillow
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_save_image_16_bit_round_trip_and_tensors(tmp_path):
    image = gradient_image()
    read = read_png(save_image(tmp_path / "out16.png", image, bits=16))
    assert read.dtype == np.uint16 and read.shape == (12, 20, 3)
    np.testing.assert_array_equal(read, np.rint(image * 65535).astype(np.uint16))
    assert np.abs(read / 65535 - image).max() <= 0.5 / 65535 + 1e-12
    assert read[0, 2, 0] == 1 and read[0, 2, 1] == 65534  # single 16-bit steps survive
    with PIL.Image.open(tmp_path / "out16.png") as png:  # channel order: Pillow's 8-bit view
        assert np.abs(np.asarray(png).astype(int) - np.rint(image * 255)).max() <= 1
    chw = torch.from_numpy(image).permute(2, 0, 1).float()
    for tensor in (chw, chw[None]):
        from_tensor = read_png(save_image(tmp_path / "tensor.png", tensor, bits=16))
        np.testing.assert_array_equal(
            from_tensor, np.rint(chw.permute(1, 2, 0).double().numpy() * 65535).astype(np.uint16))


def test_save_image_clips_only_float_rounding_overshoot(tmp_path):
    image = np.full((4, 5, 3), 0.5, dtype=np.float32)
    image[0, 0] = [1 + 5e-7, -5e-7, 1.0]
    read = read_png(save_image(tmp_path / "a.png", image))
    assert read[0, 0].tolist() == [255, 0, 255]
    for value in (1.01, -0.001):
        image[0, 0, 0] = value
        with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
            save_image(tmp_path / "b.png", image)
    assert not (tmp_path / "b.png").exists()


@pytest.mark.parametrize("bad, message", [
    (np.full((4, 4, 3), np.nan), "NaN or infinite"),
    (np.full((4, 4, 3), np.inf), "NaN or infinite"),
    (np.zeros((4, 4)), "H×W×3"),
    (np.zeros((4, 4, 4)), "H×W×3"),
    (np.zeros((3, 4, 4)), "H×W×3"),  # channels first is a tensor's layout, not an array's
    (np.zeros((4, 4, 3), dtype=np.uint8), "floating-point"),
    (torch.zeros(2, 3, 4, 4), "3×H×W or 1×3×H×W"),
    (torch.zeros(4, 4, 3), "3×H×W or 1×3×H×W"),
    (torch.zeros(3, 4, 4, dtype=torch.uint8), "floating-point"),
    (torch.full((1, 3, 4, 4), float("nan")), "NaN or infinite"),
    ([[[0.5, 0.5, 0.5]]], "numpy array or torch tensor"),
    (np.zeros((0, 4, 3)), "empty"),
])
def test_save_image_refuses_bad_images(tmp_path, bad, message):
    with pytest.raises(InvalidInputError, match=message):
        save_image(tmp_path / "bad.png", bad)
    assert list(tmp_path.iterdir()) == []


def test_save_image_refuses_bad_bits_names_and_folders_and_replaces_whole(tmp_path):
    image = gradient_image()
    for bits in (1, 12, 32, "8"):
        with pytest.raises(InvalidInputError, match="bits must be 8 or 16"):
            save_image(tmp_path / "a.png", image, bits=bits)
    with pytest.raises(InvalidInputError, match=r"\.png"):
        save_image(tmp_path / "a.jpg", image)
    with pytest.raises(InvalidInputError, match="does not exist"):
        save_image(tmp_path / "missing" / "a.png", image)
    path = save_image(tmp_path / "a.png", image, bits=16)
    save_image(path, np.zeros((2, 3, 3)))  # an existing file is replaced, not appended to
    assert read_png(path).shape == (2, 3, 3) and read_png(path).dtype == np.uint8
    assert list(tmp_path.iterdir()) == [path]
