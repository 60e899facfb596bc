"""Video clips: exact flow for synthetic camera motion, independent noise, real video decoding."""

import numpy as np
import pytest
from conftest import shared_file
from scipy import ndimage

from llve.data import SHARED_DATA, shared_sample
from llve.data.images import clean_image
from llve.data.video import darken_clip, dynamic_clip, load_video, static_clip, warp
from llve.errors import DatasetNotFoundError, InvalidInputError

REAL_VIDEO = shared_sample("real_video/intel_sample-videos_car-detection.mp4")
MARGIN = 16  # pixels whose flow target can fall outside the frame are excluded


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def _interior(image):
    return image[MARGIN:-MARGIN, MARGIN:-MARGIN]


@pytest.fixture(scope="module")
def astronaut():
    return clean_image("astronaut")


def test_flow_warps_the_next_frame_onto_the_current_one(astronaut):
    # a smooth image isolates the flow's accuracy from the blur of interpolating twice
    smooth = ndimage.gaussian_filter(astronaut, sigma=(3, 3, 0))
    # measured minima over 15 seeds: 56.6 dB smooth, 33.8 dB sharp (unwarped: ≤ 38.8 / 31.1 dB)
    for image, floor in ((smooth, 50.0), (astronaut, 32.0)):
        clip = dynamic_clip(image, frames=5, crop=192, seed=1)
        assert np.abs(clip.flow_forward).mean() > 0.5  # the camera really moves
        for t in range(4):
            forward = warp(clip.frames[t + 1], clip.flow_forward[t])
            backward = warp(clip.frames[t], clip.flow_backward[t])
            assert _psnr(_interior(forward), _interior(clip.frames[t])) > floor
            assert _psnr(_interior(backward), _interior(clip.frames[t + 1])) > floor
        unwarped = _psnr(_interior(clip.frames[1]), _interior(clip.frames[0]))
        assert unwarped < _psnr(_interior(warp(clip.frames[1], clip.flow_forward[0])),
                                _interior(clip.frames[0])) - 5


def test_dynamic_clip_shapes_motion_and_determinism(astronaut):
    clip = dynamic_clip(astronaut, frames=6, crop=(128, 160), seed=2, max_speed=3.0)
    assert clip.frames.shape == (6, 128, 160, 3) and clip.frames.dtype == np.float32
    assert clip.flow_forward.shape == clip.flow_backward.shape == (5, 128, 160, 2)
    assert clip.poses.shape == (6, 4)
    # per-frame motion bounded by speed + rotation and zoom at the corners (0.5°, 1% of ~100 px)
    assert np.abs(clip.flow_forward).max() < 3.0 + 2.0
    # forward then backward returns to the start
    centre_forward = clip.flow_forward[2][64, 80]
    target = np.round([64 + centre_forward[1], 80 + centre_forward[0]]).astype(int)
    assert np.abs(clip.flow_backward[2][target[0], target[1]] + centre_forward).max() < 0.1
    again = dynamic_clip(astronaut, frames=6, crop=(128, 160), seed=2, max_speed=3.0)
    assert np.array_equal(clip.frames, again.frames)
    assert np.array_equal(clip.flow_forward, again.flow_forward)
    other = dynamic_clip(astronaut, frames=6, crop=(128, 160), seed=3, max_speed=3.0)
    assert not np.array_equal(clip.flow_forward, other.flow_forward)


def test_dynamic_clip_rejects_a_crop_larger_than_the_image(astronaut):
    with pytest.raises(InvalidInputError, match="too small"):
        dynamic_clip(astronaut, frames=3, crop=600)


def test_warp_with_constant_integer_flow_is_a_shift():
    image = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    shifted = warp(image, flow)
    np.testing.assert_array_equal(shifted[1:, :-2], image[:-1, 2:])


@pytest.mark.parametrize("domain", ["raw", "srgb"])
def test_static_clip_has_independent_noise_per_frame(domain):
    image = clean_image("coffee", size=128)
    clip = static_clip(image, frames=3, domain=domain, seed=4)
    raw = domain == "raw"
    assert clip.dark.shape == ((3, 128, 128) if raw else (3, 128, 128, 3))
    assert clip.target.shape == (3, 128, 128, 3)
    assert np.array_equal(clip.target[0], clip.target[2])
    expected = clip.clean_raw / clip.metadata.ratio if raw else (
        clip.metadata.beta * (clip.metadata.alpha * clip.target) ** clip.metadata.gamma)
    residuals = (clip.dark - expected).reshape(3, -1)
    correlations = np.corrcoef(residuals)[np.triu_indices(3, 1)]
    assert np.all(np.abs(correlations) < 0.05)  # ≈ 0 for independent noise (SE ≈ 0.003–0.005)
    assert not np.array_equal(clip.dark[0], clip.dark[1])
    again = static_clip(image, frames=3, domain=domain, seed=4)
    assert np.array_equal(clip.dark, again.dark)


def test_raw_darkening_shares_one_camera_across_a_dynamic_clip(astronaut):
    clip = dynamic_clip(astronaut, frames=4, crop=128, seed=5)
    dark = darken_clip(clip.frames, domain="raw", seed=6, ratio=200, noise="poisson_gaussian")
    assert dark.dark.shape == dark.clean_raw.shape == (4, 128, 128)
    assert dark.metadata.ratio == 200.0 and dark.metadata.noise_model == "poisson_gaussian"
    with pytest.raises(InvalidInputError):
        darken_clip(clip.frames, domain="yuv")


def test_load_video_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(InvalidInputError, match="junk.mp4"):
        load_video(junk)


def test_load_real_video_and_darken_it():
    shared_file(SHARED_DATA / "real_video/intel_sample-videos_car-detection.mp4")
    frames = load_video(REAL_VIDEO, max_frames=3, start=100)
    assert frames.shape == (3, 432, 768, 3) and frames.dtype == np.float32
    assert 0.0 <= frames.min() and frames.max() <= 1.0 and frames.std() > 0.05
    small = load_video(REAL_VIDEO, max_frames=2, size=216)
    assert small.shape == (2, 216, 384, 3)
    assert load_video(REAL_VIDEO, max_frames=1, size=(64, 96)).shape == (1, 64, 96, 3)
    with pytest.raises(InvalidInputError, match="no frames"):
        load_video(REAL_VIDEO, start=10_000)
    dark = darken_clip(small, domain="srgb", seed=0)  # a real-motion low-light clip
    assert dark.dark.shape == small.shape and dark.dark.mean() < small.mean()
