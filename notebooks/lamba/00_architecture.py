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
# # Lamba & Mitra (CVPR 2021): the architecture
#
# *Restoring Extremely Dark Images in Real Time* asks how little computation a network needs to
# turn a raw frame shot with 100-300× too little light into a clean sRGB photograph. Its answer:
# do almost all the work at **1/32 resolution**, where a layer costs 1/256 of what it costs at
# 1/2, keep one cheap layer at 1/2 resolution for fine detail, and let the three **scale spaces**
# read the input independently so they can run in parallel.
#
# This notebook walks through the network as released (`llve/papers/lamba/network.py`), counts its
# parameters and multiply-accumulates (MACs) exactly, follows a dark raw frame through the
# three scale spaces, and draws the amplifier's bins and weights.

# %% tags=["parameters"]
scale = "small"
device = "auto"
seed = 0
data_root = ""
out_dir = ""
interactive = False

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from llve.complexity import count_macs, count_parameters, layer_table
from llve.models import build
from llve.papers import lamba
from llve.papers.lamba import amplifier
from llve.report import Reporter
from llve.scales import resolve_scale

settings = resolve_scale(scale)
report = Reporter("lamba", "00_architecture", scale=scale, seed=seed, device="cpu", out_dir=out_dir)
SONY_HEIGHT, SONY_WIDTH = 2848, 4256  # the SID Sony sensor, the paper's "4K" image

# %% [markdown]
# ## The building blocks
#
# Everything reads the **unpacked** Bayer mosaic (1 channel, H×W), already multiplied by the
# amplification. Pixel-unshuffle by 2 separates the four colour planes (R, G, G, B) at 1/2
# resolution; unshuffling further moves the network to 1/8 and 1/32 resolution without losing a
# single value: space becomes channels.
#
# * **LSE** (lower scale encoder, 1/2): one 5×5 convolution, 4 → 12 channels.
# * **MSE** (medium scale encoder, 1/8): a residual block of two 3×3 convolutions, 64 channels.
# * **HSE** (higher scale encoder, 1/32): a grouped 3×3 convolution takes the 1024 unshuffled
#   channels to 128, a 3×3 to 64, then three **RDB\*** blocks (residual dense blocks whose final
#   1×1 also sees the *unrectified* outputs), and a global skip.
# * **Fuse 1** (1/8) interleaves MSE and HSE channels (channel shuffle) before a grouped
#   convolution, so every group sees both; **Fuse 2** (1/2) mixes in LSE and makes RGB.
#
# The whole network's forward pass, as the library defines it: pad to the RGGB phase and to a
# multiple of 32, unshuffle, the three scale spaces, the two fuse blocks, shuffle back, crop:

# %%
print(inspect.getsource(lamba.network.Lamba.forward))

# %% [markdown]
# The RDB\* is the paper's modification of the residual dense block; its forward pass:

# %%
print(inspect.getsource(lamba.network.ResidualDenseBlock.forward))

# %% [markdown]
# ## Shapes through the network, parameters and MACs
#
# One forward pass of the paper configuration on a 512×512 mosaic, counted on PyTorch's `meta`
# device (shapes only, no memory). MACs count convolutions only
# (`torch.utils.flop_counter`, FLOPs / 2).

# %%
model = build("lamba", "paper")
layers = pd.DataFrame(layer_table(model, (1, 1, 512, 512), depth=2))
layers

# %%
complexity_table = lamba.tables.complexity(SONY_HEIGHT, SONY_WIDTH)
report.table("complexity", complexity_table, caption="Parameters (millions) and MACs of the "
             "paper configurations at the SID Sony size, beside the paper's Table 1.",
             protocol="ours: convolution MACs from torch.utils.flop_counter on the meta device; "
             "paper: ptflops-style (adds bias and activation operations); parameters include "
             "the weight-norm g scalars")
report.record(lamba_parameters=count_parameters(model),
              lamba_macs=count_macs(model, (1, 1, SONY_HEIGHT, SONY_WIDTH)),
              lamba_macs_512=count_macs(model, (1, 1, 512, 512)),
              sid_parameters=count_parameters(build("sid_unet", "paper")),
              sid_macs=count_macs(build("sid_unet", "paper"), (1, 4, SONY_HEIGHT // 2, SONY_WIDTH // 2)),
              parameters_without_weight_norm=count_parameters(lamba.network.fold_weight_norm(model)))
complexity_table

# %% [markdown]
# ## Why 1/32? The paper's operation counts (Eq. 1 and 2)
#
# Eq. 1 gives the cost of n convolutions at scale 1/r: (H/r)(W/r)·k²·C_in·C_out·n. The authors
# balanced LSE, MSE and HSE to similar costs so that the three could run concurrently; Eq. 2 is
# the HSE's estimate with three RDB\* of η = 5 dense layers. Beside them, the MACs each block of
# the *released* network actually performs. The paper's estimates assume a 7×7 LSE and η = 5 in
# every RDB\*; the released network (5×5, η = 4 in RDB1) and the extra layers the equations
# leave out explain the differences. Fuse 2, a 5×5 convolution at 1/2 resolution, turns out to
# be the largest single block.

# %%
scale_spaces = lamba.tables.scale_space_table(SONY_HEIGHT, SONY_WIDTH)
report.table("scale_space_costs", scale_spaces, caption="Operation counts per block at "
             "2848×4256: the paper's design equations beside the released network's counted MACs.",
             protocol="convolution MACs, meta device")
report.record(block_macs=dict(zip(scale_spaces["block"],
                                  (scale_spaces["released network, GMACs"] * 1e9).round().astype(int))))
scale_spaces

# %% [markdown]
# ## A dark frame through the three scale spaces
#
# What each encoder *sees*: one amplified dark test mosaic (ratio 100; SID Sony's when
# `data_root` is given) unshuffled to 1/2 (4 planes), 1/8 (64 channels) and 1/32 (1024
# channels). One channel of each is drawn: the resolution drops, but nothing is thrown away.

# %%
item = next(entry for entry in lamba.experiment.test_set(scale, seed, data_root)
            if entry["ratio"] == 100)
figure = lamba.figures.scale_space_views(item["mosaic"] * item["ratio"])
report.figure("scale_spaces", figure, caption="An amplified dark mosaic and one channel of what "
              "LSE (1/2), MSE (1/8) and HSE (1/32) receive (gamma 1/2.2 for display).")

# %% [markdown]
# ## The amplifier's bins and weights (Eq. 5-7)
#
# Before the network, the dark frame is multiplied by an amplification factor. Lamba & Mitra
# estimate it from the pixels alone: a weighted mean where dark pixels count fully and bright
# ones (lamps, saturated highlights) count almost nothing. The 128 bin edges are log-spaced
# (finer where dark pixels live), and the weights fall from 1 to 10⁻⁵ across the 127 bins.

# %%
edges, weights = amplifier.BIN_EDGES.numpy(), amplifier.BIN_WEIGHTS.numpy()
centres = np.sqrt(np.maximum(edges[:-1], 1e-6) * edges[1:])  # geometric bin centres
figure, axes = plt.subplots(1, 2, figsize=(11, 3.4))
axes[0].plot(np.arange(len(edges)), edges, ".")
axes[0].set(yscale="log", xlabel="edge index k", ylabel="bin edge (normalised intensity)",
            title="Eq. 6: 128 log-spaced edges")
axes[1].loglog(centres, weights, ".")
axes[1].set(xlabel="bin centre (normalised intensity)", ylabel="weight",
            title="Eq. 7: weights 1 → 1e-5 (saturated pixels: 0)")
figure.tight_layout()
report.figure("amplifier_bins", figure, caption="The amplifier's bin edges and weights as "
              "released (FACTS.md): 128 edges (2^(8k/127) - 1)/255, weights 10^(5k/126)/1e5 reversed.")
report.record(bin_edges=len(edges), bin_weights=len(weights),
              factor_of_constant_image=float(amplifier.estimate_amplification(np.full((64, 64), 1e-3), m=0.5)))

# %% [markdown]
# ## Summary
#
# - The network reads the amplified Bayer mosaic at three scale spaces (1/2, 1/8, 1/32) that
#   depend only on the input, so they could run in parallel; most layers sit at 1/32.
# - Its paper configuration has 784,768 parameters (with weight norm) and 59.6 G convolution
#   MACs at 2848×4256, beside the paper's 0.78 M and 59.8 G; the SID U-Net it is compared with
#   has about ten times the parameters and 9.4× the MACs.
# - The paper's Eq. 1–2 explain the design; the released network differs in details (5×5 LSE,
#   η = 4 in RDB1) that the counts show.
# - The amplifier's 128 log-spaced bins give dark pixels full weight and saturated ones none.
