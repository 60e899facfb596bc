"""VGG-16 / VGG-19 convolutional feature stacks for perceptual losses, weights from a local file.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015. Several papers compare VGG features: uhr_cyclegan's region loss (VGG-19 relu1_1 ..
relu5_1, after Johnson et al.), cfa (VGG-16 up to pool2).

``vgg_features(arch, layers, weights=path)`` builds the ``features`` part of torchvision's
VGG (same layer indices, so a torchvision state dict — ``features.0.weight`` ... — loads
unchanged, its ``classifier.*`` keys ignored), truncated after the deepest layer asked for.
Nothing is downloaded: ``weights`` is a local file (``torch.save`` of a torchvision
``vgg19().state_dict()`` or of its ``features`` keys). Without ``weights`` the stack is randomly
initialised and ``pretrained`` is False: a loss that needs ImageNet features must check it and
say what it falls back to.

Input: RGB N×3×H×W in [0, 1]; ``normalize=True`` (default) applies the ImageNet mean/std that
torchvision's weights were trained with. The parameters are frozen and the module is in eval
mode (VGG has no normalisation layers, so the mode only matters for consistency).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from llve.errors import CheckpointError, InvalidInputError, UnknownNameError
from llve.train import load_torch_file

# Conv widths per block (torchvision configurations "D" and "E"); a max-pool ends every block.
BLOCKS = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names of ``features[i]`` in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    if arch not in BLOCKS:
        raise UnknownNameError(f"unknown VGG arch {arch!r}: expected one of {sorted(BLOCKS)}")
    names = []
    for block, widths in enumerate(BLOCKS[arch], start=1):
        for index in range(1, len(widths) + 1):
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
        names.append(f"pool{block}")
    return names


class VGGFeatures(nn.Module):
    """torchvision's ``vgg*.features`` up to the deepest requested layer; returns those outputs."""

    def __init__(self, arch: str, layers: Sequence[str], normalize: bool = True):
        super().__init__()
        names = layer_names(arch)
        unknown = [name for name in layers if name not in names]
        if not layers or unknown:
            raise InvalidInputError(f"layers must name {arch} layers such as 'relu1_1' or "
                                    f"'pool2'; unknown: {unknown or 'none given'}")
        self.arch = arch
        self.layers = tuple(layers)
        self.indices = {names.index(name): name for name in layers}
        modules, channels = [], 3
        for name in names[:max(self.indices) + 1]:
            if name.startswith("conv"):
                block, index = (int(part) for part in name[4:].split("_"))
                width = BLOCKS[arch][block - 1][index - 1]
                modules.append(nn.Conv2d(channels, width, 3, padding=1))
                channels = width
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))  # its output may be returned: no in-place
            else:
                modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.pretrained = False
        self.source: str | None = None
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InvalidInputError(f"VGG input must be RGB N×3×H×W in [0, 1], got shape "
                                    f"{tuple(x.shape)}")
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.indices:
                out[self.indices[index]] = x
        return {name: out[name] for name in self.layers}  # in the order asked for


def load_vgg_weights(model: VGGFeatures, path: str | os.PathLike) -> VGGFeatures:
    """Load a torchvision-format VGG state dict from ``path`` into the truncated stack.

    Keys outside the kept ``features.*`` layers (deeper layers, ``classifier.*``) are ignored;
    a missing kept key or a shape mismatch (e.g. VGG-16 weights for VGG-19) is a
    ``CheckpointError`` naming the file and the keys.
    """
    state = load_torch_file(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a VGG state dict, got {type(state).__name__}")
    wanted = model.features.state_dict()
    missing = [key for key in wanted if f"features.{key}" not in state]
    if missing:
        raise CheckpointError(f"{path}: not {model.arch} weights in torchvision format: missing "
                              f"{['features.' + key for key in missing[:4]]}")
    bad = [f"features.{key} {tuple(state['features.' + key].shape)} != {tuple(value.shape)}"
           for key, value in wanted.items() if state[f"features.{key}"].shape != value.shape]
    if bad:
        raise CheckpointError(f"{path}: shapes do not match {model.arch}: {bad[:3]}")
    model.features.load_state_dict({key: state[f"features.{key}"] for key in wanted})
    model.pretrained, model.source = True, str(path)
    return model


def vgg_features(arch: str = "vgg19", layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1",
                                                                "relu4_1", "relu5_1"),
                 weights: str | os.PathLike | None = None, normalize: bool = True) -> VGGFeatures:
    """A frozen VGG feature stack returning ``{layer: N×C×h×w}`` for ``layers``.

    ``weights``: a local torchvision-format state dict; None gives random weights
    (``pretrained`` False). Never downloads.
    """
    model = VGGFeatures(arch, layers, normalize)
    if weights is not None:
        load_vgg_weights(model, weights)
    return model
