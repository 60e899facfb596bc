"""The authors' released Lamba: loading, parity with the official network's outputs, bad files.

Data: ../shared/official/lamba/ (weights.pth: the release's checkpoint; parity.pt: two inputs
and the official network's outputs for them, see its PROVENANCE.md). Skipped where absent,
failed under CI=true.
"""

import torch
import pytest
from conftest import OFFICIAL, shared_file

from llve.errors import CheckpointError
from llve.metrics import psnr
from llve.models import build
from llve.papers.lamba.inference import LambaInference
from llve.papers.lamba.network import from_official_state, official_key

WEIGHTS = OFFICIAL / "lamba" / "weights.pth"
PARITY = OFFICIAL / "lamba" / "parity.pt"
CASES = ("", "_amplified")  # parity.pt's two input/output pairs


@pytest.fixture(scope="module")
def released():
    return build("lamba", "paper", weights=shared_file(WEIGHTS)).eval()


@pytest.fixture(scope="module")
def parity():
    return torch.load(shared_file(PARITY), weights_only=True)


def test_every_official_key_maps_one_to_one_onto_the_paper_network():
    state = torch.load(shared_file(WEIGHTS), weights_only=True)["model"]
    mapped = from_official_state(state)
    ours = build("lamba", "paper").state_dict()
    assert len(state) == len(mapped) == len(ours) == 63
    assert set(mapped) == set(ours)
    for key, tensor in state.items():
        assert mapped[official_key(key)] is tensor  # no copies, no reshapes
        assert tensor.shape == ours[official_key(key)].shape


@pytest.mark.parametrize("case", CASES)
def test_training_form_equals_the_official_network(released, parity, case):
    with torch.no_grad():
        output = released(parity[f"input{case}"])
    assert (output - parity[f"output{case}"]).abs().max().item() <= 1e-6


@pytest.mark.parametrize("case", CASES)
def test_float64_training_form_equals_the_official_network(parity, case):
    model = build("lamba", "paper", weights=shared_file(WEIGHTS)).double().eval()
    with torch.no_grad():
        output = model(parity[f"input{case}"].double())
    # the official outputs are float32: their rounding bounds the difference
    assert (output - parity[f"output{case}"].double()).abs().max().item() <= 5e-6


@pytest.mark.parametrize("case", CASES)
def test_inference_form_equals_the_official_network(released, parity, case):
    output = LambaInference(released)(parity[f"input{case}"])
    assert (output - parity[f"output{case}"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("case", CASES)
def test_bfloat16_inference_form_is_close_to_the_official_network(released, parity, case):
    output = LambaInference(released, dtype=torch.bfloat16)(parity[f"input{case}"])
    quality = psnr(output, parity[f"output{case}"]).item()
    assert quality >= 35.0, f"bf16 PSNR against the official float32 output: {quality:.1f} dB"


def test_legacy_non_zip_file_loads(tmp_path):
    """The release's file is a legacy (pre-1.6, non-zip) torch file; it loads the same."""
    state = torch.load(shared_file(WEIGHTS), weights_only=True)
    legacy = tmp_path / "weights"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    a = build("lamba", "paper", weights=legacy).state_dict()
    b = build("lamba", "paper", weights=WEIGHTS).state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_bare_official_state_dict_loads_too(tmp_path):
    state = torch.load(shared_file(WEIGHTS), weights_only=True)["model"]
    torch.save(state, tmp_path / "bare.pth")
    build("lamba", "paper", weights=tmp_path / "bare.pth")


def test_truncated_file_is_refused_naming_it(tmp_path):
    data = shared_file(WEIGHTS).read_bytes()
    truncated = tmp_path / "weights.pth"
    truncated.write_bytes(data[:len(data) // 3])
    with pytest.raises(CheckpointError, match="weights.pth"):
        build("lamba", "paper", weights=truncated)


def test_official_weights_into_another_configuration_name_the_mismatch():
    with pytest.raises(CheckpointError, match="size mismatch|Missing|Unexpected"):
        build("lamba", "small", weights=shared_file(WEIGHTS))


def test_a_file_of_another_network_is_refused(tmp_path):
    torch.save({"model": {"encoder.0.weight_g": torch.ones(1)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no Lamba layer"):
        build("lamba", "paper", weights=tmp_path / "other.pth")
    torch.save({"something": torch.ones(1)}, tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="neither an llve checkpoint"):
        build("lamba", "paper", weights=tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="no such"):
        build("lamba", "paper", weights=tmp_path / "missing.pth")
