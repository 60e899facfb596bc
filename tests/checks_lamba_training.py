"""Numbers the Lamba training notebook must record (``notebooks/lamba/10_training.py``)."""

import math

MODELS = ("lamba", "sid_unet")


def lamba_training(numbers):
    # Crops and augmentations never change the CFA phase (the probe's top-left block stays put).
    assert numbers["patterns_seen"] == ["RGGB"]
    assert numbers["augmentation_kinds"] > 1
    for model in MODELS:
        assert numbers[f"{model}_steps"] == numbers["iterations"]
        assert numbers[f"{model}_checkpoints"] >= 1
        assert numbers[f"{model}_final_checkpoint"] == f"step_{numbers['iterations']:08d}.pt"
        first, last = numbers[f"{model}_first_loss"], numbers[f"{model}_last_loss"]
        assert math.isfinite(first) and math.isfinite(last) and last > 0
        assert math.isfinite(numbers[f"{model}_test_psnr"])
        # The model learns, at every scale: its loss on the first batch (one it trained on)
        # is lower after training than at its initialisation with the same seed.
        learning = numbers["learning"][model]
        assert learning["trained_loss"] < learning["initial_loss"], (model, learning)


CHECKS = {"lamba/10_training": lamba_training}
