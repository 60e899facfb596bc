"""RAFT-small: the released model's parameter count, its official weights, parity with the
official code's flows on real frames (../shared/official/raft_small/parity.pt), padding, and
checkpoint errors.

The checks every registered model shares (forward, gradients, state dict, seeds, invalid
input, presets, llve checkpoints) are in tests/test_models_contract.py.
"""

import pytest
import torch
import torch.nn.functional as F
from conftest import OFFICIAL, shared_file

from llve.complexity import count_parameters
from llve.errors import CheckpointError, InvalidInputError
from llve.models import build
from llve.models.raft import Raft, official_key

PARITY_TOLERANCE = 1e-3  # px, max abs error against the official flows


def weights_path():
    return shared_file(OFFICIAL / "raft_small" / "raft-small.pth")


def official_state() -> dict[str, torch.Tensor]:
    return torch.load(weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def released():
    """The paper preset with the official weights, in eval mode."""
    return build("raft_small", "paper", weights=weights_path()).eval()


@pytest.fixture(scope="module")
def parity():
    return torch.load(shared_file(OFFICIAL / "raft_small" / "parity.pt"), weights_only=True)


def test_paper_parameter_count():
    with torch.device("meta"):
        model = Raft()
    assert count_parameters(model) == 990_162


def test_official_key_maps_every_parameter_onto_the_release_layout():
    model = build("raft_small", "paper")
    assert official_key("feature_encoder.stages.1.0.shortcut.weight") == \
        "fnet.layer2.0.downsample.0.weight"
    assert official_key("update.gru.update_gate.bias") == "update_block.gru.convz.bias"
    state = official_state()
    mapped = {f"module.{official_key(key)}": value.shape
              for key, value in model.state_dict().items()}
    assert mapped == {key: value.shape for key, value in state.items()}


def test_build_loads_the_official_weights_strictly(released):
    state = official_state()
    for key, value in released.state_dict().items():
        assert torch.equal(value, state[f"module.{official_key(key)}"]), key


def test_state_dict_without_the_data_parallel_prefix_also_loads(tmp_path):
    state = {key.removeprefix("module."): value for key, value in official_state().items()}
    path = tmp_path / "unprefixed.pth"
    torch.save(state, path)
    model = build("raft_small", "paper", weights=path)
    assert torch.equal(model.update.flow_head.out.bias, state["update_block.flow_head.conv2.bias"])


@pytest.mark.parametrize("pair", ["", "_motion"])  # frames 30->31 (static), 207->208 (a car)
def test_parity_with_the_official_flows(released, parity, pair):
    with torch.no_grad():
        low, up = released.flows(parity[f"image1{pair}"], parity[f"image2{pair}"],
                                 iterations=12)
    assert low.shape == parity[f"flow_low{pair}"].shape
    assert up.shape == parity[f"flow_up{pair}"].shape
    assert (low - parity[f"flow_low{pair}"]).abs().max() <= PARITY_TOLERANCE
    assert (up - parity[f"flow_up{pair}"]).abs().max() <= PARITY_TOLERANCE
    with torch.no_grad():  # forward is the full-resolution flow, 12 iterations by default
        assert torch.equal(released(parity[f"image1{pair}"], parity[f"image2{pair}"]), up)


def test_size_not_divisible_by_8_is_replicate_padded_and_cropped_back(released, parity):
    image1 = parity["image1_motion"][..., 3:253, 5:446]  # 250×441: pads 6 rows, 7 columns
    image2 = parity["image2_motion"][..., 3:253, 5:446]
    with torch.no_grad():
        flow = released(image1, image2, iterations=4)
        assert flow.shape == (1, 2, 250, 441) and torch.isfinite(flow).all()
        # The same as padding by hand the way the release's InputPadder ('sintel') does.
        pads = (3, 4, 3, 3)  # left, right, top, bottom
        padded = released(F.pad(image1, pads, mode="replicate"),
                          F.pad(image2, pads, mode="replicate"), iterations=4)
    assert torch.allclose(flow, padded[..., 3:253, 3:444], atol=1e-4)


def test_wrong_files_are_checkpoint_errors(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth"):
        build("raft_small", "paper", weights=text)
    with pytest.raises(CheckpointError, match=r"Missing keys \(106\)"):
        build("raft_small", "paper", weights=shared_file(OFFICIAL / "raft_small" / "parity.pt"))
    state = official_state()
    del state["module.update_block.gru.convq.bias"]
    state["module.extra.weight"] = torch.zeros(1)
    incomplete = tmp_path / "incomplete.pth"
    torch.save(state, incomplete)
    with pytest.raises(CheckpointError, match="update_block.gru.convq.bias") as error:
        build("raft_small", "paper", weights=incomplete)
    assert "extra.weight" in str(error.value)
    with pytest.raises(CheckpointError, match="size mismatch.*fnet.conv1.weight"):
        build("raft_small", "tiny", weights=weights_path())


def test_bad_frames_are_refused():
    model = build("raft_small", "tiny")
    frame = torch.rand(1, 3, 40, 48) * 255
    second = frame.clone()
    second[0, 0, 5, 5] = float("nan")
    with pytest.raises(InvalidInputError, match="image2.*NaN"):
        model(frame, second)
    with pytest.raises(InvalidInputError, match="differ in shape"):
        model(frame, frame[..., :40])
    with pytest.raises(InvalidInputError, match="N×3×H×W"):
        model(frame[:, :1], frame[:, :1])
    with pytest.raises(InvalidInputError, match="too small"):
        build("raft_small", "paper")(frame, frame)  # 1/8 is 5×6: no 4th pyramid level
