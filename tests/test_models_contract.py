"""The contract every registered model keeps (DESIGN.md §5), like diffusers' ModelTesterMixin.

Each test is parametrised over ``sorted(llve.models.MODELS)`` and runs the model's ``tiny``
preset on the CPU: forward, output shape and finiteness, gradients reaching every parameter,
state-dict round trip, determinism under a seed, clear llve errors for NaN/inf/integer/float64
input, ``build(..., weights=...)`` with llve training checkpoints (and the errors for a
checkpoint of another preset or a truncated file), unknown presets and bad overrides.

Registering a model means adding ONE entry to ``EXAMPLES`` below: how to make a small input for
its tiny preset and the output shape that input gives. The first positional argument is the
float tensor the model checks with ``llve.data.mosaic.check_model_input``; the invalid-input
tests corrupt that one.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch

import pytest
import torch

from llve.errors import CheckpointError, InvalidInputError, UnknownNameError
from llve.models import MODELS, build
from llve.train import Phase, TrainConfig, find_checkpoints, train


@dataclass(frozen=True)
class Example:
    """A small tiny-preset input of one registered model and the output it must give."""

    make: Callable[[torch.Generator], tuple[tuple, dict]]  # generator -> (args, kwargs)
    output_shape: tuple[int, ...]
    # Parameter names (fnmatch patterns) allowed an all-zero gradient on the first step, e.g.
    # layers downstream of a zero-initialised one (ControlNet's zero convolutions). Their
    # ``.grad`` must still exist: they are connected to the loss.
    zero_grad_ok: tuple[str, ...] = ()


EXAMPLES: dict[str, Example] = {
    # five RGB frames N×5×3×H×W (not a multiple of 4: padded) and a noise map N×1×H×W
    # -> the denoised centre frame N×3×H×W
    "fastdvdnet": Example(
        lambda g: ((torch.rand(2, 5, 3, 18, 23, generator=g),
                    torch.full((2, 1, 18, 23), 25 / 255)), {}),
        output_shape=(2, 3, 18, 23)),
    # amplified unpacked Bayer mosaic N×1×H×W (not a multiple of 32: padded), non-RGGB phase
    "lamba": Example(
        lambda g: ((torch.rand(2, 1, 64, 96, generator=g) * 0.5,), {"pattern": "GRBG"}),
        output_shape=(2, 3, 64, 96)),
    # two RGB frames N×3×H×W in [0, 255] (not a multiple of 8: padded) -> flow N×2×H×W
    "raft_small": Example(
        lambda g: ((torch.rand(2, 3, 36, 52, generator=g) * 255,
                    torch.rand(2, 3, 36, 52, generator=g) * 255), {}),
        output_shape=(2, 2, 36, 52)),
    # packed R, G1, B, G2 planes N×4×h×w (not a multiple of 16: padded) -> N×3×2h×2w
    "sid_unet": Example(
        lambda g: ((torch.rand(2, 4, 24, 40, generator=g),), {}),
        output_shape=(2, 3, 48, 80)),
    # one RGB frame N×3×H×W (not a multiple of 16: padded) -> N×3×H×W
    "smid": Example(
        lambda g: ((torch.rand(2, 3, 20, 37, generator=g),), {}),
        output_shape=(2, 3, 20, 37)),
    # 6-channel local + region patch N×6×H×W in [-1, 1] (not a multiple of 4: padded). Conv
    # biases right before an InstanceNorm have an analytically zero gradient (kept for the counts).
    "uhr_cyclegan": Example(
        lambda g: ((torch.rand(2, 6, 30, 42, generator=g) * 2 - 1,), {}),
        output_shape=(2, 6, 30, 42), zero_grad_ok=("*.conv.bias",)),
    # PatchGAN scores of 6-channel patches: 40 -> 20 -> 10 -> 5 -> 4 -> 3
    "uhr_cyclegan_discriminator": Example(
        lambda g: ((torch.rand(2, 6, 40, 40, generator=g) * 2 - 1,), {}),
        output_shape=(2, 1, 3, 3), zero_grad_ok=("*.conv.bias",)),
}

NAMES = sorted(MODELS)


def example(name: str) -> Example:
    if name not in EXAMPLES:
        pytest.fail(f"registered model {name!r} has no entry in EXAMPLES of "
                    f"tests/test_models_contract.py: add how to make a tiny-preset input for it "
                    f"and the output shape it gives", pytrace=False)
    return EXAMPLES[name]


def example_input(name: str, seed: int = 0) -> tuple[tuple, dict]:
    """(args, kwargs) of a forward call of ``build(name, "tiny")``, the same for every seed."""
    return example(name).make(torch.Generator().manual_seed(seed))


def seeded_build(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build(name, "tiny", **kwargs)


def run(model, args, kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(*args, **kwargs)


def with_first_arg(args: tuple, value: torch.Tensor) -> tuple:
    return (value, *args[1:])


# ----------------------------------------------------------------------------------------------
# The table itself


def test_every_example_names_a_registered_model():
    stale = sorted(set(EXAMPLES) - set(MODELS))
    assert not stale, f"EXAMPLES has entries for unregistered models: {stale}"


def test_unknown_model_name_is_refused():
    with pytest.raises(UnknownNameError, match="registered models are"):
        build("no_such_model", "tiny")


def test_importing_the_registry_imports_no_paper():
    code = ("import sys, llve.models; "
            "loaded = [m for m in sys.modules if m.startswith('llve.papers')]; "
            "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------------------------------
# Forward, gradients, state, determinism


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_dtype_and_finite(name):
    entry = example(name)
    model = seeded_build(name)
    assert model.training  # builders return train mode
    args, kwargs = example_input(name)
    out = run(model, args, kwargs)
    assert tuple(out.shape) == entry.output_shape
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    entry = example(name)
    model = seeded_build(name)
    args, kwargs = example_input(name)
    out = model(*args, **kwargs)
    # Centred on the output so that a final clamp to [0, 1] still passes gradient.
    (out - out.detach().mean()).square().mean().backward()
    parameters = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert parameters
    missing = [n for n, p in parameters if p.grad is None]
    assert not missing, f"no gradient reaches {missing}"
    not_finite = [n for n, p in parameters if not torch.isfinite(p.grad).all()]
    assert not not_finite, f"non-finite gradients in {not_finite}"
    zero = [n for n, p in parameters if not p.grad.any()
            and not any(fnmatch(n, pattern) for pattern in entry.zero_grad_ok)]
    assert not zero, f"all-zero gradients in {zero} (list them in zero_grad_ok if legitimate)"
    assert sum(p.grad.abs().sum() for _, p in parameters) > 0


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    args, kwargs = example_input(name)
    source, target = seeded_build(name, seed=1).eval(), seeded_build(name, seed=2).eval()
    expected = run(source, args, kwargs)
    assert not torch.equal(run(target, args, kwargs), expected)  # the seeds do differ
    target.load_state_dict(source.state_dict())
    assert torch.equal(run(target, args, kwargs), expected)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_with_a_seed(name):
    args, kwargs = example_input(name)
    first, second = seeded_build(name, seed=0), seeded_build(name, seed=0)
    assert first.state_dict().keys() == second.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 second.state_dict().values()))
    assert torch.equal(run(first, args, kwargs), run(second, args, kwargs))


# ----------------------------------------------------------------------------------------------
# Invalid input: clear llve errors, never NaN output


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_input_are_refused(name):
    model = seeded_build(name)
    args, kwargs = example_input(name)
    for value, word in ((float("nan"), "NaN"), (float("inf"), "inf"), (float("-inf"), "inf")):
        x = args[0].clone()
        x.view(-1)[x.numel() // 2] = value
        with pytest.raises(InvalidInputError, match=word):
            model(*with_first_arg(args, x), **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_integer_input_is_refused(name):
    model = seeded_build(name)
    args, kwargs = example_input(name)
    digital_numbers = (args[0] * 16383).to(torch.uint16)  # raw DN, not normalised
    with pytest.raises(InvalidInputError, match="uint16.*normalised"):
        model(*with_first_arg(args, digital_numbers), **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_float64_input_to_a_float32_model_is_refused(name):
    model = seeded_build(name)
    args, kwargs = example_input(name)
    with pytest.raises(InvalidInputError, match="float64"):
        model(*with_first_arg(args, args[0].double()), **kwargs)
    # The check follows the model's dtype rather than hard-coding float32.
    double_args = tuple(a.double() if torch.is_tensor(a) and a.is_floating_point() else a
                        for a in args)
    out = run(model.double(), double_args, kwargs)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()


# ----------------------------------------------------------------------------------------------
# Registry: presets, overrides, weights


@pytest.mark.parametrize("name", NAMES)
def test_unknown_preset_and_bad_override(name):
    with pytest.raises(UnknownNameError, match="huge"):
        build(name, "huge")
    with pytest.raises(InvalidInputError, match="no_such_field"):
        build(name, "tiny", no_such_field=1)


@pytest.fixture(scope="module")
def trained_checkpoints(tmp_path_factory):
    """name -> (llve.train checkpoint of one Adam step of the tiny preset, the trained model)."""
    cache = {}

    def get(name):
        if name not in cache:
            model = seeded_build(name, seed=3)
            args, kwargs = example_input(name)

            def loss(batch, state):
                out = state.modules["model"](*batch["args"], **kwargs)
                return (out - 0.5).square().mean(), {}

            out_dir = tmp_path_factory.mktemp(f"train_{name}")
            train(TrainConfig(iterations=1, batch_size=1, device="cpu", out_dir=out_dir,
                              description=f"contract {name}"),
                  {"model": model},
                  [Phase("model", torch.optim.Adam(model.parameters(), lr=1e-2), loss)],
                  lambda index, rank, world_size: {"args": list(args)})
            (checkpoint,) = find_checkpoints(out_dir)
            cache[name] = checkpoint, model.eval()
        return cache[name]

    return get


@pytest.mark.parametrize("name", NAMES)
def test_build_loads_an_llve_training_checkpoint(name, trained_checkpoints):
    checkpoint, trained = trained_checkpoints(name)
    args, kwargs = example_input(name)
    loaded = build(name, "tiny", weights=checkpoint).eval()
    expected = run(trained, args, kwargs)
    assert torch.equal(run(loaded, args, kwargs), expected)
    untrained = seeded_build(name, seed=3).eval()  # the weights before the Adam step
    assert not torch.equal(run(untrained, args, kwargs), expected)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_of_another_preset_is_a_checkpoint_error(name, trained_checkpoints):
    checkpoint, _ = trained_checkpoints(name)
    with pytest.raises(CheckpointError) as error:
        build(name, "small", weights=checkpoint)
    message = str(error.value)
    assert str(checkpoint) in message
    assert any(word in message for word in ("size mismatch", "Missing key", "Unexpected key")), \
        message


@pytest.mark.parametrize("name", NAMES)
def test_truncated_or_missing_checkpoint_is_a_checkpoint_error(name, trained_checkpoints,
                                                               tmp_path):
    checkpoint, _ = trained_checkpoints(name)
    data = checkpoint.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        build(name, "tiny", weights=truncated)
    with pytest.raises(CheckpointError, match="no such"):
        build(name, "tiny", weights=tmp_path / "missing.pt")
