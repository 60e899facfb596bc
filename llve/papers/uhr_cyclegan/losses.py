"""The UHR CycleGAN's losses (paper Eq. 1–4), the image pool, and two GAN training phases.

Adversarial losses on raw discriminator scores C (no sigmoid):

- LSGAN (the original CycleGAN): L_D = ½[mean((C_r − 1)²) + mean(C_f²)], L_G = mean((C_f − 1)²).
- RaLSGAN (Jolicoeur-Martineau 2019), in its author's form with targets ±1:
  L_D = ½[mean((C_r − mean C_f − 1)²) + mean((C_f − mean C_r + 1)²)],
  L_G = ½[mean((C_f − mean C_r − 1)²) + mean((C_r − mean C_f + 1)²)].
  ``fake_target=0.0`` gives the released code's variant (targets 1 and 0), which is not the
  paper's loss; it is kept only so the two can be compared.

Cycle and identity losses (Eq. 2–4) split each 6-channel patch into its local half (channels
0–2) and its region half (3–5): L_t = w·L_t^l + (1 − w)·L_t^r with w = 0.9. The local term is
L1; the region term is the L1 distance between VGG-19 relu1_1..relu5_1 features (the mean
absolute difference of each layer, averaged over the 5 layers with equal weights — the paper
gives no layer weights), computed on the region RGB mapped from [-1, 1] to [0, 1] and
ImageNet-normalised. VGG-19 needs ImageNet weights from a local file (``vgg_weights``); without
them the region term is plain L1 and ``region_loss`` says so ("l1 (no VGG-19 weights)"), in
the loss dict and as ``region_perceptual`` = 0 in the training log.

Choices where the paper is silent or ambiguous (each can be changed by an argument):

1. Eq. 2 also lists t = GAN, but the discriminators see all 6 channels (the release; FACTS.md),
   so there is one adversarial term per generator, not a local and a region one.
2. λ_idt multiplies L_idt directly (Eq. 1, λ_idt = 0.5). CycleGAN's reference code scales its
   identity loss by λ_cyc as well (effective weight 5); pass ``lambda_idt=5.0`` for that.
3. The image pool (50 per discriminator, CycleGAN's) draws from its own seeded generator; its
   contents are not saved in ``llve.train`` checkpoints, so a resumed run restarts with an
   empty pool (resume is then not bitwise exact).

Module names the phases expect in ``state.modules``: ``generator_a`` (G_A: A = low light ->
B = target), ``generator_b`` (G_B: B -> A), ``discriminator_a`` (judges domain A: real A vs
G_B(B)) and ``discriminator_b`` (judges domain B: real B vs G_A(A)). A batch is
``{"a": N×6×H×W, "b": N×6×H×W}`` in [-1, 1].
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from llve.errors import InvalidInputError, UnknownNameError
from llve.models.vgg import VGGFeatures, vgg_features

LOCAL = slice(0, 3)  # channels of the local RGB patch
REGION = slice(3, 6)  # channels of the resized region RGB patch
VGG19_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PAPER_WEIGHTS = {"lambda_gan": 1.0, "lambda_cyc": 10.0, "lambda_idt": 0.5, "w": 0.9}
ADVERSARIAL = ("ralsgan", "lsgan")


# --------------------------------------------------------------------------------------
# Adversarial losses


def lsgan_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """½[mean((C_r − 1)²) + mean(C_f²)]."""
    return 0.5 * ((real - 1).square().mean() + fake.square().mean())


def lsgan_generator_loss(real: torch.Tensor | None, fake: torch.Tensor) -> torch.Tensor:
    """mean((C_f − 1)²); ``real`` is unused (same signature as the relativistic loss)."""
    return (fake - 1).square().mean()


def ralsgan_discriminator_loss(real: torch.Tensor, fake: torch.Tensor,
                               fake_target: float = -1.0) -> torch.Tensor:
    """½[mean((C_r − mean C_f − 1)²) + mean((C_f − mean C_r − t_f)²)], t_f = −1 (author)."""
    return 0.5 * ((real - fake.mean() - 1).square().mean()
                  + (fake - real.mean() - fake_target).square().mean())


def ralsgan_generator_loss(real: torch.Tensor, fake: torch.Tensor,
                           fake_target: float = -1.0) -> torch.Tensor:
    """½[mean((C_f − mean C_r − 1)²) + mean((C_r − mean C_f − t_f)²)], t_f = −1 (author)."""
    return 0.5 * ((fake - real.mean() - 1).square().mean()
                  + (real - fake.mean() - fake_target).square().mean())


# --------------------------------------------------------------------------------------
# Local / region reconstruction distances


class RegionDistance:
    """The region term: VGG-19 feature L1 when ImageNet weights are given, else plain L1."""

    def __init__(self, vgg_weights: str | os.PathLike | VGGFeatures | None = None):
        if isinstance(vgg_weights, VGGFeatures):
            self.vgg = vgg_weights if vgg_weights.pretrained else None
        elif vgg_weights is not None:
            self.vgg = vgg_features("vgg19", VGG19_LAYERS, weights=vgg_weights)
        else:
            self.vgg = None
        self.description = ("perceptual (VGG-19 relu1_1..relu5_1, L1)" if self.vgg is not None
                            else "l1 (no VGG-19 weights)")

    @property
    def perceptual(self) -> bool:
        return self.vgg is not None

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.vgg is None:
            return F.l1_loss(output, target)
        vgg = self.vgg.to(output.device)
        # [-1, 1] -> [0, 1], the range VGGFeatures normalises with ImageNet statistics.
        ours, theirs = vgg((output + 1) / 2), vgg((target.detach() + 1) / 2)
        return torch.stack([F.l1_loss(ours[k], theirs[k]) for k in VGG19_LAYERS]).mean()


def split_distance(output: torch.Tensor, target: torch.Tensor, region: RegionDistance,
                   w: float = 0.9) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(w·L1(local) + (1 − w)·region(region half), local term, region term) of 6-ch patches."""
    if output.shape != target.shape or output.ndim != 4 or output.shape[1] != 6:
        raise InvalidInputError(f"split_distance needs two N×6×H×W patches of one shape, got "
                                f"{tuple(output.shape)} and {tuple(target.shape)}")
    local = F.l1_loss(output[:, LOCAL], target[:, LOCAL])
    far = region(output[:, REGION], target[:, REGION])
    return w * local + (1 - w) * far, local, far


# --------------------------------------------------------------------------------------
# Image pool


class ImagePool:
    """CycleGAN's history of generated images (Shrivastava et al. 2017), seeded.

    Until ``size`` images are stored, each new image is stored and returned; afterwards each
    image is, with probability ½, swapped for a random stored one (which is returned), else
    returned as is. ``size=0`` returns the batch unchanged. Images are stored detached.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        if not isinstance(size, int) or size < 0:
            raise InvalidInputError(f"ImagePool size must be an integer >= 0, got {size!r}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:  # image: C×H×W
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index])
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)  # N×C×H×W


# --------------------------------------------------------------------------------------
# The full objective and the GAN training phases


class UHRCycleGANLoss:
    """Eq. 1: λ_GAN·L_GAN + λ_cyc·L_cyc + λ_idt·L_idt, with the generator / discriminator phases.

    ``generator_phase`` and ``discriminator_phase`` are ``llve.train`` loss functions
    ``(batch, state) -> (loss, logs)``: use them as ``Phase("generators", adam_g,
    loss.generator_phase)`` then ``Phase("discriminators", adam_d, loss.discriminator_phase)``.
    The generator phase keeps its (detached) fakes for the discriminator phase of the same step.
    """

    def __init__(self, vgg_weights: str | os.PathLike | VGGFeatures | None = None,
                 adversarial: str = "ralsgan", fake_target: float = -1.0,
                 lambda_gan: float = 1.0, lambda_cyc: float = 10.0, lambda_idt: float = 0.5,
                 w: float = 0.9, pool_size: int = 50, seed: int = 0):
        if adversarial not in ADVERSARIAL:
            raise UnknownNameError(f"adversarial must be one of {ADVERSARIAL}, got {adversarial!r}")
        if not 0 <= w <= 1:
            raise InvalidInputError(f"w (local weight) must be in [0, 1], got {w}")
        self.adversarial = adversarial
        self.fake_target = fake_target
        self.lambda_gan, self.lambda_cyc, self.lambda_idt, self.w = (
            lambda_gan, lambda_cyc, lambda_idt, w)
        self.region = RegionDistance(vgg_weights)
        self.pools = {"a": ImagePool(pool_size, seed), "b": ImagePool(pool_size, seed + 1)}
        self._fakes: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def region_loss(self) -> str:
        """What the region term is: perceptual with VGG-19, or L1 without its weights."""
        return self.region.description

    def _generator_adversarial(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.adversarial == "lsgan":
            return lsgan_generator_loss(None, fake)
        return ralsgan_generator_loss(real, fake, self.fake_target)

    def _discriminator_adversarial(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.adversarial == "lsgan":
            return lsgan_discriminator_loss(real, fake)
        return ralsgan_discriminator_loss(real, fake, self.fake_target)

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor,
                         modules: Mapping[str, torch.nn.Module]) -> dict[str, Any]:
        """Every generator term as tensors, plus the fakes and ``region_loss`` (a string)."""
        g_a, g_b = modules["generator_a"], modules["generator_b"]
        d_a, d_b = modules["discriminator_a"], modules["discriminator_b"]
        fake_b, fake_a = g_a(real_a), g_b(real_b)
        with torch.no_grad():  # real scores do not depend on the generators
            real_score_b, real_score_a = d_b(real_b), d_a(real_a)
        gan = (self._generator_adversarial(real_score_b, d_b(fake_b))
               + self._generator_adversarial(real_score_a, d_a(fake_a)))
        cycle_a, cycle_a_local, cycle_a_region = split_distance(g_b(fake_b), real_a, self.region,
                                                                self.w)
        cycle_b, cycle_b_local, cycle_b_region = split_distance(g_a(fake_a), real_b, self.region,
                                                                self.w)
        terms = {"gan": gan, "cycle": cycle_a + cycle_b,
                 "cycle_local": cycle_a_local + cycle_b_local,
                 "cycle_region": cycle_a_region + cycle_b_region}
        if self.lambda_idt:
            idt_b, idt_b_local, idt_b_region = split_distance(g_a(real_b), real_b, self.region,
                                                              self.w)
            idt_a, idt_a_local, idt_a_region = split_distance(g_b(real_a), real_a, self.region,
                                                              self.w)
            terms.update(identity=idt_a + idt_b, identity_local=idt_a_local + idt_b_local,
                         identity_region=idt_a_region + idt_b_region)
        else:
            terms["identity"] = gan.new_zeros(())
        terms["total"] = (self.lambda_gan * terms["gan"] + self.lambda_cyc * terms["cycle"]
                          + self.lambda_idt * terms["identity"])
        return {**terms, "fake_a": fake_a.detach(), "fake_b": fake_b.detach(),
                "region_loss": self.region_loss}

    def discriminator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor,
                             fake_a: torch.Tensor, fake_b: torch.Tensor,
                             modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
        """Both discriminators' losses; the fakes go through the image pools first."""
        fake_a, fake_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
        loss_a = self._discriminator_adversarial(modules["discriminator_a"](real_a),
                                                 modules["discriminator_a"](fake_a))
        loss_b = self._discriminator_adversarial(modules["discriminator_b"](real_b),
                                                 modules["discriminator_b"](fake_b))
        return {"total": loss_a + loss_b, "discriminator_a": loss_a, "discriminator_b": loss_b}

    # llve.train loss functions --------------------------------------------------------

    def generator_phase(self, batch: Mapping[str, torch.Tensor], state) -> tuple[torch.Tensor, dict]:
        terms = self.generator_losses(batch["a"], batch["b"], state.modules)
        self._fakes[state.micro_step] = {"a": terms["fake_a"], "b": terms["fake_b"]}
        logs = {key: value.detach() for key, value in terms.items()
                if isinstance(value, torch.Tensor) and value.ndim == 0 and key != "total"}
        logs["region_perceptual"] = float(self.region.perceptual)  # the log holds numbers only
        return terms["total"], logs

    def discriminator_phase(self, batch: Mapping[str, torch.Tensor], state
                            ) -> tuple[torch.Tensor, dict]:
        fakes = self._fakes.pop(state.micro_step, None)
        if fakes is None:  # run without a generator phase before it: make the fakes here
            with torch.no_grad():
                fakes = {"a": state.modules["generator_b"](batch["b"]),
                         "b": state.modules["generator_a"](batch["a"])}
        terms = self.discriminator_losses(batch["a"], batch["b"], fakes["a"], fakes["b"],
                                          state.modules)
        return terms["total"], {key: value.detach() for key, value in terms.items()
                                if key != "total"}
