"""Tiny training set-ups shared by tests/test_train.py and the processes it starts.

Run as a script it trains in a child process:

    python tests/train_worker.py slow-run OUT_DIR ITERATIONS     # killed by the test mid-run
    torchrun --nproc_per_node 2 tests/train_worker.py ddp OUT_DIR # distributed (gloo) checks

The regression set-up draws from every random stream a resume must restore (dropout: torch;
input jitter: numpy and Python's random), so bitwise equality after a resume tests all of them.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # llve from this checkout

from llve.train import Phase, TrainConfig, TrainState, train  # noqa: E402


def regression_setup(init_seed: int = 0, seconds_per_step: float = 0.0
                     ) -> tuple[dict, list, object]:
    """(modules, phases, batch_fn) of a small MLP fitting a fixed linear map."""
    torch.manual_seed(init_seed)
    net = nn.Sequential(nn.Linear(4, 32), nn.Dropout(0.1), nn.Tanh(), nn.Linear(32, 1))
    true_weights = torch.randn(4, 1, generator=torch.Generator().manual_seed(1))

    def batch_fn(index: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(10_000 * index + rank)
        inputs = torch.randn(8, 4, generator=generator)
        return {"x": inputs, "y": inputs @ true_weights}

    def loss_fn(batch: dict, state: TrainState) -> tuple[torch.Tensor, dict]:
        if seconds_per_step:  # lets a test kill the process mid-run; numbers unaffected
            time.sleep(seconds_per_step)
        jitter = torch.from_numpy(np.random.standard_normal(batch["x"].shape)).float()
        inputs = batch["x"] + 0.01 * random.random() * jitter
        prediction = state.modules["net"](inputs)
        return F.mse_loss(prediction, batch["y"]), {"mae": (prediction - batch["y"]).abs().mean()}

    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.8)
    return {"net": net}, [Phase("net", optimizer, loss_fn, scheduler)], batch_fn


def gan_setup(seed: int = 0) -> tuple[dict, list, object]:
    """(modules, phases, batch_fn) of a 2-D GAN: generator phase, then discriminator phase."""
    torch.manual_seed(seed)
    generator = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def batch_fn(index: int, rank: int, world_size: int) -> dict[str, torch.Tensor]:
        numbers = torch.Generator().manual_seed(10_000 * index + rank)
        return {"real": torch.randn(16, 2, generator=numbers) * 0.5 + torch.tensor([2.0, -1.0]),
                "z": torch.randn(16, 2, generator=numbers)}

    def generator_loss(batch: dict, state: TrainState) -> tuple[torch.Tensor, dict]:
        logits = state.modules["d"](state.modules["g"](batch["z"]))
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)), {}

    def discriminator_loss(batch: dict, state: TrainState) -> tuple[torch.Tensor, dict]:
        with torch.no_grad():
            fake = state.modules["g"](batch["z"])
        real_logits = state.modules["d"](batch["real"])
        fake_logits = state.modules["d"](fake)
        real_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real_loss + fake_loss, {"real": real_loss, "fake": fake_loss}

    phases = [Phase("g", torch.optim.Adam(generator.parameters(), 2e-3, betas=(0.5, 0.9)),
                    generator_loss),
              Phase("d", torch.optim.Adam(discriminator.parameters(), 2e-3, betas=(0.5, 0.9)),
                    discriminator_loss)]
    return {"g": generator, "d": discriminator}, phases, batch_fn


def weights(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Every tensor of every module's state dict, detached, on CPU, keyed ``module.tensor``."""
    return {f"{name}.{key}": value.detach().cpu().clone()
            for name, module in modules.items() for key, value in module.state_dict().items()}


def _slow_run(out_dir: str, iterations: int) -> None:
    modules, phases, batch_fn = regression_setup(seconds_per_step=0.05)
    train(TrainConfig(iterations=iterations, checkpoint_every=5, log_every=5, out_dir=out_dir),
          modules, phases, batch_fn)


def _ddp_run(out_dir: str) -> None:
    """Each rank saves what it trained; the test compares ranks and the resumed run."""
    results = {}
    modules, phases, batch_fn = regression_setup()
    held_out = batch_fn(10**6, 0, 1)

    def evaluate(state: TrainState) -> dict[str, float]:  # rank 0 only, plain modules
        return {"mse": F.mse_loss(state.modules["net"](held_out["x"]), held_out["y"]).item()}

    config = TrainConfig(iterations=8, checkpoint_every=4, log_every=2, grad_accumulation=2,
                         eval_every=4, out_dir=f"{out_dir}/plain")
    result = train(config, modules, phases, batch_fn, eval_fn=evaluate)
    results["plain"] = weights(modules)
    results["plain_losses"] = torch.tensor([row["net/loss"] for row in result.log])

    modules, phases, batch_fn = regression_setup()  # same run, interrupted at 4 and resumed
    interrupted = TrainConfig(iterations=4, checkpoint_every=4, log_every=2, grad_accumulation=2,
                              out_dir=f"{out_dir}/resumed")
    train(interrupted, modules, phases, batch_fn)
    modules, phases, batch_fn = regression_setup(init_seed=123)  # weights come from the resume
    train(dataclasses.replace(config, out_dir=f"{out_dir}/resumed"), modules, phases, batch_fn,
          eval_fn=evaluate, resume=True)
    results["resumed"] = weights(modules)

    inputs = torch.randn(23, 3, generator=torch.Generator().manual_seed(0))
    dataset = torch.utils.data.TensorDataset(inputs, inputs.sum(1, keepdim=True))
    torch.manual_seed(0)
    linear = nn.Linear(3, 1)
    fit = Phase("fit", torch.optim.SGD(linear.parameters(), lr=0.1),
                lambda batch, state: (F.mse_loss(state.modules["net"](batch[0]), batch[1]), {}))
    train(TrainConfig(iterations=5, batch_size=4), {"net": linear}, [fit], dataset)
    results["dataset"] = weights({"net": linear})

    modules, phases, batch_fn = gan_setup()
    train(TrainConfig(iterations=6, log_every=3, out_dir=f"{out_dir}/gan"), modules, phases,
          batch_fn)
    results["gan"] = weights(modules)
    torch.save(results, Path(out_dir) / f"rank{os.environ['RANK']}.pt")


if __name__ == "__main__":
    torch.set_num_threads(1)  # the same kernels as the in-process comparison runs
    mode, directory = sys.argv[1], sys.argv[2]
    if mode == "slow-run":
        _slow_run(directory, int(sys.argv[3]))
    elif mode == "ddp":
        _ddp_run(directory)
    else:
        raise SystemExit(f"unknown mode {mode!r}: expected slow-run or ddp")
