"""Numbers the Lamba architecture notebook must record at ``ci`` scale (exact paper counts)."""


def lamba_architecture(numbers):
    assert numbers["lamba_parameters"] == 784_768
    assert numbers["parameters_without_weight_norm"] == 783_432
    assert round(numbers["lamba_macs"] / 1e6) == 59_575
    assert round(numbers["lamba_macs_512"] / 1e5) == 12_884
    assert numbers["sid_parameters"] == 7_760_268
    assert round(numbers["sid_macs"] / 1e7) == 56_009
    blocks = numbers["block_macs"]
    assert sum(blocks.values()) == numbers["lamba_macs"]  # the five blocks are the whole network
    assert (numbers["bin_edges"], numbers["bin_weights"]) == (128, 127)
    assert abs(numbers["factor_of_constant_image"] - 50.0) < 1e-6  # released code: 0.05 / I


CHECKS = {"lamba/00_architecture": lamba_architecture}
