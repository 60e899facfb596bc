"""The paper's operation counts (Eq. 1–2) beside the measured cost of each block.

Sec. 3 of the paper argues that deep processing is cheap at 1/32 resolution with Eq. 1 (the
cost of same-size convolutions at scale 1/r) and Eq. 2 (the HSE's cost). These functions
compute both, and ``scale_space_costs`` counts the released network's blocks, so the
architecture notebook can set the paper's arithmetic beside the real network.
"""

from __future__ import annotations

import torch

from llve.complexity import macs_by_module
from llve.papers.lamba.network import Lamba, LambaConfig

def scale_space_costs(config: LambaConfig, height: int, width: int) -> dict[str, int]:
    """Convolution MACs of each block (LSE, MSE, HSE, Fuse 1, Fuse 2) for an H×W mosaic.

    Counted by ``llve.complexity.macs_by_module`` on the meta device (no memory). The notebook
    sets these beside the paper's Eq. 1–2 to show why deep processing is cheap at 1/32.
    """
    with torch.device("meta"):
        model = Lamba(config)
    macs = macs_by_module(model, (1, 1, height, width))
    return {"LSE": macs["lse"], "MSE": macs["mse"], "HSE": macs["hse"], "Fuse 1": macs["fuse1"],
            "Fuse 2": macs["fuse2"]}


def equation_1_operations(height: int, width: int, downsampling: int, kernel: int,
                          in_channels: int, out_channels: int, layers: int = 1) -> int:
    """Paper Eq. 1: (H/r)(W/r)·k²·C_in·C_out·n, the cost of n same-size convolutions at scale 1/r."""
    pixels = (height // downsampling) * (width // downsampling)
    return pixels * kernel ** 2 * in_channels * out_channels * layers


def equation_2_operations(height: int, width: int, blocks: int = 3, dense_convs: int = 5,
                          growth: int = 32, channels: int = 64, kernel: int = 3,
                          downsampling: int = 32) -> int:
    """Paper Eq. 2: HSE cost with ``blocks`` RDB* of η=``dense_convs`` each, plus the grouped conv.

    The paper's estimate, not the released network: it assumes η=5 in every block and leaves
    out the 128→64 conv, the 192→64 fusion and the 1/8-scale conv (see ``scale_space_costs``).
    """
    dense = blocks * kernel ** 2 * growth * sum(channels + j * growth for j in range(dense_convs))
    fusion = blocks * (channels + dense_convs * growth) * channels
    grouped = kernel ** 2 * downsampling ** 2
    return (height // downsampling) * (width // downsampling) * (dense + fusion + grouped)

