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
# # Lamba & Mitra: training
#
# The paper trains its network, and we train the SID U-Net it compares against, on pairs of a
# dark raw frame and a clean sRGB photograph. This notebook shows the recipe, trains both models
# at the chosen scale, and looks at what they learned.
#
# **The recipe as released** (`llve/papers/lamba/experiment.py` lists every choice and why):
#
# - **Input**: the unpacked Bayer mosaic, black level subtracted and divided by the white level,
#   multiplied by the **ground truth's exposure ratio** (100, 250 or 300 in SID) and *not*
#   clipped. Training never uses the paper's amplifier: it is a test-time tool.
# - **Target**: the long exposure rendered to sRGB.
# - **Loss**: `L1 + 0.2·(1 − MS-SSIM)` as in the released code (the text says 0.8·L1); the SID
#   U-Net keeps its own paper's L1 loss.
# - **Optimiser**: Adam, learning rate 1e-4, ×0.1 at half the schedule; the paper runs 1M
#   iterations of 8 crops of 512×512.
# - **Crops that keep the colour pattern.** A Bayer mosaic alternates R G / G B. Crop it at an
#   odd row, or flip it, and the first pixel is no longer red, yet the network still unpacks it
#   as if it were: the released code's flips do exactly that. Our crops start at even offsets,
#   and a mirrored crop takes its window one pixel further so that the mirror image starts on a
#   red pixel again, with the target mirrored by the same window.
#
# **Data here.** SID cannot be downloaded, so the pairs are synthetic: clean images unprocessed
# into raw mosaics with a random camera each (Brooks et al.), darkened 100-300× with ELD sensor
# noise (Sony A7S2 calibration), lamps in the scene clipped in the long exposure. With a
# `data_root` holding SID Sony, the same call trains on real crops instead.

# %% tags=["parameters"]
scale = "small"
device = "auto"
seed = 0
data_root = ""
out_dir = ""
interactive = False

# %%
import numpy as np

from llve.data import datasets
from llve.papers.lamba import experiment
from llve.plots import image_grid
from llve.report import Reporter
from llve.scales import resolve_device

device = str(resolve_device(device))
recipe = experiment.recipe(scale)
report = Reporter("lamba", "10_training", scale=scale, seed=seed, device=device, out_dir=out_dir,
                  data_source=experiment.data_source(data_root))
recipe

# %% [markdown]
# ## What one training batch looks like
#
# Each sample is a pure function of its index (seeded by the run's seed and the sample number),
# so a resumed run, or eight GPUs sharing the work, see exactly the same batches. Left: the
# amplified dark crop through a simple reference ISP; right: its target. The crops are
# 192×192 at the small scales because MS-SSIM's fifth scale needs sides of at least 161 pixels (and Lamba works on multiples of 32).

# %%
batch = experiment.first_training_batch(scale, seed, data_root)
pictures = [picture for mosaic, target in zip(batch["mosaic"][:3], batch["target"][:3])
            for picture in (np.clip(mosaic[0].numpy(), 0, 1), target)]
figure = image_grid(pictures, [f"{kind}, ×{ratio:g}" for ratio in batch["ratio"][:3].tolist()
                               for kind in ("amplified mosaic", "target")], columns=6, size=2.2)
report.figure("training_batch", figure, caption="Three synthetic training samples: the amplified "
              "mosaic (grey, one colour per pixel) and its aligned sRGB target.")

# %% [markdown]
# ## The colour pattern survives cropping and flipping
#
# A mosaic whose four Bayer positions hold four different constants makes the check visible:
# every crop, mirrored or transposed, must still read R G / G B in its top-left 2×2 block. (A
# transpose swaps the two greens, G1 on the red rows and G2 on the blue rows: same colour.)

# %%
probe = np.tile(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), (16, 16))  # R G1 / G2 B
rng = np.random.default_rng(seed)
crops = [datasets.random_raw_crop(32, 32, 8, rng) for _ in range(64)]
patterns = {"".join("RGGB"[int(value) - 1] for value in crop.apply(probe)[:2, :2].ravel())
            for crop in crops}
kinds = {(crop.flip_rows, crop.flip_columns, crop.transpose) for crop in crops}
print(f"{len(crops)} random crops, {len(kinds)} of the 8 flip/transpose combinations; "
      f"patterns seen: {sorted(patterns)}")
report.record(patterns_seen=sorted(patterns), augmentation_kinds=len(kinds))

# %% [markdown]
# ## Training both models
#
# One call each. Checkpoints (atomic, exact resume) and a loss log go under
# `build/<scale>/checkpoints/lamba/`; a finished run found there is reused, an interrupted one
# continues where it stopped. At this scale: the settings above (the `small` scale raises the
# learning rate to 2e-3 because its schedule is thousands of times shorter than the paper's).

# %%
# NBVAL_IGNORE_OUTPUT
# (progress lines differ when a finished run is reused)
results = {name: experiment.train_model(name, scale, seed, device, data_root=data_root)
           for name in experiment.TRAINABLE_MODELS}

# %%
figure = experiment.plot_training_curves(results)
report.figure("training_curves", figure, caption=f"Training loss (one batch per logged step) of "
              f"Lamba (L1 + 0.2·(1 − MS-SSIM)) and the SID U-Net (L1) at scale '{scale}'.")

# %%
# NBVAL_IGNORE_OUTPUT
# (wall times differ between runs)
summary = experiment.training_summary(results)
report.table("training", summary, caption=f"Training at scale '{scale}': steps, mean of the first "
             "and of the last three logged losses, training time (summed over resumed runs) "
             "and steps per second.", protocol=f"device {device}; batch {recipe.batch_size}, "
             f"{recipe.crop_size}×{recipe.crop_size} crops, Adam {recipe.learning_rate:g} "
             f"(×0.1 at step {recipe.iterations // 2})")
for row in summary.itertuples():
    report.record(**{f"{row.model}_steps": row.steps, f"{row.model}_first_loss": row.first_loss,
                     f"{row.model}_last_loss": row.last_loss,
                     f"{row.model}_checkpoints": len(results[row.model].checkpoints),
                     f"{row.model}_final_checkpoint": results[row.model].checkpoints[-1].name})
report.record(iterations=recipe.iterations)
summary

# %% [markdown]
# ## What they learned
#
# Restorations of held-out synthetic scenes at ratio 300 with the ground truth's exposure ratio
# (the amplifier comes in `30_reproduce`), next to the dark input through the reference ISP and
# the target. Odd-numbered scenes contain lamps.

# %% [markdown]
# Did training lower the loss? The loss of each model on the run's first batch, freshly
# initialised (same seed) and trained: at every scale, even `ci`'s four steps, it must drop.

# %%
learning = {name: experiment.learning_check(name, scale, seed, device, data_root)
            for name in experiment.TRAINABLE_MODELS}
report.record(learning=learning)
learning

# %%
models = {name: experiment.load_or_train(name, scale, seed, device, data_root=data_root)
          for name in experiment.TRAINABLE_MODELS}
test_set = experiment.test_set(scale, seed, data_root)
shown = [item for item in test_set if item["ratio"] == 300][:3] or list(test_set)[:3]
figure = experiment.restoration_grid(models, shown)
report.figure("restorations", figure, caption="Held-out test scenes at ratio 300: dark input "
              "(×ratio, reference ISP), Lamba, SID U-Net, target; PSNR on sRGB, data range 1.")

# %%
scores = {name: experiment.evaluate(model, test_set) for name, model in models.items()}
report.record(**{f"{name}_test_psnr": float(frame["psnr"].mean())
                 for name, frame in scores.items()})
{name: round(float(frame["psnr"].mean()), 2) for name, frame in scores.items()}

# %% [markdown]
# ## Summary
#
# - One training batch shows what the networks learn from: an amplified, unclipped dark mosaic
#   and its sRGB target, cropped and flipped without changing the Bayer phase.
# - Both models trained with the paper's recipe at this scale, with atomic checkpoints that a
#   later notebook (or a resumed run) reuses; the loss on their first batch dropped.
# - Their restorations of held-out scenes, with PSNR, are the starting point of `30_reproduce`.
