"""Local/region patches, the tile grid, the Gaussian merge and the streaming enhancer."""

import tracemalloc

import numpy as np
import pytest
import torch

from llve.errors import InvalidInputError
from llve.papers.uhr_cyclegan.patches import (
    NpyRowWriter, crop_pair, enhance_frame, gaussian_weights, merge_weights, reflect_indices,
    resize_region, tile_positions, training_pair,
)


def ramp_frame(height, width):
    """Channel 0 = row / height, 1 = column / width, 2 = their mean: linear in position."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack([y / height, x / width, (y / height + x / width) / 2], axis=-1)
    return frame.astype(np.float32)


def naive_merge(frame, patch_fn, patch, stride, weights, swap_xy=False):
    """Reference merge with full-frame accumulators, np.pad reflection and given 2-D weights.

    ``swap_xy`` places the tile read at (top, left) at (left, top): the released script's bug.
    """
    height, width = frame.shape[:2]
    pad = 2 * patch + max(height, width)
    padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    numerator = np.zeros((height + 2 * pad, width + 2 * pad, 3))
    denominator = np.zeros((height + 2 * pad, width + 2 * pad, 1))
    for top, left in tile_positions(height, width, patch, stride):
        window = padded[top + pad:top + pad + patch, left + pad:left + pad + patch]
        tile = torch.from_numpy(window.copy()).permute(2, 0, 1)[None]
        out = patch_fn(tile)[0, :3].permute(1, 2, 0).numpy()
        y, x = (left, top) if swap_xy else (top, left)
        numerator[y + pad:y + pad + patch, x + pad:x + pad + patch] += weights[..., None] * out
        denominator[y + pad:y + pad + patch, x + pad:x + pad + patch] += weights[..., None]
    with np.errstate(invalid="ignore"):  # pixels no swapped tile reaches: NaN
        return (numerator / denominator)[pad:pad + height, pad:pad + width]


def tile_mean(tiles):
    """A per-patch constant: every output pixel of a tile is that tile's mean."""
    return tiles.mean(dim=(2, 3), keepdim=True).expand_as(tiles).clone()


def gaussian_2d(patch):
    """The paper's weights written out independently: 1-based positions, μ = N/2, σ = N/6."""
    i = np.arange(1, patch + 1)
    g = np.exp(-((i - patch / 2) ** 2) / (2 * (patch / 6) ** 2))
    return g[:, None] * g[None, :]


# ----------------------------------------------------------------------------------------------
# Weights and grid


def test_gaussian_weights_match_facts_for_512():
    w = gaussian_weights(512)
    assert w[0] == pytest.approx(0.0115057, abs=5e-8)
    assert w[255] == 1.0
    assert w[511] == pytest.approx(0.0111090, abs=5e-8)
    assert int(np.argmax(w)) == 255
    assert np.allclose(merge_weights(64), gaussian_2d(64))


@pytest.mark.parametrize("height, width, patch", [(100, 130, 64), (512, 512, 512), (7, 300, 32)])
def test_tile_grid_is_full_tiles_at_half_stride_covering_the_frame(height, width, patch):
    positions = tile_positions(height, width, patch)
    tops = sorted({top for top, _ in positions})
    lefts = sorted({left for _, left in positions})
    assert positions == [(t, l) for t in tops for l in lefts]  # row by row
    assert np.all(np.diff(tops) == patch // 2) if len(tops) > 1 else True
    # First tile centred on pixel 0, last centre at or just past the last pixel.
    assert tops[0] == lefts[0] == -(patch // 2)
    assert height - 1 <= tops[-1] + patch // 2 < height - 1 + patch // 2
    assert width - 1 <= lefts[-1] + patch // 2 < width - 1 + patch // 2


def test_reflect_indices_match_numpy_pad():
    size = 5
    reference = np.pad(np.arange(size), 23, mode="reflect")
    assert np.array_equal(reflect_indices(-23, size + 46, size), reference)
    assert np.array_equal(reflect_indices(-3, 4, 1), np.zeros(4))


# ----------------------------------------------------------------------------------------------
# Merge


@pytest.mark.parametrize("stride", [None, 20, 64])
def test_identity_patches_reproduce_the_frame(stride):
    frame = np.random.default_rng(0).random((200, 300, 3), dtype=np.float32)
    out = enhance_frame(frame, lambda tiles: tiles, patch=64, region=128, stride=stride,
                        batch_size=3)
    assert np.abs(out - frame).max() <= 1e-6


def test_per_patch_constants_merge_like_the_reference_on_a_non_square_frame():
    # A per-tile constant depends on where the tile is; with x and y swapped (or wrong
    # positions or weights) the merge would not match the reference.
    frame = ramp_frame(96, 160)
    out = enhance_frame(frame, tile_mean, patch=32, batch_size=5)
    reference = naive_merge(frame, tile_mean, 32, 16, gaussian_2d(32))
    assert np.abs(out - reference).max() < 1e-6
    swapped = naive_merge(frame, tile_mean, 32, 16, gaussian_2d(32), swap_xy=True)
    assert np.nanmax(np.abs(out - swapped)) > 0.1  # the comparison tells a swapped merge apart


def test_no_seams_with_gaussian_weights_but_seams_with_box_weights():
    frame = ramp_frame(64, 320)  # neighbouring tiles' means differ by 16/320 = 0.05 in x
    out = enhance_frame(frame, tile_mean, patch=32)
    step = np.abs(np.diff(out[8:-8, 8:-8, 1], axis=1)).max()
    jump = 16 / 320
    assert step < 0.3 * jump
    box = naive_merge(frame, tile_mean, 32, 16, np.ones((32, 32)))
    assert np.abs(np.diff(box[8:-8, 8:-8, 1], axis=1)).max() >= 0.45 * jump  # a real seam


def test_region_channels_are_centred_on_each_tile():
    frame = ramp_frame(192, 256)
    patch, region = 32, 64
    seen = []

    def capture(tiles):
        seen.append(tiles.clone())
        return tiles

    enhance_frame(frame, capture, patch=patch, region=region, batch_size=4)
    tiles = torch.cat(seen)
    positions = tile_positions(192, 256, patch)
    assert tiles.shape == (len(positions), 6, patch, patch)
    inside = [i for i, (top, left) in enumerate(positions)
              if top - 16 >= 0 and left - 16 >= 0 and top + 48 <= 192 and left + 48 <= 256]
    assert len(inside) > 10
    local, far = tiles[inside, :3].mean(dim=(2, 3)), tiles[inside, 3:].mean(dim=(2, 3))
    assert (local - far).abs().max() < 1e-3  # same centre on a linear ramp
    # The region is twice as wide: its x-ramp is twice as steep after resizing.
    slope_local = tiles[inside, 1, :, -1].mean() - tiles[inside, 1, :, 0].mean()
    slope_far = tiles[inside, 4, :, -1].mean() - tiles[inside, 4, :, 0].mean()
    assert float(slope_far / slope_local) == pytest.approx(2.0, rel=0.05)


def test_streaming_output_file_matches_and_memory_does_not_grow_with_height(tmp_path):
    def peak_numpy_bytes(height, out):
        frame = np.random.default_rng(1).random((height, 256, 3), dtype=np.float32)
        tracemalloc.start()
        enhance_frame(frame, lambda t: t * 0.5, patch=32, region=64, batch_size=2, out=out)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, frame

    with NpyRowWriter(tmp_path / "short.npy", (64, 256, 3)) as writer:
        short, _ = peak_numpy_bytes(64, writer)
    with NpyRowWriter(tmp_path / "tall.npy", (640, 256, 3)) as writer:
        tall, frame = peak_numpy_bytes(640, writer)
    assert tall < 1.2 * short  # 10× the rows, no more memory: nothing frame-sized is held
    written = np.load(tmp_path / "tall.npy", mmap_mode="r")
    assert np.abs(written - frame * 0.5).max() <= 1e-6


def test_row_writer_refuses_out_of_order_rows(tmp_path):
    writer = NpyRowWriter(tmp_path / "x.npy", (4, 2, 3))
    with pytest.raises(InvalidInputError, match="in order"):
        writer[2:4] = np.zeros((2, 2, 3), np.float32)
    writer[0:4] = np.zeros((4, 2, 3), np.float32)
    writer.close()


def test_bad_frames_and_patch_functions_are_refused():
    frame = np.zeros((40, 40, 3), np.float32)
    with pytest.raises(InvalidInputError, match="float32"):
        enhance_frame(frame.astype(np.uint8), lambda t: t, patch=16)
    with pytest.raises(InvalidInputError, match="H×W×3"):
        enhance_frame(frame[..., :2], lambda t: t, patch=16)
    with pytest.raises(InvalidInputError, match="patch_fn must return"):
        enhance_frame(frame, lambda t: t[:, :, :8], patch=16)
    with pytest.raises(InvalidInputError, match="region"):
        enhance_frame(frame, lambda t: t, patch=16, region=8)


# ----------------------------------------------------------------------------------------------
# Training pairs


def test_crop_pair_region_is_centred_and_resized():
    frame = ramp_frame(300, 400)
    pair = crop_pair(frame, top=100, left=150, local=40, region=120)
    assert pair.shape == (6, 40, 40)
    assert torch.equal(pair[:3], torch.from_numpy(frame[100:140, 150:190]).permute(2, 0, 1))
    # same centre (119.5, 169.5): equal means on a linear ramp, region 3× steeper
    assert (pair[:3].mean(dim=(1, 2)) - pair[3:].mean(dim=(1, 2))).abs().max() < 1e-3
    slope = lambda c: float(pair[c, :, -1].mean() - pair[c, :, 0].mean())  # noqa: E731
    assert slope(4) / slope(1) == pytest.approx(3.0, rel=0.05)


def test_crop_pair_reflects_the_region_at_the_border():
    frame = np.random.default_rng(2).random((50, 60, 3), dtype=np.float32)
    pair = crop_pair(frame, top=0, left=0, local=20, region=40)
    padded = np.pad(frame, ((10, 10), (10, 10), (0, 0)), mode="reflect")
    expected = resize_region(torch.from_numpy(padded[:40, :40].copy()).permute(2, 0, 1)[None], 20)
    assert torch.allclose(pair[3:], expected[0])
    with pytest.raises(InvalidInputError, match="leaves"):
        crop_pair(frame, top=40, left=0, local=20, region=40)


def test_training_pair_flips_both_halves_together():
    frame = ramp_frame(200, 240)
    rng = np.random.default_rng(0)
    orientations = []
    for _ in range(40):
        pair = training_pair(frame, rng, local=32, region=96)
        local_slope = float(pair[1, :, -1].mean() - pair[1, :, 0].mean())
        region_slope = float(pair[4, :, -1].mean() - pair[4, :, 0].mean())
        assert np.sign(local_slope) == np.sign(region_slope)  # one shared flip
        orientations.append(local_slope > 0)
    assert any(orientations) and not all(orientations)  # both flipped and unflipped drawn
    again = training_pair(frame, np.random.default_rng(0), local=32, region=96)
    assert torch.equal(again, training_pair(frame, np.random.default_rng(0), local=32, region=96))
