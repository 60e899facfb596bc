"""Lamba & Mitra's demo: the dark-raw amplifier, live (ipywidgets) and as a static sweep.

The amplifier demo (``notebooks/demos/amplifier.py``) lets a person pick a dark raw frame, an
amplifier and the brightness hyperparameter m, and see what the factor does:

- **Eq. 3** (SID): the ground-truth exposure ratio ``min(t_gt / t_in, 300)``. It needs exposure
  metadata of both shots; real files as recorded (the raw-video DNGs have empty exposure tags)
  have none, and the demo says so instead of failing.
- **Eq. 4**: ``(m/10) / mean(x)``, highlights included (the paper's ablation baseline).
- **Eq. 5–7**: the weighted inverse mean over the 127 log-spaced bins, as released
  (``llve.papers.lamba.amplifier.estimate_amplification``). m is shown in paper units (0.1–0.9); the released
  code's ``amp = 10·m`` and the printed Eq. 5's 10× larger factor are shown beside it.

Everything the widget shows comes from the pure function :func:`demo_state`, so the behaviour
is tested without a browser; :func:`amplifier_sweep_figure` is the static m-sweep a headless run
saves instead of live widgets (DESIGN.md §3).
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from llve.data import images, isp, raw, shared_sample, synth
from llve.errors import InvalidInputError, UnknownNameError
from llve.papers.lamba.amplifier import (
    BIN_EDGES, BIN_WEIGHTS, DEFAULT_MAX, amplify_and_restore, estimate_amplification,
    exposure_ratio_amplification, mean_amplification,
)
from llve.papers.lamba.experiment import PATTERN as SYNTHETIC_PATTERN
from llve.papers.lamba.experiment import (
    SID_LIKE, load_or_train, released_model, released_weights, scene_radiance, short_exposure,
)
from llve.plots import as_display_image
from llve.widgets import cached_view, image_panel, png_bytes, static_sweep

AMPLIFIER_LABELS = {
    "weighted": "Eq. 5: weighted mean (Lamba & Mitra)",
    "mean": "Eq. 4: mean",
    "ratio": "Eq. 3: GT exposure ratio (SID)",
}
"""The amplifiers the demo offers, keyed by the name :func:`demo_state` takes."""

M_VALUES = tuple(round(0.1 * step, 1) for step in range(1, 10))
"""The paper's range of m (0.1–0.9; the released code's ``amp`` 1–9)."""

DEMO_RATIOS = (100, 250, 300)
"""Exposure ratios of the synthetic dark frames (SID's Sony ratios)."""

REAL_RAW_FILES = {
    "colour chart (Canon 550D)": "real_raw/canon550d_magiclantern_colorchart.dng",
    "harbour (Canon 650D)": "real_raw/canon650d_rawvideo_harbor_000000.dng",
    "lake (Canon 650D)": "real_raw/canon650d_rawvideo_lake_M26-1615_00000.dng",
}
"""Real raw files (under ``../shared/data``) the demo darkens; absent ones are left out."""

REAL_AS_RECORDED = ("colour chart (Canon 550D)",)
"""Real files also offered as recorded: no exposure ratio, so Eq. 3 explains why it cannot run."""

REAL_DARKENING = 100.0
"""How much less light the darkened real raws receive (÷100, ELD noise at system gain 1)."""

PANEL_WIDTH = "420px"  # on-screen width of each image panel: large enough to judge detail


# --------------------------------------------------------------------------- images and model


@dataclass(frozen=True, eq=False)
class DemoImage:
    """One dark raw frame the demo can amplify.

    ``mosaic`` is the H×W normalised mosaic (1.0 = white level), not amplified and not clipped.
    ``exposure_ratio`` is the ground-truth exposure ratio when it is known (synthetic darkening),
    else None, with ``no_ratio_reason`` saying why Eq. 3 cannot run. ``reference`` is the H×W×3
    sRGB picture of the well-exposed scene, for comparison.
    """

    name: str
    mosaic: np.ndarray
    pattern: str
    white_balance: tuple[float, float, float]
    camera_to_srgb: np.ndarray
    reference: np.ndarray
    exposure_ratio: float | None = None
    no_ratio_reason: str = ""


def synthetic_demo_images(size: int = 256, seed: int = 0,
                          ratios: Sequence[float] = DEMO_RATIOS) -> dict[str, DemoImage]:
    """One procedural night scene as SID-like dark frames at ``ratios``.

    The SID-like synthesis the Lamba models are trained and tested on
    (``llve.papers.lamba.experiment.SID_LIKE``): Brooks unprocessing with the Sony A7S2's
    colour matrix, lamps (clipped source pixels) at ``LAMP_RADIANCE`` times the white level,
    clipped in the long exposure as street lamps are, ELD noise, and the well-exposed reference
    developed by LibRaw as SID's ground truth is. One camera and one noise draw serve every
    ratio, so only the light changes between them.
    """
    rng = np.random.default_rng(seed)
    scene = images.procedural_scene(size, seed=seed)
    camera = SID_LIKE.camera_for(synth.random_unprocessing_params(rng))
    radiance = scene_radiance(scene, camera, SYNTHETIC_PATTERN)
    reference = SID_LIKE.render_target(scene, radiance, camera, SYNTHETIC_PATTERN)
    noise = synth.EldNoiseModel()
    noise_params = noise.sample_params(rng)
    found = {}
    for ratio in ratios:
        name = synthetic_name(ratio)
        found[name] = DemoImage(
            name=name, mosaic=short_exposure(radiance, ratio, noise, noise_params, rng),
            pattern=SYNTHETIC_PATTERN, white_balance=tuple(float(g) for g in camera.wb_gains),
            camera_to_srgb=camera.camera_to_rgb, reference=reference, exposure_ratio=float(ratio))
    return found


def synthetic_name(ratio: float) -> str:
    """The picker's name of the synthetic dark frame at exposure ``ratio``."""
    return f"synthetic scene, ÷{ratio:g} (ELD noise)"


def real_demo_image(path: str | os.PathLike, size: int = 256,
                    darkening: float | None = REAL_DARKENING, seed: int = 0,
                    name: str | None = None) -> DemoImage:
    """A real raw file, area-downsampled per Bayer plane to at most ``size`` pixels a side.

    With ``darkening``, the frame receives that much less light and ELD noise (system gain
    K = 1 DN/e-) is added in DN, so the true exposure ratio is known; with ``darkening=None`` the
    file is used as recorded and Eq. 3 is unavailable (no long-exposure reference, and the
    sample DNGs carry no exposure time).
    """
    recorded = raw.read_raw(path)
    mosaic = downsample_mosaic(recorded.mosaic, recorded.pattern, size)
    reference = isp.render_srgb(mosaic, recorded.pattern, recorded.white_balance,
                                recorded.camera_to_srgb)
    label = name or recorded.path.name
    if darkening is None:
        exposure = ("no exposure time in its metadata" if recorded.exposure_time_s is None
                    else f"only its own exposure time ({recorded.exposure_time_s:g} s)")
        return DemoImage(
            name=f"{label}, as recorded", mosaic=mosaic, pattern=recorded.pattern,
            white_balance=recorded.white_balance, camera_to_srgb=recorded.camera_to_srgb,
            reference=reference, exposure_ratio=None,
            no_ratio_reason=f"{recorded.path.name} has {exposure} and no long-exposure "
            "reference shot, so there is no ground-truth exposure ratio.")
    noise = synth.EldNoiseModel(system_gain=1.0)
    darkened = noise.apply(mosaic / darkening, noise.sample_params(seed), seed)
    return DemoImage(
        name=f"{label}, ÷{darkening:g} (ELD noise)", mosaic=darkened, pattern=recorded.pattern,
        white_balance=recorded.white_balance, camera_to_srgb=recorded.camera_to_srgb,
        reference=reference, exposure_ratio=float(darkening))


def demo_images(size: int = 256, seed: int = 0) -> dict[str, DemoImage]:
    """The demo's picker: synthetic frames at ratios 100/250/300, the real raws darkened ÷100
    and the colour chart as recorded (the real ones only where ``../shared/data`` has them)."""
    found = synthetic_demo_images(size, seed)
    for label, relative_path in REAL_RAW_FILES.items():
        path = shared_sample(relative_path)
        if path is None:
            continue
        darkened = real_demo_image(path, size, seed=seed, name=label)
        found[darkened.name] = darkened
        if label in REAL_AS_RECORDED:
            as_recorded = real_demo_image(path, size, darkening=None, name=label)
            found[as_recorded.name] = as_recorded
    return found


def downsample_mosaic(mosaic: np.ndarray, pattern: str, size: int) -> np.ndarray:
    """Average each Bayer plane over k×k blocks so the mosaic's longer side is at most ``size``.

    The CFA pattern is kept (planes are packed, averaged and unpacked); edge blocks that do not
    fill a k×k block are dropped.
    """
    if size < 2:
        raise InvalidInputError(f"size must be at least 2 pixels, got {size}")
    planes = raw.pack(np.asarray(mosaic, dtype=np.float32), pattern)
    factor = max(1, math.ceil(max(mosaic.shape) / size))
    height, width = planes.shape[1] // factor, planes.shape[2] // factor
    blocks = planes[:, :height * factor, :width * factor].reshape(4, height, factor, width, factor)
    return raw.unpack(blocks.mean(axis=(2, 4)), pattern).astype(np.float32)


def demo_model(scale: str = "ci", seed: int = 0, device: str = "cpu", name: str = "lamba",
               data_root: str = "", weights: str = "") -> tuple[nn.Module, str, str]:
    """The restoration model the demo runs, a label naming it, and the weights file it loaded
    ("" for a model trained here).

    The authors' released Lamba when its weights are found (``weights``, else
    ``../shared/official/lamba/weights.pth``: no training, the page is ready at once);
    otherwise the model trained at ``scale`` (``llve.papers.lamba.experiment.load_or_train``,
    which trains first when no checkpoint exists: minutes on a CPU).
    """
    if name == "lamba":
        released = released_model(weights, device)
        if released is not None:
            path = released_weights(weights)
            return released, f"the authors' released Lamba ({path.name})", str(path)
    model = load_or_train(name, scale=scale, seed=seed, device=device, data_root=data_root)
    return model, f"{name} trained at scale {scale!r} (seed {seed})", ""


# --------------------------------------------------------------------------- the pure state


@dataclass(frozen=True, eq=False)
class AmplifierState:
    """What the demo shows for one (image, amplifier, m).

    ``factor`` is None when the amplifier cannot run on the image (``unavailable_reason`` says
    why); then ``amplified``, ``restored`` and ``saturated_fraction`` (the share of pixels at or
    above 1.0 after amplification) are None too. ``printed_factor`` is the printed
    paper's Eq. 4/5 (10× the released scale before the clamp), None for Eq. 3. ``amplified`` is
    the amplified mosaic through the reference ISP and ``restored`` the model's output, both
    H×W×3 sRGB in [0, 1].
    """

    amplifier: str
    m: float
    factor: float | None
    printed_factor: float | None
    amplified: np.ndarray | None
    restored: np.ndarray | None
    saturated_fraction: float | None
    unavailable_reason: str = ""


def amplification_factor(image: DemoImage, amplifier: str = "weighted", m: float = 0.5,
                         convention: str = "released") -> float | None:
    """The factor ``amplifier`` gives ``image`` (None: Eq. 3 without a known exposure ratio)."""
    if amplifier == "weighted":
        return float(estimate_amplification(image.mosaic, m, convention=convention))
    if amplifier == "mean":
        return float(mean_amplification(image.mosaic, m, convention=convention))
    if amplifier == "ratio":
        if image.exposure_ratio is None:
            return None
        # The ratio is known directly: t_gt = ratio, t_in = 1 in the same units.
        return exposure_ratio_amplification(image.exposure_ratio, 1.0)
    raise UnknownNameError(
        f"unknown amplifier {amplifier!r}: expected one of {list(AMPLIFIER_LABELS)}")


def demo_state(image: DemoImage, model: nn.Module, amplifier: str = "weighted",
               m: float = 0.5) -> AmplifierState:
    """Estimate the factor, amplify the mosaic and restore it: all one widget update shows."""
    factor = amplification_factor(image, amplifier, m)
    printed = None if amplifier == "ratio" else amplification_factor(image, amplifier, m, "printed")
    if factor is None:
        reason = image.no_ratio_reason or "no exposure ratio is known for this frame."
        return AmplifierState(amplifier, m, None, None, None, None, None, reason)
    amplified_mosaic = image.mosaic * factor
    amplified = isp.render_srgb(amplified_mosaic, image.pattern, image.white_balance,
                                image.camera_to_srgb)
    restored, _ = amplify_and_restore(model, image.mosaic[None, None], amplifier=factor,
                                      pattern=image.pattern)
    return AmplifierState(amplifier, m, factor, printed, amplified, as_display_image(restored),
                          float(np.mean(amplified_mosaic >= 1.0)))


def bin_histogram(mosaic: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Pixel counts in the 127 bins of Eq. 6 (``e_k ≤ x < e_{k+1}``), and the pixels below 0
    and at or above 1 (saturated), which fall outside every bin and get weight 0."""
    values = torch.as_tensor(np.asarray(mosaic), dtype=torch.float64).reshape(-1)
    counts = torch.bincount(torch.bucketize(values, BIN_EDGES, right=True),
                            minlength=len(BIN_EDGES) + 1)
    return counts[1:len(BIN_EDGES)].numpy(), int(counts[0]), int(counts[len(BIN_EDGES)])


def factor_summary(state: AmplifierState, image: DemoImage) -> str:
    """One line of HTML: the factor (in a ``llve-factor-value`` span with ``data-factor`` and
    ``data-m``, which the browser test reads), the released/printed scales and the true ratio."""
    m_text = f"{state.m:.2f}".rstrip("0").rstrip(".")
    truth = ("" if image.exposure_ratio is None
             else f"; true exposure ratio {image.exposure_ratio:g}")
    if state.factor is None:
        return (f'<span class="llve-factor-value" data-factor="" data-m="{state.m:g}">'
                f"<b>{html.escape(AMPLIFIER_LABELS[state.amplifier])} unavailable</b></span>: "
                f"{html.escape(state.unavailable_reason)} Pick Eq. 4 or Eq. 5, which need only "
                "the pixels.")
    value = (f'<span class="llve-factor-value" data-factor="{state.factor!r}" '
             f'data-m="{state.m:g}"><b>A = {state.factor:.1f}</b></span>')
    truth += f"; {state.saturated_fraction:.2%} of pixels saturate after ×A"
    if state.amplifier == "ratio":
        return f"{value} (Eq. 3, capped at {DEFAULT_MAX:g}; m does not enter it){truth}"
    printed = f"{state.printed_factor:.1f}"
    if state.printed_factor >= DEFAULT_MAX:
        printed += " (clamped)"
    return (f"{value} with m = {m_text} (released code: amp = 10·m = {10 * state.m:g}, "
            f"A = (m/10)·Σw/Σwx); printed equation: A = m·Σw/Σwx = {printed}{truth}")


# --------------------------------------------------------------------------- pictures


def histogram_figure(image: DemoImage, size: tuple[float, float] = (5.2, 2.6)) -> Figure:
    """The dark frame's pixel counts in Eq. 6's 127 bins with Eq. 7's weights on a second axis.

    Drawn without pyplot, so it never shows up as a stray notebook output.
    """
    counts, below_zero, saturated = bin_histogram(image.mosaic)
    figure = Figure(figsize=size, dpi=100)
    figure.subplots_adjust(left=0.13, right=0.86, bottom=0.19, top=0.88)
    axis = figure.subplots()
    floor = 0.5  # empty bins sit on the bottom of the log axis
    axis.stairs(np.maximum(counts, floor), np.arange(len(counts) + 1) - 0.5, baseline=floor,
                fill=True, color="0.55", label="pixels per bin")
    axis.set(yscale="log", ylim=(floor, None), xlim=(-0.5, len(counts) - 0.5), ylabel="pixels",
             xlabel="Eq. 6 bin k  (x from (2^(8k/127)−1)/255)")
    weights = axis.twinx()
    weights.plot(np.arange(len(counts)), BIN_WEIGHTS.numpy(), color="tab:orange",
                 label="Eq. 7 weight")
    weights.set(yscale="log", ylabel="weight")
    axis.set_title(f"{below_zero} px below 0, {saturated} px saturated (weight 0)", fontsize=9)
    handles = axis.get_legend_handles_labels()[0] + weights.get_legend_handles_labels()[0]
    weights.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.9)
    return figure


def amplification_sweep(image: DemoImage, ms: Sequence[float] = M_VALUES) -> pd.DataFrame:
    """Factors over m: Eq. 5 released and printed, Eq. 4, and Eq. 3 where the ratio is known."""
    rows = [{"m": m,
             "weighted_released": amplification_factor(image, "weighted", m),
             "weighted_printed": amplification_factor(image, "weighted", m, "printed"),
             "mean_released": amplification_factor(image, "mean", m),
             "exposure_ratio": amplification_factor(image, "ratio", m)} for m in ms]
    return pd.DataFrame(rows)


def amplifier_sweep_figure(image: DemoImage, model: nn.Module, ms: Sequence[float] = M_VALUES,
                           model_label: str = "") -> plt.Figure:
    """The static m-sweep (Fig. 5's control): for each m the amplified input and the restoration,
    titled with the released-code factor and the printed Eq. 5's value, plus the factors over m."""
    sweep = amplification_sweep(image, ms)

    def column(m: float) -> list[tuple[np.ndarray, str]]:
        state = demo_state(image, model, "weighted", m)
        clamp = " (clamp)" if state.printed_factor >= DEFAULT_MAX else ""
        return [(state.amplified, f"m = {m:g}: A = {state.factor:.1f}\n"
                                  f"printed Eq. 5: {state.printed_factor:.0f}{clamp}"),
                (state.restored, "restored")]

    figure, grid = static_sweep(ms, column, extra_rows=1)
    factors = figure.add_subplot(grid[2, :])
    factors.plot(sweep["m"], sweep["weighted_released"], "o-", label="Eq. 5 as released (m/10)")
    factors.plot(sweep["m"], sweep["weighted_printed"], "s--",
                 label="Eq. 5 as printed (m), clamped")
    factors.plot(sweep["m"], sweep["mean_released"], "^-", label="Eq. 4 mean (m/10)")
    if image.exposure_ratio is not None:
        factors.axhline(image.exposure_ratio, color="k", linestyle=":",
                        label="true exposure ratio (Eq. 3)")
    factors.set(xlabel="m (paper units)", ylabel="amplification A", xlim=(0, max(ms) + 0.05),
                ylim=(0, DEFAULT_MAX * 1.08))
    factors.legend(fontsize=8, loc="upper left")
    figure.suptitle(f"{image.name}, Eq. 5 m-sweep. Top: input × A through the reference ISP; "
                    f"middle: restored by {model_label or 'the model'}", fontsize=10)
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------- the widget


# The reference and histogram of an image do not change with m or the amplifier: render once.
_reference_png = cached_view(lambda image: image.reference, maxsize=16)
_histogram_png = cached_view(histogram_figure, maxsize=16)


@dataclass(eq=False)
class AmplifierDemo:
    """The live demo: its controls, its outputs and ``widget``, the box to display.

    Every change of a control calls :meth:`update`, which shows :func:`demo_state`'s result.
    """

    dark_frames: Mapping[str, DemoImage]
    model: nn.Module
    image_picker: widgets.Dropdown
    amplifier_picker: widgets.Dropdown
    m_slider: widgets.FloatSlider
    factor_text: widgets.HTML
    amplified_view: widgets.Image
    restored_view: widgets.Image
    reference_view: widgets.Image
    histogram_view: widgets.Image
    widget: widgets.VBox
    state: AmplifierState | None = None

    def update(self, _change: dict | None = None) -> AmplifierState:
        """Recompute for the current controls and refresh every output."""
        image = self.dark_frames[self.image_picker.value]
        self.m_slider.disabled = self.amplifier_picker.value == "ratio"
        state = demo_state(image, self.model, self.amplifier_picker.value, self.m_slider.value)
        self.factor_text.value = factor_summary(state, image)
        blank = np.full((8, 8, 3), 0.85)
        for view, picture in ((self.amplified_view, state.amplified),
                              (self.restored_view, state.restored)):
            view.value = png_bytes(blank if picture is None else picture)
        self.reference_view.value = _reference_png(image)
        self.histogram_view.value = _histogram_png(image)
        self.state = state
        return state


def amplifier_demo(dark_frames: Mapping[str, DemoImage], model: nn.Module, model_label: str = "",
                   amplifier: str = "weighted", m: float = 0.5) -> AmplifierDemo:
    """Build the live amplifier demo over ``dark_frames`` with ``model`` doing the restoration.

    Controls: an image picker, the amplifier (Eq. 3 / 4 / 5) and a slider for m in paper units
    (0.1–0.9, released code ``amp = 10·m``). Outputs: the factor line (CSS class
    ``llve-amplification-factor``), the amplified input, the restoration, the reference and the
    127-bin histogram with Eq. 7's weights.
    """
    if not dark_frames:
        raise InvalidInputError("amplifier_demo needs at least one DemoImage")
    if amplifier not in AMPLIFIER_LABELS:
        raise UnknownNameError(
            f"unknown amplifier {amplifier!r}: expected one of {list(AMPLIFIER_LABELS)}")
    image_picker = widgets.Dropdown(options=list(dark_frames), description="dark raw",
                                    layout=widgets.Layout(width="420px"))
    amplifier_picker = widgets.Dropdown(
        options=[(label, name) for name, label in AMPLIFIER_LABELS.items()], value=amplifier,
        description="amplifier", layout=widgets.Layout(width="380px"))
    m_slider = widgets.FloatSlider(value=m, min=M_VALUES[0], max=M_VALUES[-1], step=0.1,
                                   readout_format=".1f", continuous_update=False,
                                   description="m (paper)", layout=widgets.Layout(width="420px"))
    image_picker.add_class("llve-image-picker")
    amplifier_picker.add_class("llve-amplifier-picker")
    m_slider.add_class("llve-m-slider")
    factor_text = widgets.HTML()
    factor_text.add_class("llve-amplification-factor")

    amplified_view, amplified_box = image_panel("input × A (reference ISP)", "llve-amplified",
                                                PANEL_WIDTH)
    restored_view, restored_box = image_panel("restored by the model", "llve-restored",
                                              PANEL_WIDTH)
    reference_view, reference_box = image_panel("reference (well exposed)", "llve-reference",
                                                PANEL_WIDTH)
    histogram_view = widgets.Image(format="png", layout=widgets.Layout(width="420px"))
    histogram_view.add_class("llve-histogram")
    widget = widgets.VBox([
        widgets.HTML("<h3>Lamba &amp; Mitra's amplifier: how bright should a dark raw be?</h3>"
                     f"Restoration model: {html.escape(model_label or type(model).__name__)}"),
        widgets.HBox([image_picker, amplifier_picker]),
        m_slider, factor_text,
        widgets.HBox([amplified_box, restored_box, reference_box]),
        histogram_view,
    ])
    widget.add_class("llve-amplifier-demo")
    demo = AmplifierDemo(dict(dark_frames), model, image_picker, amplifier_picker, m_slider,
                         factor_text, amplified_view, restored_view, reference_view,
                         histogram_view, widget)
    for control in (image_picker, amplifier_picker, m_slider):
        control.observe(demo.update, names="value")
    demo.update()
    return demo
