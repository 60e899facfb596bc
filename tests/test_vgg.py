"""llve.models.vgg: torchvision-layout VGG-16/19 feature stacks loaded from local files."""

import pytest
import torch

from llve.complexity import count_parameters
from llve.errors import CheckpointError, InvalidInputError, UnknownNameError
from llve.models.vgg import layer_names, vgg_features


def test_full_feature_stacks_have_torchvision_counts_and_indices():
    # torchvision's vgg16().features / vgg19().features: 14,714,688 / 20,024,384 parameters
    assert count_parameters(vgg_features("vgg16", ("pool5",))) == 14_714_688
    assert count_parameters(vgg_features("vgg19", ("pool5",))) == 20_024_384
    names = layer_names("vgg19")
    assert len(names) == 37 and names.index("relu5_1") == 29 and names.index("pool2") == 9


def test_truncated_after_the_deepest_layer_and_shapes():
    cfa = vgg_features("vgg16", ("relu1_2", "pool2"))
    assert len(cfa.features) == 10 and count_parameters(cfa) == 260_160
    out = cfa(torch.rand(2, 3, 32, 48))
    assert list(out) == ["relu1_2", "pool2"]
    assert out["relu1_2"].shape == (2, 64, 32, 48) and out["pool2"].shape == (2, 128, 8, 12)
    assert not any(p.requires_grad for p in cfa.parameters()) and not cfa.pretrained


def test_loads_a_torchvision_state_dict_and_ignores_the_classifier(tmp_path):
    torch.manual_seed(0)
    source = vgg_features("vgg19", ("pool5",))
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(3)  # not a features key: ignored
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loaded = vgg_features("vgg19", ("relu1_1", "relu3_1"), weights=path)
    assert loaded.pretrained and loaded.source == str(path)
    x = torch.rand(1, 3, 16, 16)
    reference = source.features[:12](  # relu3_1 is features[11]
        (x - loaded.mean) / loaded.std)
    assert torch.equal(loaded(x)["relu3_1"], reference)


def test_wrong_or_missing_weights_are_checkpoint_errors(tmp_path):
    vgg16 = vgg_features("vgg16", ("pool5",))
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg16.features.state_dict().items()}, path)
    # VGG-16's 13 convolutions lie at other indices than VGG-19's 16: keys missing or reshaped.
    with pytest.raises(CheckpointError, match="missing|shapes"):
        vgg_features("vgg19", ("pool5",), weights=path)
    with pytest.raises(CheckpointError, match="no such"):
        vgg_features("vgg19", weights=tmp_path / "absent.pth")


def test_bad_names_and_inputs():
    with pytest.raises(UnknownNameError, match="vgg11"):
        vgg_features("vgg11")
    with pytest.raises(InvalidInputError, match="relu9_9"):
        vgg_features("vgg19", ("relu9_9",))
    with pytest.raises(InvalidInputError, match="N×3×H×W"):
        vgg_features("vgg16", ("relu1_1",))(torch.rand(1, 1, 8, 8))
