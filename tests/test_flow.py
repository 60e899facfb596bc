"""llve.models.flow: both estimators against a synthetic clip's exact flow, the direction of the
flow (warping frame b by it reproduces frame a), method resolution, the cache, EPE, and errors."""

import numpy as np
import pytest
from conftest import OFFICIAL, shared_file

from llve.data.images import clean_image
from llve.data.video import dynamic_clip, warp
from llve.errors import CheckpointError, InvalidInputError, UnknownNameError
from llve.models import flow as flow_module
from llve.models.flow import FlowCache, end_point_error, estimate_flow, resolve_method


@pytest.fixture(scope="module")
def clip():
    # 4–6 px of camera motion per frame: an estimator that fails is off by pixels, not tenths
    return dynamic_clip(clean_image("astronaut"), frames=3, crop=128, seed=0, max_speed=6.0)


def raft_weights():
    return shared_file(OFFICIAL / "raft_small" / "raft-small.pth")


def motion(clip) -> float:
    return float(np.linalg.norm(clip.flow_forward[0], axis=-1).mean())


def check_estimate(clip, method, **options):
    estimate = estimate_flow(clip.frames[0], clip.frames[1], method, **options)
    assert estimate.method == method and estimate.flow.shape == (128, 128, 2)
    assert estimate.flow.dtype == np.float32
    epe = end_point_error(estimate.flow, clip.flow_forward[0])
    assert motion(clip) > 3.0
    assert epe < 0.1 * motion(clip)  # measured: DIS 0.13 px, RAFT-small 0.11–0.17 px at 4.4 px
    # direction: the estimate aligns frame 1 onto frame 0 about as well as the true flow does
    aligned = np.abs(warp(clip.frames[1], estimate.flow) - clip.frames[0]).mean()
    unaligned = np.abs(clip.frames[1] - clip.frames[0]).mean()
    true_aligned = np.abs(warp(clip.frames[1], clip.flow_forward[0]) - clip.frames[0]).mean()
    assert aligned < 0.25 * unaligned and aligned < 2 * true_aligned + 0.002
    reversed_flow = np.abs(warp(clip.frames[1], -estimate.flow) - clip.frames[0]).mean()
    assert reversed_flow > 2 * aligned  # the opposite sign would not align


def test_dis_recovers_the_true_flow_in_llve_convention(clip):
    check_estimate(clip, "dis")


def test_raft_small_recovers_the_true_flow_in_llve_convention(clip):
    check_estimate(clip, "raft_small", raft_weights=raft_weights(), device="cpu")


def test_auto_uses_raft_when_weights_are_found_else_dis(clip, monkeypatch, tmp_path):
    assert resolve_method("auto", raft_weights()) == "raft_small"
    monkeypatch.setattr(flow_module, "raft_weights_path", lambda weights=None: None)
    assert resolve_method("auto") == "dis"
    assert estimate_flow(clip.frames[0], clip.frames[1]).method == "dis"
    with pytest.raises(CheckpointError, match="raft_weights"):
        estimate_flow(clip.frames[0], clip.frames[1], "raft_small")


def test_uint8_grey_and_float_frames_agree(clip):
    as_uint8 = np.rint(clip.frames[:2] * 255).astype(np.uint8)
    from_float = estimate_flow(clip.frames[0], clip.frames[1], "dis").flow
    from_uint8 = estimate_flow(as_uint8[0], as_uint8[1], "dis").flow
    np.testing.assert_array_equal(from_float, from_uint8)
    scaled = estimate_flow(clip.frames[0] * 255, clip.frames[1] * 255, "dis", data_range=255).flow
    np.testing.assert_array_equal(from_float, scaled)
    grey = clip.frames[:2].mean(axis=-1)
    assert end_point_error(estimate_flow(grey[0], grey[1], "dis").flow,
                           clip.flow_forward[0]) < 0.1 * motion(clip)


def test_cache_estimates_each_key_once(clip, monkeypatch):
    calls = []
    real = flow_module.estimate_flow

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(flow_module, "estimate_flow", counting)
    cache = FlowCache(max_entries=2)
    first = cache.flow("astronaut/0", 0, 1, clip.frames[0], clip.frames[1], "dis")
    again = cache.flow("astronaut/0", 0, 1, clip.frames[0], clip.frames[1], "dis")
    assert again is first and calls == ["dis"]
    cache.flow("astronaut/0", 1, 2, clip.frames[1], clip.frames[2], "dis")
    cache.flow("astronaut/0", 0, 2, clip.frames[0], clip.frames[2], "dis")
    assert len(cache) == 2 and len(calls) == 3


def test_end_point_error_by_hand():
    true_flow = np.zeros((2, 3, 2))
    flow = true_flow.copy()
    flow[0, 0] = (3.0, 4.0)  # one pixel off by 5 px
    assert end_point_error(flow, true_flow) == pytest.approx(5 / 6)
    mask = np.zeros((2, 3), bool)
    mask[0, :2] = True
    assert end_point_error(flow, true_flow, mask) == pytest.approx(2.5)
    with pytest.raises(InvalidInputError, match="no pixels"):
        end_point_error(flow, true_flow, np.zeros((2, 3), bool))
    with pytest.raises(InvalidInputError, match="same shape"):
        end_point_error(flow, true_flow[:1])
    with pytest.raises(InvalidInputError, match="H×W×2"):
        end_point_error(flow[..., :1], true_flow[..., :1])


@pytest.mark.parametrize("frame_b, message", [
    (np.zeros((32, 48, 3), np.float32), "same shape"),
    (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
    (np.zeros((2, 32, 32, 3), np.float32), "H×W"),
    (np.zeros((32, 32, 4), np.float32), "H×W"),
    (np.zeros((32, 32, 3), np.int64), "dtype"),
    ([[0.0]], "numpy array"),
])
def test_bad_input_names_the_frame(frame_b, message):
    with pytest.raises(InvalidInputError, match=message):
        estimate_flow(np.zeros((32, 32, 3), np.float32), frame_b, "dis")


def test_unknown_method_and_small_frames_for_raft():
    frame = np.zeros((32, 32), np.float32)
    with pytest.raises(UnknownNameError, match="farneback"):
        estimate_flow(frame, frame, "farneback")
    with pytest.raises(InvalidInputError, match="57"):
        estimate_flow(frame, frame, "raft_small", raft_weights=raft_weights())
