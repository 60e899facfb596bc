# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Low-light data: from a clean photograph to a dark raw frame
#
# Every paper in this companion learns to undo one thing: a photograph taken with far too little
# light. Real paired datasets (SID, DRV, ELD) cannot be downloaded here, so llve *makes* such
# pairs, and this notebook shows how, step by step, and checks the result against real sensor
# data:
#
# 1. a clean sRGB image,
# 2. **unprocessing** it back to the linear raw mosaic a camera would have recorded
#    (Brooks et al., 2019),
# 3. the **short exposure**: the same scene with 100-300× less light and physically modelled
#    sensor noise (the ELD model of Wei et al., 2020, calibrated on a Sony A7S2),
# 4. the **amplifier problem**: the dark frame must be multiplied by an unknown factor,
# 5. the synthetic read noise beside a **real lens-capped dark frame**,
# 6. a real camera raw file darkened in the raw domain, and
# 7. video: static clips, clips with camera motion (and exact optical flow), and a real clip.

# %% tags=["parameters"]
scale = "small"
device = "auto"
seed = 0
data_root = ""
out_dir = ""
interactive = False

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from llve.data import calibration, images, isp, raw, shared_sample, synth, video
from llve.plots import image_grid
from llve.report import Reporter
from llve.scales import resolve_scale

settings = resolve_scale(scale)
report = Reporter("foundations", "00_low_light_data", scale=scale, seed=seed, device="cpu",
                  out_dir=out_dir, data_source="synthetic (scikit-image + procedural scenes); "
                  "real: ../shared/data (Canon 650D dark frame, 550D colour chart, Intel clip)")
figures_written = 0

# %% [markdown]
# ## 1. Clean sources
#
# The clean images are scikit-image's offline photographs (random crops) mixed with procedural
# scenes: gradients, coloured shapes, fine texture and a few small bright lights, because night
# scenes have lamps that saturate the sensor. All of it is deterministic in `seed`.

# %%
clean_sources = images.clean_images(4, size=settings.image_size, seed=seed)
figure = image_grid(clean_sources, [f"clean source {index}" for index in range(4)])
report.figure("clean_sources", figure, caption="Clean sRGB sources (offline images and "
              "procedural scenes), deterministic in the seed.")
figures_written += 1

# %% [markdown]
# ## 2. Unprocessing: sRGB back to a raw mosaic
#
# A camera's image processor applies white-balance gains, a colour-correction matrix (CCM), a
# gamma curve and a tone curve, and fills in the two missing colours of each pixel
# (demosaicking). Brooks et al. invert each step with randomly drawn camera parameters: inverse
# tone curve `0.5 - sin(asin(1 - 2x) / 3)`, inverse gamma `x^2.2`, inverse CCM, inverse gains
# (protecting highlights), then keep one colour per pixel in a Bayer pattern.

# %%
scene = images.procedural_scene(settings.image_size, seed=seed)
pair = synth.dark_pair(scene, ratio=100, noise="eld", pattern="RGGB", seed=seed)
metadata = pair.metadata
clean_render = isp.render_srgb(pair.clean, "RGGB", metadata.wb_gains, metadata.ccm)
figure = image_grid([pair.srgb, pair.linear_rgb, pair.clean, clean_render],
                    ["sRGB target", "linear RGB (no gamma, no tone curve)",
                     "clean raw mosaic (long exposure)", "mosaic through the reference ISP"])
report.figure("unprocessing", figure, caption="Brooks et al. unprocessing of one scene: sRGB, "
              "linear RGB, the RGGB mosaic, and the mosaic rendered back by llve's reference ISP "
              "(bilinear demosaic, white balance, CCM, sRGB gamma; no tone curve).")
figures_written += 1
print(f"white-balance gains (R, G, B): {np.round(metadata.wb_gains, 3)}")
print(f"saturated pixels in the long exposure: {np.mean(pair.clean >= 1.0):.2%}")

# %% [markdown]
# ## 3. The short exposure at ratios 100, 250 and 300
#
# SID's camera kept the aperture and ISO and shortened the exposure 100-300×. The light
# reaching each pixel drops by the ratio; what the sensor adds does not: **shot noise** (photon
# counting, Poisson, variance ∝ signal), **read noise** (the ELD paper found it heavy-tailed,
# Tukey-lambda distributed), **row noise** (one random offset per row) and **quantisation** to
# integer digital numbers (DN). Multiplying the dark frame back by the ratio amplifies all of it.
# One camera and one noise-parameter draw serve all three ratios, so only the light changes.

# %%
ratios = (100, 250, 300)
pairs = {ratio: synth.dark_pair(scene, ratio=ratio, noise="eld", seed=seed,
                                unprocessing=metadata.unprocessing, noise_params=metadata.noise)
         for ratio in ratios}
rows = []
for ratio, dark in pairs.items():
    amplified = dark.noisy * ratio
    error = amplified - dark.clean
    snr_db = 10 * np.log10(np.mean(dark.clean ** 2) / np.mean(error ** 2))
    report.record(**{f"amplified_mean_ratio_{ratio}": float(amplified.mean()),
                     f"snr_db_ratio_{ratio}": float(snr_db)})
    rows.append({"ratio": ratio, "short-exposure mean (normalised)": float(dark.noisy.mean()),
                 "pixels below black": float(np.mean(dark.noisy < 0)),
                 "amplified mean": float(amplified.mean()), "SNR after ×ratio (dB)": float(snr_db)})
report.record(clean_raw_mean=float(pair.clean.mean()), system_gain=metadata.noise.system_gain)

ratio_table = pd.DataFrame(rows)
report.table("dark_ratios", ratio_table, caption="One scene at three exposure ratios (ELD noise, "
             f"system gain K = {metadata.noise.system_gain:.3f} DN/e-). The amplified mean "
             f"recovers the clean mean ({pair.clean.mean():.4f}); the SNR falls as light falls.",
             protocol="normalised raw (DN - black)/(white - black), Sony A7S2 levels 512/16383")
ratio_table

# %%
renders = [isp.render_srgb(dark.noisy * ratio, "RGGB", metadata.wb_gains, metadata.ccm)
           for ratio, dark in pairs.items()]
figure = image_grid([isp.render_srgb(pairs[100].noisy, "RGGB", metadata.wb_gains, metadata.ccm),
                     *renders, pair.srgb],
                    ["short exposure as recorded", *[f"×{ratio} (ratio {ratio})" for ratio in ratios],
                     "target"])
report.figure("dark_ratios", figure, caption="The short exposure as recorded (nearly black), "
              "multiplied by the true ratio at 100, 250 and 300, and the target.")
figures_written += 1

# %% [markdown]
# ## 4. The amplifier problem
#
# At test time nobody tells the network the exposure ratio. Almost all pixels of the dark frame
# sit in the lowest percent of the sensor's range; multiply by too little and the image stays
# dark, by too much and highlights clip and noise explodes. Lamba & Mitra estimate the factor
# from the pixels alone (see `notebooks/lamba/`); here is why it matters.

# %%
dark = pairs[300].noisy
figure, axes = plt.subplots(1, 4, figsize=(13, 3.2))
axes[0].hist(np.clip(dark, 0, None).ravel(), bins=200, range=(0, 0.02), color="gray")
axes[0].set(title="short exposure histogram", xlabel="normalised raw value", yscale="log")
for axis, factor in zip(axes[1:], (30, 300, 3000)):
    axis.imshow(isp.render_srgb(dark * factor, "RGGB", metadata.wb_gains, metadata.ccm))
    axis.set_title(f"×{factor}" + (" (the true ratio)" if factor == 300 else ""))
    axis.axis("off")
figure.tight_layout()
report.figure("amplifier_problem", figure, caption="A ratio-300 short exposure: its histogram "
              "and the image multiplied by 30, 300 (true) and 3000.")
figures_written += 1

# %% [markdown]
# ## 5. Synthetic read noise beside a real dark frame
#
# A lens-capped frame contains only the signal-independent noise. We sweep the ELD model's
# system gain K (its "ISO"), at the calibrated noise level of each gain, and find where its
# read-noise spread equals that of a real Canon 650D dark frame. The camera differs from the
# Sony A7S2 the model was calibrated on, so only the magnitude can match; the per-plane table
# shows what the model does not describe: the 650D's red/blue planes are twice as noisy as its
# greens (one spread for all planes in ELD), and the tail shapes differ (the Tukey-lambda shape:
# about 0.14 is Gaussian, negative values are heavier-tailed).

# %%
# The Sony A7S2 calibration covers K in [0.094, 6.01]; the sweep goes beyond (the model's
# lines extrapolated) because a real camera may be noisier than the A7S2 at its highest ISO.
gains = np.geomspace(0.1, 30.0, 6 if scale == "ci" else 14)
calibrated_low, calibrated_high = synth.SONY_A7S2.gain_range
sweep = calibration.read_noise_versus_gain(gains, shape=(128, 128) if scale == "ci" else (512, 512),
                                           seed=seed)
real_dark_path = shared_sample("real_raw/canon650d_rawvideo_darkframe_1280x720.dng")
if real_dark_path is None:
    print("../shared/data is absent: the real dark frame comparison is skipped")
    real_table = None
else:
    real_dark = raw.read_raw(real_dark_path, clip=False)
    real_table = calibration.dark_frame_table(real_dark)
    real_std = float(np.sqrt((real_table["std_dn"] ** 2).mean()))
    matched_gain = calibration.matching_system_gain(sweep, real_std)
    synthetic_dark = synth.synthetic_dark_frame(real_dark.shape, real_dark.pattern,
                                                system_gain=matched_gain, seed=seed, typical=True)
    comparison = calibration.compare_dark_frames(real_dark, synthetic_dark, seed=seed)
    within = calibrated_low <= matched_gain <= calibrated_high
    report.table("read_noise", comparison, caption="Real Canon 650D dark frame (720×1280) vs an "
                 f"ELD (Sony A7S2) dark frame at the matched system gain K = {matched_gain:.3f} "
                 f"DN/e-, where the pooled read-noise std equals the real {real_std:.2f} DN "
                 + ("(inside the A7S2 calibration range)." if within else
                    f"(OUTSIDE the A7S2 calibration range {calibrated_low}-{calibrated_high}: "
                    "the model's lines are extrapolated; the 650D is noisier than the A7S2 "
                    "at its highest calibrated gain)."),
                 protocol="DN after per-plane black subtraction, unclipped; row std = std of row means")
    report.record(real_read_noise_std_dn=real_table["std_dn"].to_dict(),
                  matched_system_gain=matched_gain, matched_gain_within_calibration=within)
    display(comparison)
synthetic_table = calibration.dark_frame_table(
    synth.synthetic_dark_frame((256, 256), seed=seed, system_gain=1.0, typical=True))
report.record(synthetic_read_noise_std_dn=synthetic_table["std_dn"].to_dict())

# %%
figure, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].loglog(sweep["system_gain"], sweep["read_std_dn"], "o-", label="ELD read noise")
axes[0].loglog(sweep["system_gain"], sweep["row_std_dn"], "s-", label="ELD row noise")
if real_table is not None:
    axes[0].axhline(real_std, color="k", linestyle="--", label="real 650D dark frame")
    real_values = (real_dark.raw_dn[0::2, 1::2].astype(float) - real_dark.black_level["G1"]).ravel()
    synthetic_values = (synthetic_dark.dn[0::2, 1::2].astype(float)
                        - synthetic_dark.black_level).ravel()
    bins = np.arange(-60, 61)
    axes[1].hist(real_values, bins=bins, density=True, histtype="step", label="real 650D (G1)")
    axes[1].hist(synthetic_values, bins=bins, density=True, histtype="step", label="ELD, matched K (G1)")
    axes[1].set(yscale="log", xlabel="DN - black", title="dark-frame value distribution")
    axes[1].legend()
axes[0].axvspan(calibrated_low, calibrated_high, color="0.9", label="A7S2 calibrated range")
axes[0].set(xlabel="system gain K (DN per electron)", ylabel="std (DN)", title="noise vs gain")
axes[0].legend()
figure.tight_layout()
report.figure("read_noise", figure, caption="ELD read/row noise against system gain with the real "
              "650D dark frame's level, and the dark-frame value histograms at the matched gain.")
figures_written += 1

# %% [markdown]
# ## 6. A real camera raw, darkened in the raw domain
#
# A real Canon 550D raw of a colour chart is read through rawpy into llve's normalised form
# (black subtracted per plane, divided by the white level, masked border removed), viewed through
# the reference ISP, then divided by 100 with ELD noise added in DN: a real-sensor scene with a
# known darkening factor, the way the paper notebooks test on real files.

# %%
chart_path = shared_sample("real_raw/canon550d_magiclantern_colorchart.dng")
if chart_path is not None:
    chart = raw.read_raw(chart_path)
    eld = synth.EldNoiseModel(system_gain=1.0)
    darkened = eld.apply(chart.mosaic / 100, eld.sample_params(seed), seed)
    figure = image_grid([isp.render_srgb(chart), isp.render_srgb(chart, gain=1 / 100),
                         isp.render_srgb(darkened * 100, chart.pattern, chart.white_balance,
                                         chart.camera_to_srgb)],
                        ["real raw (550D) via reference ISP", "÷100 as recorded", "÷100 + ELD noise, ×100"])
    report.figure("real_raw_darkened", figure, caption="A real Canon 550D raw (colour chart), and "
                  "the same raw darkened 100× with ELD noise (K = 1) and amplified back.")
    figures_written += 1
    print(f"{chart.camera}: pattern {chart.pattern}, white balance {np.round(chart.white_balance, 2)} "
          f"({chart.white_balance_source}), visible {chart.shape}")

# %% [markdown]
# ## 7. Video
#
# The cfa paper trains on **static** videos (one frame, fresh noise in each copy) and tests on
# **dynamic** ones. llve makes dynamic clips by moving a virtual camera smoothly over a larger
# image; because the motion is known, the exact optical flow comes with the frames. A real clip
# (a parking lot, a fixed camera, cars driving) darkened synthetically gives real motion.

# %%
frames = settings.video_frames
large = images.procedural_scene(2 * settings.image_size, seed=seed + 1)
moving = video.dynamic_clip(large, frames=frames, crop=settings.image_size // 2, seed=seed)
darkened_clip = video.darken_clip(moving.frames, domain="srgb", seed=seed)
flow_magnitude = np.linalg.norm(moving.flow_forward[0], axis=-1)
panels = [moving.frames[0], moving.frames[-1], darkened_clip.dark[0],
          flow_magnitude / max(flow_magnitude.max(), 1e-6)]
titles = ["dynamic clip, first frame", "last frame", "darkened (sRGB, Setting 2)",
          f"true flow magnitude (max {flow_magnitude.max():.1f} px)"]
real_clip_path = shared_sample("real_video/intel_sample-videos_car-detection.mp4")
if real_clip_path is not None:
    side = settings.image_size // 2  # the clip is 16:9; a raw mosaic needs even sides
    real_frames = video.load_video(real_clip_path, max_frames=frames, size=(side, side * 16 // 18 * 2))
    real_clip_dark = video.darken_clip(real_frames, domain="raw", seed=seed, ratio=100)
    panels += [real_frames[0], isp.render_srgb(real_clip_dark.dark[0] * 100, "RGGB",
                                               real_clip_dark.metadata.wb_gains,
                                               real_clip_dark.metadata.ccm)]
    titles += ["real clip (Intel car-detection)", "real clip, raw-darkened ÷100, ×100"]
figure = image_grid(panels, titles, columns=3)
report.figure("video", figure, caption="A synthetic dynamic clip with its exact flow, its sRGB "
              "darkening, and a real clip darkened in the raw domain.")
figures_written += 1
report.record(figures_written=figures_written, video_frames=int(moving.frames.shape[0]),
              max_flow_px=float(flow_magnitude.max()))

# %% [markdown]
# ## Summary
#
# - `llve.data.read_raw` turns any Bayer raw into one normalised mosaic with its pattern, black
#   and white levels, white balance and colour matrix; packing follows the file's own pattern.
# - Synthetic low light runs the camera pipeline backwards (Brooks unprocessing) and adds
#   physics-based sensor noise (ELD, Sony A7S2) at SID's exposure ratios; the amplified short
#   exposure recovers the clean raw's mean, and the SNR falls as the ratio grows.
# - The synthetic read noise is set beside a real dark frame's, and dynamic clips come with
#   their exact optical flow: the data every paper's notebooks train and test on.
