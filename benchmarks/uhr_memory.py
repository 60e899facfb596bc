"""Peak memory and time of streaming UHR enhancement at 1080p, 4K, 5K and 8K, one run.

    python benchmarks/uhr_memory.py                      # 1080p 4k 5k 8k, output streamed to a file
    python benchmarks/uhr_memory.py --sizes 1080p 4k     # a subset
    python benchmarks/uhr_memory.py --in-memory-output   # output as an ordinary H×W×3 array
    python benchmarks/uhr_memory.py --preset tiny --width 8 --blocks 2

Each size runs in a fresh Python process (so one size's allocator state cannot hide another's
peak): the process builds the generator (seed 0, eval), fills an H×W×3 float32 input frame in
memory, then measures ``llve.papers.uhr_cyclegan.patches.enhance_frame`` once with
``llve.complexity.peak_memory`` (CPU: the process's RSS high-water mark, ``VmHWM`` after
``clear_refs``). ``peak_mb`` is the increase over the RSS just before the call — i.e. beyond
the input frame, the model and the interpreter — so it is what enhancement itself needs.
The output goes, by default, to an ``NpyRowWriter`` (finished rows appended to a ``.npy`` file
in a temporary folder), so the output is not resident either; with ``--in-memory-output`` it
is a fresh H×W×3 float32 array that is part of the measured increase.

Tiles are the paper's inference tiles: N_l = 512 at stride 256 with a 1000 × 1000 region crop
(the paper's 5K training size) resized to 512, 2 tiles per batch. The network is NOT the paper
generator: to keep the run at a few minutes on 2 shared cores it is the ``tiny`` preset
narrowed further (default base width 4, 1 residual block, 6 -> 3 channels: 0.61 G MACs per
512² tile against the paper generator's 203.1 G, ``llve.complexity.count_macs``) — memory of the merge is what is measured, and the
network's activations are the same per tile at every frame size. ``--preset``/``--width``/
``--blocks`` choose another. It prints a table and ends with ONE JSON line:
``{"peak_mb": {"1080p": ..., "4k": ..., "5k": ..., "8k": ...}, "seconds": {...}, ...}``.
Nothing is asserted; compare the sizes within one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"1080p": (1080, 1920), "4k": (2160, 3840), "5k": (2880, 5120), "8k": (4320, 7680)}
PATCH, REGION, BATCH = 512, 1000, 2


def child(args: argparse.Namespace) -> None:
    """One size in this (fresh) process; prints one JSON line."""
    import numpy as np
    import torch

    from llve.complexity import peak_memory
    from llve.models import build
    from llve.papers.uhr_cyclegan.patches import NpyRowWriter, enhance_frame, generator_patch_fn

    height, width = SIZES[args.child]
    torch.manual_seed(0)
    generator = build("uhr_cyclegan", args.preset, base_width=args.width,
                      residual_blocks=args.blocks, out_channels=3)
    patch_fn = generator_patch_fn(generator)
    frame = np.empty((height, width, 3), dtype=np.float32)
    rng = np.random.default_rng(0)
    for row in range(0, height, 256):  # filled in slices: no float64 temporary of the frame
        frame[row:row + 256] = rng.random((min(256, height - row), width, 3), dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        out = (None if args.in_memory_output
               else NpyRowWriter(Path(folder) / "out.npy", (height, width, 3)))
        started = time.perf_counter()
        measured = peak_memory(lambda: enhance_frame(frame, patch_fn, patch=PATCH, region=REGION,
                                                     batch_size=BATCH, out=out))
        seconds = time.perf_counter() - started
        if out is not None:
            out.close()
    print(json.dumps({"size": args.child, "peak_mb": measured["peak_increase_bytes"] / 2 ** 20,
                      "rss_before_mb": measured["baseline_bytes"] / 2 ** 20,
                      "frame_mb": frame.nbytes / 2 ** 20, "seconds": seconds,
                      "method": measured["method"], "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--width", type=int, default=4, help="generator base width")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks")
    parser.add_argument("--in-memory-output", action="store_true")
    parser.add_argument("--child", choices=list(SIZES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for size in args.sizes:
        command = [sys.executable, __file__, "--child", size, "--preset", args.preset,
                   "--width", str(args.width), "--blocks", str(args.blocks)]
        if args.in_memory_output:
            command.append("--in-memory-output")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{size} failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    output = "in-memory array" if args.in_memory_output else "NpyRowWriter (streamed to file)"
    print(f"generator: {args.preset}, base width {args.width}, {args.blocks} residual block(s), "
          f"6->3 channels; tiles {PATCH} stride {PATCH // 2}, region {REGION}, batch {BATCH}; "
          f"output: {output}; {rows[0]['method']}, {rows[0]['threads']} thread(s)")
    print(f"{'size':>6} {'frame MB':>9} {'peak MB':>8} {'seconds':>8}")
    for row in rows:
        print(f"{row['size']:>6} {row['frame_mb']:9.1f} {row['peak_mb']:8.1f} {row['seconds']:8.1f}")
    first = rows[0]
    print(json.dumps({
        "peak_mb": {row["size"]: round(row["peak_mb"], 1) for row in rows},
        "seconds": {row["size"]: round(row["seconds"], 2) for row in rows},
        "frame_mb": {row["size"]: round(row["frame_mb"], 1) for row in rows},
        "peak_over_first": {row["size"]: round(row["peak_mb"] / first["peak_mb"], 3)
                            for row in rows},
        "output": output, "generator": {"preset": args.preset, "base_width": args.width,
                                        "residual_blocks": args.blocks},
    }))


if __name__ == "__main__":
    main()
