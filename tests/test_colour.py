"""llve.data.colour: the ColorChecker reference, ΔE2000, neutral-row normalisation and the
chart locator (synthetic charts at several positions, scales and orientations; the real 550D file).

Reference values are colour-science's, never typed in here.
"""

import colour
import numpy as np
import pytest
from conftest import REAL_RAW, shared_file
from colour.models import eotf_inverse_sRGB, eotf_sRGB
from scipy import ndimage

from llve.data import colour as cc
from llve.data import isp, read_raw
from llve.errors import InvalidInputError
from llve.papers.lamba.demo import downsample_mosaic

CHART_FILE = REAL_RAW / "canon550d_magiclantern_colorchart.dng"


def synthetic_chart(shape=(300, 420), centre=(150, 210), pitch=40.0, angle=0.0, seed=0,
                    distractor=False):
    """A rendered chart: reference patches (side 0.8 pitch) on a black body over a textured
    background, rotated by ``angle`` degrees, blurred and noisy; and the true patch centres."""
    rng = np.random.default_rng(seed)
    reference, _ = cc.colour_checker_reference_srgb()
    rows, columns = np.mgrid[:shape[0], :shape[1]].astype(float)
    background = 0.35 + 0.25 * ndimage.gaussian_filter(rng.random(shape), 12) * 4
    image = np.repeat(np.clip(background, 0, 1)[..., None], 3, axis=2) * [0.9, 1.0, 1.1]
    theta = np.deg2rad(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    # chart coordinates (u along a patch row, v down the chart) of every pixel, in pitches
    offset = np.stack([columns - centre[1], rows - centre[0]], -1) @ rotation / pitch
    u, v = offset[..., 0] + 3, offset[..., 1] + 2
    body = (u > -0.35) & (u < 6.35) & (v > -0.35) & (v < 4.35)
    image[body] = 0.04
    inside = ((u >= 0) & (u < 6) & (v >= 0) & (v < 4)
              & (np.abs(u % 1 - 0.5) < 0.4) & (np.abs(v % 1 - 0.5) < 0.4))
    index = (np.floor(v) * 6 + np.floor(u)).astype(int)
    image[inside] = reference[index[inside]]
    if distractor:  # a 5×2 grid of grey squares of the same size, like a Passport's other page
        for row in range(2):
            for column in range(5):
                top, left = 20 + int(row * pitch), 20 + int(column * pitch)
                image[top:top + int(0.8 * pitch), left:left + int(0.8 * pitch)] = 0.6
    image = ndimage.gaussian_filter(image, (1.2, 1.2, 0)) + rng.normal(0, 0.01, image.shape)
    grid = np.stack(np.meshgrid(np.arange(6) - 2.5, np.arange(4) - 1.5), -1).reshape(-1, 2)
    xy = grid * pitch @ rotation.T + [centre[1], centre[0]]
    return np.clip(image, 0, 1), xy[:, ::-1]  # centres as (row, column)


@pytest.fixture(scope="module")
def real_chart_render():
    recorded = read_raw(shared_file(CHART_FILE))
    mosaic = downsample_mosaic(recorded.mosaic, recorded.pattern, 1024)
    return isp.render_srgb(mosaic, recorded.pattern, recorded.white_balance,
                           recorded.camera_to_srgb)


# --------------------------------------------------------------------------- reference and ΔE


def test_reference_is_colour_sciences_24_patches_in_srgb():
    reference, names = cc.colour_checker_reference_srgb()
    checker = colour.CCS_COLOURCHECKERS[cc.REFERENCE_CHART]
    assert reference.shape == (24, 3) and len(names) == 24
    assert names == tuple(checker.data)
    assert names[18].startswith("white 9.5") and names[23].startswith("black")
    assert reference.min() >= 0 and reference.max() <= 1
    assert reference[18].min() > 0.9  # white 9.5 is near white ...
    assert np.ptp(reference[18]) < 0.05  # ... and neutral
    assert np.all(np.diff(reference[18:].mean(axis=1)) < 0)  # the neutral row darkens
    xyz = colour.xyY_to_XYZ(checker.data[names[0]])  # patch 1, converted directly
    direct = colour.XYZ_to_sRGB(xyz, illuminant=checker.illuminant,
                                chromatic_adaptation_transform="Bradford")
    np.testing.assert_allclose(reference[0], direct, atol=1e-12)


def test_delta_e_of_identical_colours_is_zero():
    reference, _ = cc.colour_checker_reference_srgb()
    np.testing.assert_allclose(cc.delta_e_2000(reference, reference), 0.0, atol=1e-9)


def test_delta_e_matches_colour_science_directly():
    a, b = np.array([0.5, 0.4, 0.3]), np.array([0.55, 0.38, 0.33])
    lab_a = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(a, chromatic_adaptation_transform=None))
    lab_b = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(b, chromatic_adaptation_transform=None))
    expected = colour.delta_E(lab_a, lab_b, method="CIE 2000")
    assert expected > 1
    assert cc.delta_e_2000(a, b) == pytest.approx(expected, rel=1e-12)


def test_delta_e_refuses_mismatched_shapes():
    with pytest.raises(InvalidInputError):
        cc.delta_e_2000(np.zeros((24, 3)), np.zeros((23, 3)))


# --------------------------------------------------------------------------- normalisation


def test_neutral_normalisation_removes_exposure_and_white_balance():
    reference, _ = cc.colour_checker_reference_srgb()
    gains = np.array([0.3, 0.5, 0.8])
    measured = eotf_inverse_sRGB(eotf_sRGB(reference) * gains)
    normalised, fitted = cc.normalise_on_neutrals(measured, reference)
    np.testing.assert_allclose(fitted, 1 / gains, rtol=1e-9)
    assert cc.delta_e_2000(normalised, reference).max() < 1e-6


def test_exposure_only_normalisation_keeps_the_colour_cast():
    reference, _ = cc.colour_checker_reference_srgb()
    exposed = eotf_inverse_sRGB(eotf_sRGB(reference) * 0.4)
    normalised, gains = cc.normalise_on_neutrals(exposed, reference, white_balance=False)
    np.testing.assert_allclose(gains, 2.5, rtol=1e-9)
    assert cc.delta_e_2000(normalised, reference).max() < 1e-6
    cast = eotf_inverse_sRGB(eotf_sRGB(reference) * [0.3, 0.5, 0.8])
    normalised, _ = cc.normalise_on_neutrals(cast, reference, white_balance=False)
    assert cc.delta_e_2000(normalised, reference)[18:].mean() > 5


def test_clipped_neutral_patches_are_left_out_of_the_fit():
    reference, _ = cc.colour_checker_reference_srgb()
    measured = eotf_inverse_sRGB(np.clip(eotf_sRGB(reference) * [1.2, 0.9, 0.6], 0, 1))
    assert measured[18].max() >= cc.CLIPPED  # white is clipped in red
    _, gains = cc.normalise_on_neutrals(measured, reference)
    np.testing.assert_allclose(gains, 1 / np.array([1.2, 0.9, 0.6]), rtol=1e-9)


# --------------------------------------------------------------------------- locating


@pytest.mark.parametrize("case", [
    dict(),
    dict(shape=(480, 640), centre=(300, 220), pitch=55.0),
    dict(shape=(400, 300), centre=(150, 160), pitch=28.0, angle=4.0),
    dict(centre=(160, 200), pitch=36.0, angle=180.0),  # upside down
    dict(shape=(420, 300), centre=(210, 150), pitch=40.0, angle=90.0),  # portrait
    dict(shape=(420, 520), centre=(280, 300), pitch=40.0, distractor=True),
], ids=["centred", "large-offset", "small-rotated", "upside-down", "portrait", "distractor"])
def test_locates_a_synthetic_chart(case):
    image, truth = synthetic_chart(**case)
    location = cc.locate_colour_checker(image)
    error = np.linalg.norm(location.centres - truth, axis=1)
    assert error.max() < 0.15 * case.get("pitch", 40.0), error
    assert location.pitch == pytest.approx(case.get("pitch", 40.0), rel=0.05)
    assert location.detected >= 20
    reference, _ = cc.colour_checker_reference_srgb()
    measured = cc.patch_means(image, location.boxes)
    assert cc.delta_e_2000(measured, reference).mean() < 2.0  # right patches, in chart order


def test_no_chart_raises():
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInputError, match="no 6×4 grid"):
        cc.locate_colour_checker(ndimage.gaussian_filter(rng.random((200, 300, 3)), (3, 3, 0)))


def test_locates_the_chart_in_the_real_550d_file(real_chart_render):
    location = cc.locate_colour_checker(real_chart_render)
    height, width = real_chart_render.shape[:2]
    assert location.detected >= 20
    # the ColorChecker is the lower page of a Passport (the upper page has other squares)
    assert np.all(location.centres[:, 0] > 0.5 * height)
    assert np.all((location.centres[:, 1] > 0.35 * width) & (location.centres[:, 1] < 0.8 * width))
    measured = cc.patch_means(real_chart_render, location.boxes)
    assert np.all(np.diff(measured[18:].mean(axis=1)) < 0)  # neutral row: white to black
    assert np.argmax(measured[12:18, 2] - measured[12:18, 0]) == 0  # patch 13 is the blue one


def test_reference_isp_delta_e_on_the_real_chart(real_chart_render):
    reference, _ = cc.colour_checker_reference_srgb()
    location = cc.locate_colour_checker(real_chart_render)
    normalised, _ = cc.normalise_on_neutrals(cc.patch_means(real_chart_render, location.boxes),
                                             reference)
    delta_e = cc.delta_e_2000(normalised, reference)
    assert np.all(np.isfinite(delta_e))
    assert delta_e.mean() < 5.0 and delta_e.max() < 13.0
