"""Anantrasirichai & Bull, "Contextual colorization and denoising for low-light ultra-high-
resolution sequences", ICIP 2021: the library part.

- ``network``: the 6-channel CycleGAN generator with a learnable soft-shrink encoder and the
  PatchGAN discriminator, registered as ``"uhr_cyclegan"`` and ``"uhr_cyclegan_discriminator"``.
- ``losses``: RaLSGAN (its author's ±1 form) and LSGAN, cycle/identity losses split into the
  local L1 and the region perceptual (VGG-19) term, the image pool, the GAN training phases.
- ``patches``: local + region training pairs, the tile grid, Gaussian merge weights and the
  streaming frame enhancer.
- ``temporal``: the adaptive temporal smoothing of Sec. 3.4 (registration by ``llve.models.flow``).

Submodules are imported on use (``from llve.papers.uhr_cyclegan import network``), so importing
this package stays light.
"""
