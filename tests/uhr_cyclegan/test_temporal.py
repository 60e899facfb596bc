"""uhr_cyclegan's adaptive temporal smoothing (paper §3.4): flicker removal on static and moving
clips without ghosting, the 256-pixel rule, the window shrinking with motion, streaming, the
UHR flow downscaling, and the metrics. Frames ≤ 256 px, DIS flow (fast, no weights)."""

import numpy as np
import pytest

from llve.data.images import clean_image
from llve.data.video import dynamic_clip
from llve.errors import InvalidInputError
from llve.papers.uhr_cyclegan.temporal import (
    TemporalSmoother, add_flicker, brightness_flicker, flow_downscale, ghosting_error,
    scaled_max_motion, smooth_clip, smooth_frame, warped_flicker, window_half_sizes)

FRAMES = 16


@pytest.fixture(scope="module")
def moving():
    """A moving clean clip (2–4 px per frame) and its brightness-flickering copy."""
    clip = dynamic_clip(clean_image("astronaut"), frames=FRAMES, crop=128, seed=0, max_speed=4.0)
    flickering, _ = add_flicker(clip.frames, amplitude=0.1, seed=1)
    return clip, flickering


def moving_mask(clip) -> np.ndarray:
    """T×H×W: pixels moving at least 0.5 px towards the next frame (the previous for the last)."""
    flows = np.concatenate([clip.flow_forward, -clip.flow_backward[-1:]])
    return np.linalg.norm(flows, axis=-1) >= 0.5


def zero_flow(current, neighbour):
    return np.zeros(current.shape[:2] + (2,), np.float32)


def test_static_clip_flicker_is_reduced_by_a_large_factor():
    image = clean_image("astronaut", 96)
    static = np.broadcast_to(image, (FRAMES,) + image.shape)
    flickering, gains = add_flicker(static, amplitude=0.1, colour_amplitude=0.03, seed=0)
    assert np.ptp(gains) > 0.1
    smoothed = smooth_clip(flickering, flow_method="dis")
    before, after = brightness_flicker(flickering), brightness_flicker(smoothed)
    assert brightness_flicker(static) == 0.0
    assert after < before / 5  # measured: 0.0383 -> 0.0024 (16x) at 128 px
    assert np.abs(smoothed - static).mean() < 0.5 * np.abs(flickering - static).mean()


def test_moving_clip_flicker_is_reduced_without_ghosting(moving):
    clip, flickering = moving
    smoother = TemporalSmoother(flow_method="dis", keep_windows=True)
    smoothed = np.stack([out for frame in flickering for out in smoother.push(frame)]
                        + smoother.flush())
    assert smoother.flow_method == "dis"
    mask = moving_mask(clip)
    assert mask.mean() > 0.9  # camera motion: nearly every pixel moves
    # the full 13-frame window is used at nearly every pixel at this speed
    assert np.mean([window.mean() for window in smoother.windows]) > 5.5
    flicker_before = warped_flicker(flickering, clip.flow_forward)  # true flow
    flicker_after = warped_flicker(smoothed, clip.flow_forward)
    assert flicker_after < flicker_before / 4  # measured 0.0041 -> 0.00031
    ghost_before = ghosting_error(flickering, clip.frames, mask)
    ghost_after = ghosting_error(smoothed, clip.frames, mask)
    assert ghost_after <= ghost_before + 0.002  # measured 0.0078 -> 0.0055
    # without registration the same average ghosts: the check above can fail
    unregistered = smooth_clip(flickering, flow=zero_flow)
    assert ghosting_error(unregistered, clip.frames, mask) > ghost_before + 0.01


def test_motion_over_256_pixels_uses_no_neighbours():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, (5, 256, 256, 3)).astype(np.float32)

    def diagonal_flow(current, neighbour):  # 200·√2 ≈ 283 px, lands inside for x, y ≥ 200
        return np.full(current.shape[:2] + (2,), -200.0, np.float32)

    smoothed = smooth_clip(frames, max_neighbours=2, flow=diagonal_flow)
    np.testing.assert_array_equal(smoothed, frames)
    # control: the same flow under a 300 px limit does average the pixels that land inside
    allowed = smooth_clip(frames, max_neighbours=2, max_motion=300.0, flow=diagonal_flow)
    changed = np.any(allowed != frames, axis=-1)
    assert changed[:, 200:, 200:].all() and not changed[:, :200, :].any()


def test_motion_over_the_limit_on_real_flow_leaves_the_frame_unchanged(moving):
    clip, flickering = moving
    smoothed = smooth_clip(flickering[:6], max_neighbours=2, max_motion=0.5, flow_method="dis")
    fast = np.linalg.norm(clip.flow_forward[:5], axis=-1) > 1.5  # well over 0.5 px
    unchanged = np.all(smoothed[:5] == flickering[:5], axis=-1)
    assert fast.mean() > 0.5 and unchanged[fast].mean() > 0.95


def test_window_rule_by_hand():
    shape = (1, 4)
    speed = np.array([[0.0, 30.0, 60.0, 300.0]])  # px per frame at four pixels
    motion = {d: np.abs(d) * speed for d in (-6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6)}
    np.testing.assert_array_equal(window_half_sizes(motion), [[6, 6, 4, 0]])  # ⌊256/v⌋ capped
    # one side moving fast limits both (symmetric window)
    motion[1] = np.full(shape, 257.0)
    np.testing.assert_array_equal(window_half_sizes(motion), [[0, 0, 0, 0]])
    # at a clip's start the missing backward frames do not shrink the window (the half size is
    # the limit motion sets; frames beyond the clip are simply absent)
    forward = {d: np.where(speed * d > 256, 300.0, 0.0) for d in (1, 2, 3)}
    np.testing.assert_array_equal(window_half_sizes(forward), [[6, 6, 6, 0]])
    with pytest.raises(InvalidInputError, match="offsets"):
        window_half_sizes({7: np.zeros(shape)})


def test_window_shrinks_with_motion():
    image = clean_image("astronaut")
    windows = []
    for speed in (1.0, 8.0):
        clip = dynamic_clip(image, frames=9, crop=96, seed=3, max_speed=speed,
                            max_rotation_deg=0.0, max_zoom=0.0)
        smoother = TemporalSmoother(max_neighbours=4, max_motion=12.0, flow_method="dis",
                                    keep_windows=True)
        for frame in clip.frames:
            smoother.push(frame)
        smoother.flush()
        windows.append(smoother.windows[4].mean())  # the middle frame: a full window exists
    assert windows[0] > windows[1] + 1


def test_scaled_limit_and_the_optional_photometric_check(moving):
    assert scaled_max_motion(7680) == 256.0 and scaled_max_motion(384) == pytest.approx(12.8)
    clip, flickering = moving
    mask = moving_mask(clip)
    # misregistration on purpose (no flow): the photometric check drops what does not match
    plain = ghosting_error(smooth_clip(flickering, flow=zero_flow), clip.frames, mask)
    checked = smooth_clip(flickering, flow=zero_flow, max_difference=0.02)
    assert ghosting_error(checked, clip.frames, mask) < 0.5 * plain
    with pytest.raises(InvalidInputError, match="max_difference"):
        TemporalSmoother(max_difference=-1.0)


def test_stream_outputs_each_frame_once_in_order(moving):
    _, flickering = moving
    smoother = TemporalSmoother(max_neighbours=3, flow=zero_flow)
    counts = [len(smoother.push(frame)) for frame in flickering[:8]]
    assert counts == [0, 0, 0, 1, 1, 1, 1, 1] and len(smoother.flush()) == 3
    assert len(smoother._frames) <= 2 * 3 + 1
    with pytest.raises(InvalidInputError, match="shape"):
        smoother.push(flickering[0, :64])
    with pytest.raises(InvalidInputError, match="NaN"):
        TemporalSmoother().push(np.full((8, 8), np.nan, np.float32))


def test_uhr_frames_compute_flow_on_a_downscaled_copy():
    assert flow_downscale((4320, 7680)) == 8 and flow_downscale((2880, 5120)) == 5
    assert flow_downscale((256, 256)) == 1 and flow_downscale((256, 256), 64) == 4
    shapes = []

    def constant_flow(current, neighbour):  # 2 px on the reduced grid = 8 px at full size
        shapes.append(current.shape)
        return np.full(current.shape[:2] + (2,), 2.0, np.float32)

    frames = np.random.default_rng(1).uniform(0, 1, (3, 256, 192, 3)).astype(np.float32)
    neighbours = {-1: frames[0], 1: frames[2]}

    def half_sizes(max_motion, flow_max_side):
        return smooth_frame(frames[1], neighbours, constant_flow, max_motion=max_motion,
                            flow_max_side=flow_max_side)[1]

    half = half_sizes(11.0, 64)  # reduced ×4: ‖(8, 8)‖ = 11.3 px of full-resolution motion
    assert shapes == [(64, 48, 3)] * 2 and half.shape == (64, 48)
    assert (half == 0).all()
    assert (half_sizes(12.0, 64) == 6).all()
    assert (half_sizes(11.0, 256) == 6).all()  # no reduction: ‖(2, 2)‖ = 2.8 px


def test_metrics_by_hand():
    frames = np.zeros((3, 4, 4, 3))
    frames[1] += 0.2
    assert brightness_flicker(frames) == pytest.approx(0.2)
    assert warped_flicker(frames, np.zeros((2, 4, 4, 2))) == pytest.approx(3 * 0.04)
    mask = np.zeros((3, 4, 4), bool)
    mask[1, 0, 0] = True
    assert ghosting_error(frames, np.zeros_like(frames), mask) == pytest.approx(0.2)
    with pytest.raises(InvalidInputError, match="no pixels"):
        ghosting_error(frames, frames, np.zeros((3, 4, 4), bool))
    with pytest.raises(InvalidInputError, match="T >= 2"):
        brightness_flicker(frames[:1])
