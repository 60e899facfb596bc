"""UHR CycleGAN losses: RaLSGAN (±1) and LSGAN values, local/region split, pool, GAN phases."""

import pytest
import torch

from llve.errors import InvalidInputError, UnknownNameError
from llve.models import build
from llve.models.vgg import vgg_features
from llve.papers.uhr_cyclegan.losses import (
    ImagePool, RegionDistance, UHRCycleGANLoss, lsgan_discriminator_loss, lsgan_generator_loss,
    ralsgan_discriminator_loss, ralsgan_generator_loss, split_distance,
)
from llve.train import Phase, TrainConfig, train

REAL = torch.tensor([1.0, 0.5])
FAKE = torch.tensor([0.2, -0.2])


def test_ralsgan_author_form_on_the_facts_vector():
    assert ralsgan_discriminator_loss(REAL, FAKE).item() == pytest.approx(0.11375, abs=1e-7)
    assert ralsgan_generator_loss(REAL, FAKE).item() == pytest.approx(3.11375, abs=1e-7)


def test_released_one_zero_variant_differs():
    assert ralsgan_discriminator_loss(REAL, FAKE, fake_target=0.0).item() == pytest.approx(
        0.36375, abs=1e-7)
    assert ralsgan_generator_loss(REAL, FAKE, fake_target=0.0).item() == pytest.approx(
        1.86375, abs=1e-7)


def test_ralsgan_is_zero_for_a_perfectly_separating_discriminator():
    real, fake = torch.full((3,), 0.5), torch.full((3,), -0.5)
    assert ralsgan_discriminator_loss(real, fake).item() == 0
    # and the generator's loss is zero when the roles are swapped
    assert ralsgan_generator_loss(fake, real).item() == 0


def test_lsgan_values():
    assert lsgan_discriminator_loss(REAL, FAKE).item() == pytest.approx(0.0825, abs=1e-7)
    assert lsgan_generator_loss(REAL, FAKE).item() == pytest.approx(1.04, abs=1e-7)


def test_split_weights_local_and_region_halves():
    target = torch.zeros(2, 6, 8, 8)
    region = RegionDistance()  # no VGG-19 weights: the region term is L1
    assert region.description == "l1 (no VGG-19 weights)"
    local_off = target.clone()
    local_off[:, :3] = 0.2
    total, local, far = split_distance(local_off, target, region, w=0.9)
    assert total.item() == pytest.approx(0.9 * 0.2) and far.item() == 0
    region_off = target.clone()
    region_off[:, 3:] = 0.2
    total, local, far = split_distance(region_off, target, region, w=0.9)
    assert total.item() == pytest.approx(0.1 * 0.2) and local.item() == 0
    with pytest.raises(InvalidInputError, match="N×6×H×W"):
        split_distance(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), region)


def test_region_term_is_perceptual_with_vgg19_weights(tmp_path):
    torch.manual_seed(0)
    source = vgg_features("vgg19", ("relu5_1",))
    path = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in source.features.state_dict().items()}, path)
    region = RegionDistance(path)
    assert region.perceptual and region.description.startswith("perceptual (VGG-19")
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    perceptual = region(a, b)
    assert perceptual.item() > 0 and perceptual.item() != pytest.approx(
        torch.nn.functional.l1_loss(a, b).item())
    assert region(a, a).item() == 0
    # Random (not pretrained) VGG features passed as a module are refused: L1 instead.
    assert not RegionDistance(vgg_features("vgg19", ("relu1_1",))).perceptual


def test_image_pool_fills_then_swaps_and_is_seeded():
    pool, again = ImagePool(4, seed=3), ImagePool(4, seed=3)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned unchanged
    again.query(first)
    outs = [pool.query(torch.full((8, 1, 1, 1), 10.0 + i)) for i in range(3)]
    repeat = [again.query(torch.full((8, 1, 1, 1), 10.0 + i)) for i in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(outs, repeat))
    values = torch.cat(outs).flatten()
    # Each returned image is the new one or an older stored one, and both happen.
    assert set(values.tolist()) <= {0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0}
    assert (values < 10).any() and (values >= 10).any()
    assert len(pool.images) == 4
    with pytest.raises(InvalidInputError, match="ImagePool"):
        ImagePool(-1)
    assert torch.equal(ImagePool(0).query(first), first)


def tiny_modules(seed=0):
    torch.manual_seed(seed)
    return {"generator_a": build("uhr_cyclegan", "tiny"),
            "generator_b": build("uhr_cyclegan", "tiny"),
            "discriminator_a": build("uhr_cyclegan_discriminator", "tiny"),
            "discriminator_b": build("uhr_cyclegan_discriminator", "tiny")}


def test_generator_objective_is_equation_1():
    modules = tiny_modules()
    loss = UHRCycleGANLoss()
    real_a, real_b = torch.rand(1, 6, 32, 32) * 2 - 1, torch.rand(1, 6, 32, 32) * 2 - 1
    terms = loss.generator_losses(real_a, real_b, modules)
    assert terms["region_loss"] == "l1 (no VGG-19 weights)"
    expected = terms["gan"] + 10 * terms["cycle"] + 0.5 * terms["identity"]
    assert torch.allclose(terms["total"], expected)
    assert torch.allclose(terms["cycle"], 0.9 * terms["cycle_local"] + 0.1 * terms["cycle_region"])
    with pytest.raises(UnknownNameError, match="hinge"):
        UHRCycleGANLoss(adversarial="hinge")


def test_two_phase_training_step_updates_generators_and_discriminators():
    modules = tiny_modules()
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in modules.items()}
    loss = UHRCycleGANLoss(pool_size=2)
    generators = [p for n in ("generator_a", "generator_b") for p in modules[n].parameters()]
    discriminators = [p for n in ("discriminator_a", "discriminator_b")
                      for p in modules[n].parameters()]
    phases = [Phase("generators", torch.optim.Adam(generators, 2e-4, betas=(0.5, 0.999)),
                    loss.generator_phase),
              Phase("discriminators", torch.optim.Adam(discriminators, 2e-4, betas=(0.5, 0.999)),
                    loss.discriminator_phase)]

    def batch(index, rank, world_size):
        g = torch.Generator().manual_seed(index)
        return {"a": torch.rand(1, 6, 32, 32, generator=g) * 2 - 1,
                "b": torch.rand(1, 6, 32, 32, generator=g) * 2 - 1}

    result = train(TrainConfig(iterations=2, batch_size=1, device="cpu", log_every=1),
                   modules, phases, batch)
    last = result.log[-1]
    assert last["generators/region_perceptual"] == 0.0
    for key in ("generators/loss", "generators/gan", "generators/cycle", "generators/identity",
                "discriminators/loss", "discriminators/discriminator_a"):
        assert key in last and torch.isfinite(torch.tensor(float(last[key])))
    assert not loss._fakes  # every cached fake was consumed by its discriminator phase
    for name, module in modules.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters())), name
