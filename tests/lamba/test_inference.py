"""Lamba's inference form: the same function as the training form, its bf16 and concurrent
variants, the speed-measurement helpers and the benchmark script (timings never asserted)."""

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from llve.complexity import count_macs, count_parameters
from llve.errors import InvalidInputError
from llve.papers.lamba.speed import (
    BLOCKS, block_runtime_shares, compare_latency, efficiency_rows, output_psnr,
    parallel_branch_speedup, released_forms, sid_best_form,
)
from llve.metrics import psnr
from llve.papers.lamba.inference import LambaInference, inference_form, unshuffle_mosaic
from llve.papers.lamba.network import build
from llve.models.sid_unet import build as build_sid

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5  # float32: folding and channels-last change rounding only


def mosaic(height, width, batch=1, seed=0):
    # An amplified mosaic: values in [0, 1) (Lamba's input is not clipped, but this is its range).
    return torch.rand(batch, 1, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return build("paper").eval()


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(1)
    return build("tiny").eval()


@pytest.mark.parametrize("factor", [1, 4, 16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_unshuffle_mosaic_is_the_two_stage_pixel_unshuffle(factor, channels_last):
    x = mosaic(64, 96, batch=2)
    expected = F.pixel_unshuffle(F.pixel_unshuffle(x, 2), factor) if factor > 1 else \
        F.pixel_unshuffle(x, 2)
    got = unshuffle_mosaic(x, factor, channels_last=channels_last)
    assert torch.equal(got, expected)
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last
                             else torch.contiguous_format)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("shape,pattern", [((1, 1, 128, 192), "RGGB"),  # multiple of 32
                                           ((2, 1, 70, 98), "GBRG")])  # padded, other phase
def test_inference_form_equals_training_form_paper_config(paper_model, channels_last, shape,
                                                          pattern):
    x = mosaic(*shape[-2:], batch=shape[0])
    with torch.no_grad():
        expected = paper_model(x, pattern)
    got = LambaInference(paper_model, channels_last=channels_last)(x, pattern)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().max().item() < TOLERANCE


def test_inference_form_equals_training_form_tiny_config(tiny_model):
    x = mosaic(96, 130, seed=3)  # 130 is not a multiple of 32
    with torch.no_grad():
        expected = tiny_model(x)
    got = inference_form(tiny_model)(x)
    assert (got - expected).abs().max().item() < TOLERANCE


def test_inference_form_leaves_the_model_alone_and_returns_plain_tensors(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    network = LambaInference(tiny_model)
    assert tiny_model.state_dict().keys() == before.keys()
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())
    assert not any(p.requires_grad for p in network.parameters())
    out = network(mosaic(64, 64))
    assert out.is_inference()  # computed under torch.inference_mode
    assert "channels_last=True" in repr(network)
    with pytest.raises(InvalidInputError):
        network(torch.rand(1, 4, 32, 32))
    with pytest.raises(InvalidInputError):
        LambaInference(tiny_model, dtype=torch.int8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inference_form_refuses_non_finite_integer_and_float64_input(tiny_model, dtype):
    network = LambaInference(tiny_model, dtype=dtype)  # input is float32 whatever it computes in
    x = mosaic(64, 64)
    for value in (float("nan"), float("inf")):
        bad = x.clone()
        bad[0, 0, 7, 9] = value
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            network(bad)
    with pytest.raises(InvalidInputError, match="uint16.*normalised"):
        network((x * 16383).to(torch.uint16))
    with pytest.raises(InvalidInputError, match="float64"):
        network(x.double())


def test_bf16_path_runs_and_reports_its_psnr(paper_model):
    x = mosaic(128, 128, seed=4)
    full = LambaInference(paper_model)
    half = LambaInference(paper_model, dtype=torch.bfloat16)
    out = half(x)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 128, 128)
    quality = output_psnr(half, full, x)
    print(f"bf16 vs fp32: PSNR {quality['psnr_db']:.2f} dB, max abs difference "
          f"{quality['max_abs_difference']:.3g}")
    # Measured here: about 45-48 dB for random paper-config weights (bf16 keeps 8 mantissa
    # bits: ~3e-3 relative per tensor, through ~25 layers).
    assert math.isfinite(quality["psnr_db"]) and quality["psnr_db"] > 35
    assert torch.allclose(psnr(out, full(x)), torch.tensor([quality["psnr_db"]],
                                                           dtype=torch.float64))


def test_concurrent_branches_equal_sequential(paper_model):
    x = mosaic(96, 128, seed=5)
    sequential = LambaInference(paper_model)(x)
    concurrent = LambaInference(paper_model, parallel=True)
    assert torch.equal(concurrent(x), sequential)
    assert torch.equal(concurrent(x), sequential)  # the thread pool is reused


def test_block_runtime_shares_sum_to_one(tiny_model):
    for form in ("inference", "training"):
        shares = block_runtime_shares(tiny_model, 64, 64, repeats=1, warmup=0, form=form)
        assert list(shares["block"]) == list(BLOCKS)
        assert shares["share"].sum() == pytest.approx(1.0)
        assert shares["share_of_blocks"].sum() == pytest.approx(1.0)  # NaN for "other" skipped
        assert (shares["median_s"] >= 0).all()
        assert shares.attrs["form"] == form and shares.attrs["threads"] >= 1
    with pytest.raises(InvalidInputError):
        block_runtime_shares(tiny_model, 64, 64, form="released")


def test_parallel_branch_speedup_reports_both_forms(tiny_model):
    frame = parallel_branch_speedup(tiny_model, 64, 64, repeats=1, warmup=0)
    assert list(frame["part"]) == ["encoders (LSE, MSE, HSE)", "whole network"]
    assert (frame["speedup"] > 0).all()
    assert (frame["max_abs_difference"] == 0).all()


def test_compare_latency_and_table1_rows():
    torch.manual_seed(2)
    lamba, sid = build("tiny").eval(), build_sid("tiny").eval()
    forms = {"lamba": LambaInference(lamba), "sid": sid_best_form(sid)}
    table = compare_latency(forms, 64, 64, repeats=3, warmup=0)
    assert list(table["model"]) == ["lamba", "sid"]
    assert table.attrs["size"] == "64x64" and table.attrs["reference"] == "lamba"
    # Every column recomputed from the raw timings (attrs["all_s"]), not from the table.
    times = table.attrs["all_s"]
    assert sorted(times) == ["lamba", "sid"] and all(len(times[name]) == 3 for name in times)
    reference_median = statistics.median(times["lamba"])
    for row in table.itertuples():
        median = statistics.median(times[row.model])
        assert row.median_s == median and row.min_s == min(times[row.model])
        assert row.over_reference == pytest.approx(median / reference_median, rel=1e-12)
        assert row.fps == pytest.approx(1.0 / median, rel=1e-12)
    assert table.loc[0, "over_reference"] == 1.0
    # Another reference divides by that model's median instead.
    by_sid = compare_latency(forms, 64, 64, repeats=3, warmup=0, reference="sid")
    sid_times = by_sid.attrs["all_s"]
    assert by_sid.set_index("model").loc["sid", "over_reference"] == 1.0
    assert by_sid.set_index("model").loc["lamba", "over_reference"] == pytest.approx(
        statistics.median(sid_times["lamba"]) / statistics.median(sid_times["sid"]), rel=1e-12)
    with pytest.raises(InvalidInputError):
        compare_latency({"lamba": lamba}, 64, 64, reference="sid")
    rows = efficiency_rows({"Lamba": lamba, "SID": sid}, 64, 64, repeats=1, warmup=0)
    assert list(rows["row"]) == ["Lamba", "SID"]
    # counted on the timed forms: Lamba's weight norm folded (its g scalars gone)
    folded = count_parameters(lamba) - sum(module.parametrizations.weight.original0.numel()
                                           for module in lamba.modules()
                                           if hasattr(module, "parametrizations"))
    assert rows["parameters"].tolist() == [folded, count_parameters(sid)]
    assert rows.loc[0, "parameters"] < rows.loc[1, "parameters"]
    # Convolution MACs counted independently: Lamba on the mosaic, the U-Net on packed planes.
    assert rows.loc[0, "conv_gmacs"] * 1e9 == pytest.approx(count_macs(lamba, (1, 1, 64, 64)))
    assert rows.loc[1, "conv_gmacs"] * 1e9 == pytest.approx(count_macs(sid, (1, 4, 32, 32)))
    assert (rows["latency_s"] > 0).all() and (rows["peak_memory_gb"] >= 0).all()


def run_benchmark(*arguments):
    command = [sys.executable, str(ROOT / "benchmarks" / "lamba_speed.py"), "--sizes", "64x64",
               "--repeats", "1", "--threads", "1", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(done.stdout.strip().splitlines()[-1])


def test_benchmark_script_runs_end_to_end():
    stdout, summary = run_benchmark()
    for key in ("lamba_s", "released_s", "released_folded_s", "sid_unet_s", "sid_over_lamba",
                "released_over_llve", "released_folded_over_llve", "threads", "device",
                "lamba_parallel_s", "parallel_speedup", "weights", "results"):
        assert key in summary
    assert "lamba_train_form_s" not in summary  # renamed: it is the release's own form
    assert summary["size"] == "64x64" and "64x64" in summary["results"]
    assert summary["repeats"] == 1
    # The derived numbers are the ratios of the reported medians, all from the same run.
    assert summary["released_over_llve"] == pytest.approx(
        summary["released_s"] / summary["lamba_s"])
    assert summary["released_folded_over_llve"] == pytest.approx(
        summary["released_folded_s"] / summary["lamba_s"])
    assert summary["sid_over_lamba"] == pytest.approx(summary["sid_unet_s"] / summary["lamba_s"])
    assert summary["parallel_speedup"] == pytest.approx(
        summary["lamba_s"] / summary["lamba_parallel_s"])
    assert summary["lamba_fps"] == pytest.approx(1.0 / summary["lamba_s"])
    assert summary["results"]["64x64"]["released_s"] == summary["released_s"]
    # Every form computes the same function (weights are the release's where ../shared has them).
    assert summary["max_abs_difference_released_vs_llve"] < TOLERANCE
    assert summary["max_abs_difference_released_folded_vs_llve"] < TOLERANCE
    released_weights = ROOT.parent / "shared" / "official" / "lamba" / "weights.pth"
    assert summary["weights"] == (str(released_weights) if released_weights.exists() else None)
    # The ratio table prints the same ratios.
    assert f"{summary['released_over_llve']:.2f}×" in stdout
    assert f"{summary['released_folded_over_llve']:.2f}×" in stdout
    if "lamba_bf16_s" in summary:
        assert math.isfinite(summary["bf16_psnr_vs_fp32_db"])


def test_benchmark_script_random_weights_and_a_missing_weights_file(tmp_path):
    _, summary = run_benchmark("--random-weights", "--no-reduced")
    assert summary["weights"] is None
    assert summary["max_abs_difference_released_folded_vs_llve"] < TOLERANCE
    command = [sys.executable, str(ROOT / "benchmarks" / "lamba_speed.py"), "--weights",
               str(tmp_path / "missing.pth")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "no such file" in done.stderr


def test_released_forms_compute_the_same_function(tiny_model):
    x = mosaic(64, 96, seed=8)
    forms = released_forms(tiny_model)
    assert set(forms) == {"released", "released_folded"}
    with torch.inference_mode():
        expected = LambaInference(tiny_model)(x)
        for form in forms.values():
            assert (form(x) - expected).abs().max().item() < TOLERANCE
    assert forms["released"] is tiny_model  # weight norm recomputed at every call
    assert all(p.requires_grad for p in tiny_model.parameters())  # the model is left alone


@pytest.mark.gpu
def test_cuda_streams_path_equals_sequential_and_training_form(paper_model):
    device = torch.device("cuda")
    model = build("paper").eval()
    model.load_state_dict(paper_model.state_dict())
    model = model.to(device)
    x = mosaic(256, 320, seed=6).to(device)
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # compare float32 with float32
    try:
        with torch.no_grad():
            expected = model(x)
        sequential = LambaInference(model)(x)
        concurrent = LambaInference(model, parallel=True)(x)
        torch.cuda.synchronize()
        assert (sequential - expected).abs().max().item() < 1e-4
        assert (concurrent - sequential).abs().max().item() < 1e-5
        half = LambaInference(model, dtype=torch.float16)(x)
        assert psnr(half, sequential).item() > 35
    finally:
        torch.backends.cudnn.allow_tf32 = previous
