"""The amplifier widget demo, driven through its Python objects (no browser needed)."""

import math
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import shared_file
import torch

from llve.papers.lamba.amplifier import (
    BIN_WEIGHTS, estimate_amplification, mean_amplification, pixel_weights,
)
from llve.data import SHARED_DATA, raw
from llve.papers.lamba import network as lamba
from llve.papers.lamba.demo import (
    AMPLIFIER_LABELS, DemoImage, amplification_sweep, amplifier_demo, amplifier_sweep_figure,
    bin_histogram, demo_state, downsample_mosaic, real_demo_image, synthetic_demo_images,
    synthetic_name,
)

NO_RATIO_REASON = "this test frame has no exposure metadata"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return lamba.build("tiny").eval()


@pytest.fixture(scope="module")
def frames():
    found = synthetic_demo_images(size=64, seed=0)
    first = found[synthetic_name(100)]
    no_metadata = DemoImage(name="no metadata", mosaic=first.mosaic, pattern=first.pattern,
                            white_balance=first.white_balance, camera_to_srgb=first.camera_to_srgb,
                            reference=first.reference, exposure_ratio=None,
                            no_ratio_reason=NO_RATIO_REASON)
    return {**found, no_metadata.name: no_metadata}


def shown_factor(demo):
    """The factor the widget displays, read back from its HTML as the browser test does."""
    match = re.search(r'data-factor="([^"]*)"', demo.factor_text.value)
    assert match, demo.factor_text.value
    return float(match.group(1)) if match.group(1) else None


def test_synthetic_frames_are_dark_with_bright_lamps(frames):
    frame = frames[synthetic_name(300)]
    assert frame.mosaic.shape == (64, 64) and frame.exposure_ratio == 300
    assert np.median(frame.mosaic) < 0.01
    # Lamps (10x the long exposure's white level) stand far above the dark scene even at ratio
    # 300, and are clipped in the well-exposed reference.
    assert frame.mosaic.max() > 20 * np.median(frame.mosaic)
    assert (frame.reference >= 0.99).any()


def test_demo_state_factor_is_proportional_to_m_below_the_clamp(frames, model):
    frame = frames[synthetic_name(100)]
    low, high = demo_state(frame, model, "weighted", 0.2), demo_state(frame, model, "weighted", 0.4)
    assert high.factor < 300
    assert math.isclose(high.factor, 2 * low.factor, rel_tol=1e-9)
    assert math.isclose(low.factor, estimate_amplification(frame.mosaic, 0.2), rel_tol=1e-9)
    assert math.isclose(low.printed_factor, min(10 * low.factor, 300), rel_tol=1e-9)
    assert high.amplified.shape == high.restored.shape == (64, 64, 3)
    assert high.amplified.mean() > low.amplified.mean()
    assert 0 <= high.restored.min() and high.restored.max() <= 1
    assert high.saturated_fraction >= low.saturated_fraction > 0


def test_moving_the_slider_updates_the_factor_text_and_the_images(frames, model):
    demo = amplifier_demo(frames, model, "tiny (untrained)", m=0.2)
    before = shown_factor(demo)
    amplified, restored = demo.amplified_view.value, demo.restored_view.value
    reference, histogram = demo.reference_view.value, demo.histogram_view.value
    demo.m_slider.value = 0.4
    after = shown_factor(demo)
    assert math.isclose(after, 2 * before, rel_tol=1e-9), (before, after)  # Eq. 5: A ∝ m
    assert 'data-m="0.4"' in demo.factor_text.value
    assert demo.amplified_view.value != amplified and demo.restored_view.value != restored
    assert demo.reference_view.value == reference and demo.histogram_view.value == histogram
    assert bytes(demo.amplified_view.value).startswith(b"\x89PNG")


def test_switching_the_amplifier_changes_the_factor(frames, model):
    demo = amplifier_demo(frames, model)
    frame = frames[demo.image_picker.value]
    weighted = shown_factor(demo)
    demo.amplifier_picker.value = "mean"
    assert math.isclose(shown_factor(demo), mean_amplification(frame.mosaic, 0.5), rel_tol=1e-9)
    assert shown_factor(demo) < weighted  # the saturated lamps pull the plain mean up
    demo.amplifier_picker.value = "ratio"
    assert shown_factor(demo) == frame.exposure_ratio
    assert demo.m_slider.disabled and "m does not enter" in demo.factor_text.value
    demo.amplifier_picker.value = "weighted"
    assert not demo.m_slider.disabled and shown_factor(demo) == weighted


def test_eq3_without_exposure_metadata_is_explained_not_a_crash(frames, model):
    demo = amplifier_demo(frames, model)
    demo.image_picker.value = "no metadata"
    demo.amplifier_picker.value = "ratio"
    assert demo.state.factor is None and demo.state.restored is None
    assert shown_factor(demo) is None
    assert "unavailable" in demo.factor_text.value and NO_RATIO_REASON in demo.factor_text.value
    assert bytes(demo.amplified_view.value).startswith(b"\x89PNG")  # a placeholder, still a picture
    demo.amplifier_picker.value = "weighted"
    assert shown_factor(demo) > 1


def test_every_amplifier_label_is_offered(frames, model):
    demo = amplifier_demo(frames, model)
    assert [value for _, value in demo.amplifier_picker.options] == list(AMPLIFIER_LABELS)
    assert list(demo.image_picker.options) == list(frames)
    assert (demo.m_slider.min, demo.m_slider.max) == pytest.approx((0.1, 0.9))


def test_bin_histogram_agrees_with_the_estimator_weights():
    mosaic = np.random.default_rng(0).uniform(-0.01, 1.05, (32, 32)).astype(np.float32)
    counts, below_zero, saturated = bin_histogram(mosaic)
    assert counts.shape == (127,)
    assert counts.sum() + below_zero + saturated == mosaic.size
    assert below_zero == (mosaic < 0).sum() and saturated == (mosaic >= 1).sum()
    assert math.isclose(float((counts * BIN_WEIGHTS.numpy()).sum()),
                        float(pixel_weights(mosaic).sum()), rel_tol=1e-12)


def test_downsample_mosaic_keeps_each_bayer_plane():
    planes = np.stack([np.full((30, 45), value, dtype=np.float32)
                       for value in (0.1, 0.2, 0.3, 0.4)])
    mosaic = raw.unpack(planes, "GRBG")
    small = downsample_mosaic(mosaic, "GRBG", size=32)
    assert max(small.shape) <= 32 and small.shape[0] % 2 == small.shape[1] % 2 == 0
    assert np.allclose(raw.pack(small, "GRBG")[:, 0, 0], [0.1, 0.2, 0.3, 0.4])


def test_amplification_sweep_and_figure(frames, model):
    frame = frames[synthetic_name(100)]
    sweep = amplification_sweep(frame, (0.1, 0.2))
    assert sweep["exposure_ratio"].tolist() == [100.0, 100.0]
    figure = amplifier_sweep_figure(frame, model, ms=(0.1, 0.2), model_label="tiny (untrained)")
    titles = [axis.get_title() for axis in figure.axes]
    assert any("m = 0.2: A = " in title and "printed Eq. 5" in title for title in titles)
    assert "tiny (untrained)" in figure._suptitle.get_text()
    plt.close(figure)


def test_real_raw_frames_darkened_and_as_recorded():
    path = shared_file(SHARED_DATA / "real_raw/canon650d_rawvideo_harbor_000000.dng")
    recorded = real_demo_image(path, size=128, darkening=None)
    darkened = real_demo_image(path, size=128, seed=0)
    assert max(recorded.mosaic.shape) <= 128 and recorded.mosaic.shape == darkened.mosaic.shape
    assert recorded.exposure_ratio is None and "no exposure time" in recorded.no_ratio_reason
    assert darkened.exposure_ratio == 100
    assert math.isclose(darkened.mosaic.mean() * 100, recorded.mosaic.mean(), rel_tol=0.1)
