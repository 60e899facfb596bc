"""Lamba's workflow: synthetic batches, training recipe, evaluation protocol, paper numbers."""

import math
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from llve.data import synth
from llve.data.raw import pack, unpack, write_dng
from llve.errors import DatasetNotFoundError, InvalidInputError, UnknownNameError
from llve.papers.lamba import experiment
from llve.metrics import MS_SSIM_MIN_SIZE, psnr, ssim
from llve.papers.lamba.amplifier import estimate_amplification
from llve.train import find_checkpoints, load_checkpoint

NOISELESS = synth.EldNoiseModel(shot=False, read=False, row=False, quantise=False)


def pool_of(radiance, targets):
    return experiment.SyntheticPool(radiance.astype(np.float16), targets.astype(np.float16), "RGGB")


def test_batches_are_deterministic_in_the_index_and_split_by_rank():
    batch_fn = experiment.synthetic_batches("ci", seed=0)
    first, again, other = batch_fn(0, 0, 1), batch_fn(0, 0, 1), batch_fn(1, 0, 1)
    size = experiment.recipe("ci").crop_size
    assert first["mosaic"].shape == (2, 1, size, size)
    assert first["target"].shape == (2, 3, size, size)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not torch.equal(first["mosaic"], other["mosaic"])
    assert set(first["ratio"].tolist()) <= set(experiment.SID_RATIOS)
    # rank 1 of 2 takes the samples that come after rank 0's: the global stream of one process
    assert all(torch.equal(batch_fn(0, 1, 2)[key], other[key]) for key in first)
    assert not torch.equal(experiment.synthetic_batches("ci", seed=1)(0, 0, 1)["mosaic"],
                           first["mosaic"])


def test_crops_and_augmentations_keep_the_cfa_phase():
    planes = np.stack([np.full((32, 32), value) for value in (0.1, 0.2, 0.3, 0.4)])  # R G1 B G2
    radiance = unpack(planes, "RGGB")[None]
    pool = pool_of(radiance, np.zeros((1, 64, 64, 3)))
    rng = np.random.default_rng(0)
    for _ in range(40):
        mosaic, _, _ = experiment.synthetic_sample(pool, 32, rng, NOISELESS)
        packed = pack(mosaic, "RGGB")  # R, G1, B, G2
        np.testing.assert_allclose(packed[0], 0.1, rtol=1e-3)
        np.testing.assert_allclose(packed[2], 0.3, rtol=1e-3)
        assert np.all((np.abs(packed[[1, 3]] - 0.2) < 1e-3) | (np.abs(packed[[1, 3]] - 0.4) < 1e-3))


def test_target_is_aligned_with_the_mosaic_crop():
    targets = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3))
    pool = pool_of(0.5 * targets[..., 0], targets)  # radiance = half the target's red channel
    rng = np.random.default_rng(1)
    for _ in range(20):
        mosaic, target, ratio = experiment.synthetic_sample(pool, 32, rng, NOISELESS)
        assert mosaic.shape == (32, 32) and target.shape == (32, 32, 3) and ratio in (100, 250, 300)
        np.testing.assert_allclose(mosaic, 0.5 * target[..., 0], rtol=1e-4, atol=1e-6)


def test_short_exposure_is_dark_noisy_and_saturates_at_one():
    radiance = np.full((32, 32), 0.5, dtype=np.float32)
    radiance[:4] = experiment.LAMP_RADIANCE * 50  # a lamp bright enough to saturate
    noise = synth.EldNoiseModel()
    short = experiment.short_exposure(radiance, 100, noise, noise.sample_params(0),
                                      np.random.default_rng(0))
    assert np.all(short[:4] == 1.0)
    assert abs(short[4:].mean() * 100 - 0.5) < 0.05
    # Without noise: exactly 100× less light, saturating at 1.
    clean = experiment.short_exposure(radiance, 100, NOISELESS, NOISELESS.sample_params(0),
                                      np.random.default_rng(0))
    np.testing.assert_allclose(clean, np.minimum(radiance / 100, 1.0), rtol=1e-6)
    # Shot noise alone has the Poisson spread of the signal's electrons; read and row noise
    # add variance on top, but less than the shot noise at this level.
    params = noise.sample_params(0)
    signal_dn = 0.005 * noise.signal_range
    shot_std = math.sqrt(params.system_gain * signal_dn) / noise.signal_range
    shot_only = synth.EldNoiseModel(read=False, row=False, quantise=False)
    shot = experiment.short_exposure(radiance, 100, shot_only, params, np.random.default_rng(0))
    assert shot[4:].std() == pytest.approx(shot_std, rel=0.1)
    assert shot_std < short[4:].std() < 1.5 * shot_std


def test_test_set_has_three_ratios_per_scene_and_lamp_scenes():
    items = experiment.synthetic_test_set("ci", seed=0)
    settings = experiment.recipe("ci")
    assert len(items) == 3 * settings.eval_images
    assert [item["ratio"] for item in items[:3]] == [100.0, 250.0, 300.0]
    assert {item["scene"] for item in items[:3]} == {"synthetic-00"}
    lamp_item = next(item for item in items if item["lamps"])
    assert np.all(lamp_item["target"] >= experiment.LAMP_THRESHOLD, axis=-1).any()
    # lamps at LAMP_RADIANCE × the long exposure's white, ratio times dimmer in the short one
    lamp_pixels = np.all(lamp_item["target"] >= experiment.LAMP_THRESHOLD, axis=-1)
    amplified = lamp_item["mosaic"] * lamp_item["ratio"]
    assert np.median(amplified[lamp_pixels]) == pytest.approx(experiment.LAMP_RADIANCE, rel=0.05)
    for item in items:
        assert item["mosaic"].shape == (settings.image_size,) * 2
        assert item["target"].shape == (settings.image_size,) * 2 + (3,)
        assert item["mosaic"].mean() * item["ratio"] < 1 and not item["excluded_from_scores"]


def test_recipes_follow_the_paper_and_fit_ms_ssim():
    paper = experiment.recipe("paper")
    assert (paper.iterations, paper.batch_size, paper.crop_size, paper.learning_rate) == (
        1_000_000, 8, 512, 1e-4)
    assert paper.presets == {"lamba": "paper", "sid_unet": "paper"}
    for scale in ("ci", "small", "paper"):
        settings = experiment.recipe(scale)
        assert settings.crop_size >= MS_SSIM_MIN_SIZE and settings.crop_size % 32 == 0
        assert settings.image_size >= settings.crop_size + 2  # room for mirrored crops


@pytest.mark.parametrize("name", ["lamba", "sid_unet"])
def test_training_writes_checkpoints_and_resumes_exactly(name, tmp_path):
    settings = experiment.recipe("ci")
    uninterrupted = experiment.train_model(name, "ci", seed=0, device="cpu",
                                           out_dir=tmp_path / "a", resume=False)
    assert uninterrupted.step == settings.iterations
    checkpoints = find_checkpoints(tmp_path / "a")
    assert [path.name for path in checkpoints] == ["step_00000002.pt", "step_00000004.pt"]
    # The first logged loss is the loss of batch 0 on the freshly built model, recomputed here.
    first_batch = experiment.synthetic_batches("ci", seed=0)(0, 0, 1)
    initial = experiment.build_model(name, settings.presets[name], seed=0)
    state = SimpleNamespace(modules={"model": initial})
    with torch.no_grad():
        expected, _ = experiment.LOSSES[name](first_batch, state)
    assert uninterrupted.log[0]["step"] == 1
    assert uninterrupted.log[0][f"{name}/loss"] == pytest.approx(float(expected), rel=1e-5)

    interrupted = shutil.copytree(tmp_path / "a", tmp_path / "b")
    find_checkpoints(interrupted)[-1].unlink()  # as if killed after the step-2 checkpoint
    resumed = experiment.train_model(name, "ci", seed=0, device="cpu", out_dir=interrupted)
    assert resumed.resumed_from.name == "step_00000002.pt" and resumed.step == 4
    losses = [row[f"{name}/loss"] for row in uninterrupted.log]
    assert [row[f"{name}/loss"] for row in resumed.log] == pytest.approx(losses, rel=1e-6)
    weights = [experiment.build_model(name, settings.presets[name]) for _ in range(2)]
    load_checkpoint(checkpoints[-1], {"model": weights[0]})
    load_checkpoint(find_checkpoints(interrupted)[-1], {"model": weights[1]})
    for a, b in zip(weights[0].state_dict().values(), weights[1].state_dict().values()):
        assert torch.equal(a, b)


def test_gt_gc_ssim_climb_finds_the_exhaustive_maximum():
    """best_gamma_psnr climbs the γ grid for SSIM; on restorations of the test set (and on
    outputs with a global tone error) it must find what the exhaustive search finds."""
    torch.manual_seed(0)
    model = experiment.build_model("lamba", "tiny").eval()
    checked = 0
    for item in experiment.synthetic_test_set("ci", seed=0)[:3]:
        output, _ = experiment.restore(model, item)
        target = torch.as_tensor(np.asarray(item["target"])).permute(2, 0, 1)[None].double()
        for candidate in (output, target ** 0.8, (target ** 1.2 + 0.02).clamp(0, 1)):
            found = experiment.best_gamma_psnr(candidate, target)
            exhaustive = [float(ssim(candidate, target ** gamma)) for gamma in experiment.GAMMAS]
            assert found["ssim"] == pytest.approx(max(exhaustive), abs=1e-12)
            assert found["gamma_ssim"] == experiment.GAMMAS[int(np.argmax(exhaustive))]
            checked += 1
    assert checked == 9


def test_training_on_real_sid_crops_when_a_data_root_is_given(tmp_path, monkeypatch):
    root = tmp_path / "SID"
    for folder, name, level in (("short", "00001_00_0.1s.ARW", 0.005),
                                ("short", "00001_01_0.04s.ARW", 0.002),
                                ("long", "00001_00_10s.ARW", 0.5)):
        (root / "Sony" / folder).mkdir(parents=True, exist_ok=True)
        mosaic = np.random.default_rng(len(name)).uniform(0, level, (256, 256))
        write_dng(root / "Sony" / folder / name, mosaic, "RGGB", 512, 16383, (2.0, 1.0, 1.6))
    monkeypatch.setenv("LLVE_BUILD_DIR", str(tmp_path / "build"))  # the run's build dir
    experiment.check_data_root(str(tmp_path))  # the layout llve reproduce checks first
    result = experiment.train_model("sid_unet", "ci", device="cpu", out_dir=tmp_path / "run",
                                    resume=False, data_root=str(tmp_path))
    assert result.step == experiment.recipe("ci").iterations
    assert math.isfinite(result.log[-1]["sid_unet/loss"])
    cache = tmp_path / "build" / "ci" / "cache" / "sid_sony"
    assert experiment.sid_cache("ci") == cache
    assert len(list(cache.glob("00001_00_10s-*.npy"))) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="Sony"):
        experiment.check_data_root(str(tmp_path / "empty"))
    assert experiment.run_name("lamba", 0, "star", str(tmp_path)) == "lamba-star-sid-seed0"


def test_unknown_model_is_refused():
    with pytest.raises(UnknownNameError):
        experiment.train_model("unet", "ci")


@pytest.fixture(scope="module")
def tiny_lamba():
    torch.manual_seed(0)
    return experiment.build_model("lamba", "tiny").eval()


def test_evaluate_returns_one_row_per_image_with_the_protocol_columns(tiny_lamba):
    items = experiment.synthetic_test_set("ci", seed=0)[:2]
    scores = experiment.evaluate(tiny_lamba, items, amplifier="ratio")
    assert list(scores.columns) == ["scene", "ratio", "amplifier", "amplification", "psnr", "ssim",
                                    "excluded_from_scores"]
    assert len(scores) == 2 and scores["amplification"].tolist() == [100.0, 250.0]
    assert scores["ratio"].tolist() == [100.0, 250.0]
    for row, item in zip(scores.itertuples(), items):  # the scores recomputed independently
        mosaic = torch.from_numpy(np.asarray(item["mosaic"], dtype=np.float32))[None, None]
        with torch.no_grad():
            output = tiny_lamba(mosaic * item["ratio"], item["pattern"])
        target = torch.from_numpy(np.asarray(item["target"], dtype=np.float32))
        target = target.permute(2, 0, 1)[None]
        assert row.psnr == pytest.approx(float(psnr(output, target)), abs=1e-6)
        assert row.ssim == pytest.approx(float(ssim(output, target)), abs=1e-6)
    weighted = experiment.evaluate(tiny_lamba, items, amplifier="weighted", gamma_corrected=True)
    assert {"psnr_gtgc", "ssim_gtgc", "gamma"} <= set(weighted.columns)
    assert (weighted["psnr_gtgc"] >= weighted["psnr"]).all()
    assert weighted["amplifier"].unique().tolist() == ["weighted"]
    expected_factors = [estimate_amplification(np.asarray(item["mosaic"], dtype=np.float32))
                        for item in items]
    assert weighted["amplification"].tolist() == pytest.approx(expected_factors, rel=1e-6)
    assert set(weighted["gamma"]) <= set(experiment.GAMMAS)
    fixed = experiment.evaluate(tiny_lamba, items[:1], amplifier=lambda mosaic: [42.0])
    assert fixed["amplification"].tolist() == [42.0] and fixed["amplifier"][0] == "<lambda>"


def test_best_gamma_psnr_maximises_over_gamma_corrected_targets():
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.uniform(0.05, 0.95, (1, 3, 48, 48)))
    output = (target + 0.01 * torch.from_numpy(rng.standard_normal(target.shape))).clamp(0, 1)
    best = experiment.best_gamma_psnr(output, target)
    assert best["gamma_psnr"] == 1.0 and best["gamma_ssim"] == 1.0
    assert best["psnr"] == pytest.approx(float(psnr(output, target)), abs=1e-12)
    noise = 0.01 * torch.from_numpy(rng.standard_normal(target.shape))
    brighter = (target ** 0.85 + noise).clamp(0, 1)
    shifted = experiment.best_gamma_psnr(brighter, target)
    assert shifted["gamma_psnr"] == 0.85  # the gamma applies to the ground truth
    assert shifted["psnr"] > float(psnr(brighter, target)) + 3
    assert experiment.GAMMAS[:2] == (0.7, 0.73) and experiment.GAMMAS[-1] == 1.3
    assert len(experiment.GAMMAS) == 21
    with pytest.raises(InvalidInputError):
        experiment.best_gamma_psnr(output.expand(2, -1, -1, -1), target.expand(2, -1, -1, -1))
