"""llve.train: learning, exact resume (in-process and after SIGKILL), GAN phases, checkpoint
integrity and atomicity, the deterministic dataset order, and DDP across 2 torchrun processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llve.errors import CheckpointError, InvalidInputError
from llve.train import (Phase, TrainConfig, _DeterministicBatches, _atomic_write,
                        find_checkpoints, load_checkpoint, read_checkpoint, train)
from train_worker import gan_setup, regression_setup, weights

WORKER = Path(__file__).with_name("train_worker.py")
CHILD_ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "LLVE_PROGRESS": "off"}


@pytest.fixture(autouse=True)
def one_thread_quiet(monkeypatch):
    """Single-threaded kernels (as in the child processes, so bitwise comparisons hold)."""
    monkeypatch.setenv("LLVE_PROGRESS", "off")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_bitwise_equal(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]):
    assert first.keys() == second.keys()
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"tensors differ: {different}"


def without_seconds(log: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in log]


def run_regression(out_dir: Path | None, iterations: int = 12, resume: bool = False,
                   init_seed: int = 0, **overrides) -> tuple[dict, object]:
    modules, phases, batch_fn = regression_setup(init_seed)
    settings = {"checkpoint_every": 4, "log_every": 2, "grad_accumulation": 2, **overrides}
    config = TrainConfig(iterations=iterations, out_dir=out_dir, **settings)
    result = train(config, modules, phases, batch_fn, resume=resume)
    return weights(modules), result


def test_tiny_model_learns_and_writes_log_and_checkpoints(tmp_path):
    modules, phases, batch_fn = regression_setup()
    held_out = batch_fn(10**6, 0, 1)

    def held_out_error(state):
        return {"mse": F.mse_loss(state.modules["net"](held_out["x"]), held_out["y"]).item()}

    modules["net"].eval()  # as eval_fn sees it; train() switches it back to training mode
    with torch.no_grad():
        initial_error = held_out_error(SimpleNamespace(modules=modules))["mse"]
    config = TrainConfig(iterations=40, checkpoint_every=4, log_every=10, eval_every=20,
                         out_dir=tmp_path)
    result = train(config, modules, phases, batch_fn, eval_fn=held_out_error)
    assert result.log[-1]["eval/mse"] < 0.2 * initial_error
    # A row every log_every steps and at every checkpoint.
    assert [row["step"] for row in result.log] == sorted({*range(4, 41, 4), *range(10, 41, 10)})
    assert {"seconds", "net/loss", "net/mae", "net/lr"} <= result.log[0].keys()
    assert result.step == 40
    assert [path.name for path in result.checkpoints] == ["step_00000036.pt", "step_00000040.pt"]
    assert result.summary["final"]["net/loss"] == result.log[-1]["net/loss"]
    assert result.summary["steps_per_s"] > 0
    assert result.dataframe().index.name == "step"
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0] == "step,seconds,net/loss,net/mae,net/lr,eval/mse"  # rewritten once
    assert len(lines) == 1 + len(result.log)
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path):
    uninterrupted, full = run_regression(tmp_path / "full")
    run_regression(tmp_path / "split", iterations=6)  # "killed" after its step-4 checkpoint...
    (tmp_path / "split" / "checkpoints" / "step_00000006.pt").unlink()  # ...before step 8
    with (tmp_path / "split" / "log.csv").open("a") as log:
        log.write("1")  # killed while appending the row of step 1x: a torn last line
    # Different initial weights: everything must come from the checkpoint.
    resumed, second = run_regression(tmp_path / "split", resume=True, init_seed=99)
    assert second.resumed_from.name == "step_00000004.pt"
    assert_bitwise_equal(uninterrupted, resumed)
    assert without_seconds(second.log) == without_seconds(full.log)  # one coherent log
    csv_steps = [line.split(",")[0] for line in
                 (tmp_path / "split" / "log.csv").read_text().splitlines()[1:]]
    assert csv_steps == ["2", "4", "6", "8", "10", "12"]


@pytest.mark.slow
def test_resume_after_sigkill_is_bitwise_identical(tmp_path):
    iterations = 60
    child = subprocess.Popen([sys.executable, str(WORKER), "slow-run", str(tmp_path / "killed"),
                              str(iterations)], env=CHILD_ENVIRONMENT)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 60
    while not (checkpoints.is_dir() and find_checkpoints(checkpoints)):
        assert child.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    newest = find_checkpoints(checkpoints)[-1]
    assert read_checkpoint(newest)["step"] < iterations  # really interrupted

    modules, phases, batch_fn = regression_setup(init_seed=5)
    config = TrainConfig(iterations=iterations, checkpoint_every=5, log_every=5,
                         out_dir=tmp_path / "killed")
    result = train(config, modules, phases, batch_fn, resume=True)
    assert result.resumed_from is not None
    uninterrupted, _ = run_regression(None, iterations=iterations, checkpoint_every=5,
                                      log_every=5, grad_accumulation=1)
    assert_bitwise_equal(uninterrupted, weights(modules))
    assert not list((tmp_path / "killed").rglob("*.tmp"))


def test_gan_two_phases_train_and_resume_exactly(tmp_path):
    def run(out_dir, iterations, resume=False, init_seed=0):
        modules, phases, batch_fn = gan_setup(init_seed)
        before = weights(modules)
        config = TrainConfig(iterations=iterations, checkpoint_every=3, log_every=3,
                             out_dir=out_dir)
        result = train(config, modules, phases, batch_fn, resume=resume)
        return before, weights(modules), result

    before, after, result = run(tmp_path / "full", 9)
    for name in before:  # both the generator and the discriminator moved
        assert not torch.equal(before[name], after[name]), name
    assert {"g/loss", "d/loss", "d/real", "d/fake", "g/lr", "d/lr"} <= result.log[-1].keys()
    run(tmp_path / "split", 3)
    _, resumed, _ = run(tmp_path / "split", 9, resume=True, init_seed=7)
    assert_bitwise_equal(after, resumed)


def test_dataset_order_is_a_deterministic_shard_of_epoch_permutations():
    size, batch, world = 10, 3, 2
    ranks = [_DeterministicBatches(size, batch, rank, world, seed=0, first_micro_batch=0)
             for rank in range(world)]
    stream = [index for micro in range(5) for sampler in ranks
              for index in sampler.indices(micro)]  # 30 samples = 3 epochs
    for epoch in range(3):
        assert sorted(stream[epoch * size:(epoch + 1) * size]) == list(range(size))
    assert stream[:size] != stream[size:2 * size]  # a fresh permutation per epoch
    resumed = _DeterministicBatches(size, batch, 1, world, seed=0, first_micro_batch=3)
    assert next(iter(resumed)) == ranks[1].indices(3)


def test_dataset_training_resumes_exactly(tmp_path):
    inputs = torch.randn(37, 3, generator=torch.Generator().manual_seed(0))
    dataset = torch.utils.data.TensorDataset(inputs, inputs.sum(1, keepdim=True))

    def run(out_dir, iterations, resume=False):
        torch.manual_seed(0)
        net = nn.Linear(3, 1)
        phase = Phase("fit", torch.optim.SGD(net.parameters(), lr=0.1),
                      lambda batch, state: (F.mse_loss(state.modules["net"](batch[0]),
                                                       batch[1]), {}))
        config = TrainConfig(iterations=iterations, batch_size=5, checkpoint_every=4,
                             out_dir=out_dir)
        train(config, {"net": net}, [phase], dataset, resume=resume)
        return weights({"net": net})

    full = run(tmp_path / "full", 12)
    run(tmp_path / "split", 4)
    assert_bitwise_equal(full, run(tmp_path / "split", 12, resume=True))


def test_corrupt_and_truncated_checkpoints_are_reported_and_earlier_ones_kept(tmp_path):
    uninterrupted, _ = run_regression(tmp_path / "full")
    run_regression(tmp_path / "run", iterations=8)  # keeps step 4 and step 8
    good, newest = find_checkpoints(tmp_path / "run")
    data = newest.read_bytes()

    weight_bytes = read_checkpoint(newest)["modules"]["net"]["0.weight"].numpy().tobytes()
    start = data.index(weight_bytes)  # flip bytes inside tensor data: torch.load cannot tell
    newest.write_bytes(data[:start] + b"\xff" * 8 + data[start + 8:])
    with pytest.raises(CheckpointError, match=rf"{newest.name}.*(corrupt|checksum)"):
        read_checkpoint(newest)

    newest.write_bytes(data[:len(data) // 3])
    with pytest.raises(CheckpointError, match=rf"{newest.name}.*truncated"):
        read_checkpoint(newest)

    with pytest.warns(UserWarning, match=rf"{newest.name}.*previous good checkpoint.*{good.name}"):
        resumed, result = run_regression(tmp_path / "run", resume=True, init_seed=3)
    assert result.resumed_from == good
    assert_bitwise_equal(uninterrupted, resumed)  # the fallback costs time, not exactness

    for path in find_checkpoints(tmp_path / "run"):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="no readable checkpoint") as failure:
        run_regression(tmp_path / "run", resume=True)
    assert all(path.name in str(failure.value) for path in find_checkpoints(tmp_path / "run"))
    assert len(find_checkpoints(tmp_path / "run")) == 2  # nothing deleted


def test_read_checkpoint_rejects_foreign_and_missing_files(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an llve training checkpoint"):
        read_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")


def test_load_checkpoint_into_fresh_modules(tmp_path):
    trained, result = run_regression(tmp_path, iterations=4)
    modules, _, _ = regression_setup(init_seed=42)
    payload = load_checkpoint(result.checkpoints[-1], modules)
    assert payload["step"] == 4
    assert_bitwise_equal(trained, weights(modules))
    with pytest.raises(CheckpointError, match="no module"):
        load_checkpoint(result.checkpoints[-1], {"other": nn.Linear(1, 1)})
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(result.checkpoints[-1], {"net": nn.Linear(4, 1)})


def test_atomic_write_failure_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "file.bin"
    _atomic_write(target, lambda handle: handle.write(b"old"))

    def fails_half_way(handle):
        handle.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _atomic_write(target, fails_half_way)
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["file.bin"]


def test_starting_over_replaces_an_earlier_run(tmp_path):
    run_regression(tmp_path, iterations=12)
    _, result = run_regression(tmp_path, iterations=4)
    assert [path.name for path in find_checkpoints(tmp_path)] == ["step_00000004.pt"]
    assert [row["step"] for row in result.log] == [2, 4]


def test_eval_runs_on_schedule_without_touching_training(tmp_path):
    plain, _ = run_regression(None, iterations=8)
    modules, phases, batch_fn = regression_setup()
    seen = []

    def evaluate(state):
        seen.append((state.step, state.modules["net"].training, torch.is_grad_enabled()))
        return {"noise": float(torch.randn(()))}  # draws from the RNG: must not shift training

    config = TrainConfig(iterations=8, log_every=2, grad_accumulation=2, eval_every=3)
    result = train(config, modules, phases, batch_fn, eval_fn=evaluate)
    assert seen == [(3, False, False), (6, False, False), (8, False, False)]
    assert modules["net"].training
    assert [row["step"] for row in result.log if "eval/noise" in row] == [3, 6, 8]
    assert_bitwise_equal(plain, weights(modules))


def test_invalid_configuration_and_losses_are_clear_errors():
    with pytest.raises(InvalidInputError, match="grad_accumulation"):
        TrainConfig(grad_accumulation=0)
    with pytest.raises(InvalidInputError, match="amp"):
        TrainConfig(amp="fp8")
    net = nn.Linear(2, 1)
    stray = nn.Linear(2, 1)
    with pytest.raises(InvalidInputError, match="belong to none"):
        train(TrainConfig(iterations=1), {"net": net},
              [Phase("p", torch.optim.SGD(stray.parameters(), 0.1), lambda b, s: (0, {}))],
              lambda i, r, w: None)
    vector_loss = Phase("p", torch.optim.SGD(net.parameters(), 0.1),
                        lambda batch, state: (state.modules["net"](batch), {}))
    with pytest.raises(InvalidInputError, match="scalar"):
        train(TrainConfig(iterations=1), {"net": net}, [vector_loss],
              lambda i, r, w: torch.ones(3, 2))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_with_clipping_trains_and_resumes_exactly(tmp_path, amp):
    """CPU autocast runs the AMP code path (fp16: GradScaler, whose state is checkpointed)."""
    full, result = run_regression(tmp_path / "full", amp=amp, clip_grad_norm=0.5)
    assert {"net/grad_norm", "net/loss"} <= result.log[-1].keys()
    assert result.summary["amp"] == f"torch.{'bfloat16' if amp == 'bf16' else 'float16'}"
    scaler = read_checkpoint(result.checkpoints[-1])["phases"]["net"]["scaler"]
    assert ("scale" in scaler) == (amp == "fp16")
    run_regression(tmp_path / "split", iterations=4, amp=amp, clip_grad_norm=0.5)
    resumed, _ = run_regression(tmp_path / "split", resume=True, amp=amp, clip_grad_norm=0.5)
    assert_bitwise_equal(full, resumed)


def test_from_scale_takes_iterations_batch_and_checkpoint_interval():
    config = TrainConfig.from_scale("ci", seed=3)
    assert (config.iterations, config.batch_size, config.checkpoint_every, config.seed) == \
        (4, 2, 2, 3)


@pytest.mark.slow
def test_two_torchrun_processes_train_identical_weights(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(WORKER), "ddp", str(tmp_path)],
        env=CHILD_ENVIRONMENT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    for run in ("plain", "resumed", "gan", "dataset"):
        assert_bitwise_equal(rank0[run], rank1[run])
    assert_bitwise_equal(rank0["plain"], rank0["resumed"])  # exact resume under DDP too
    losses = rank0["plain_losses"]
    assert losses[-1] < losses[0]
    assert [path.name for path in find_checkpoints(tmp_path / "plain")] == \
        ["step_00000004.pt", "step_00000008.pt"]  # written once, by rank 0
    assert read_checkpoint(tmp_path / "plain" / "checkpoints" / "step_00000008.pt")[
        "world_size"] == 2
    log = (tmp_path / "plain" / "log.csv").read_text().splitlines()
    assert log[0].endswith(",eval/mse") and len(log) == 1 + 4
