"""Slurm gres types name GPU models the peak table knows (issue 13: a `gpu:h100:8` node is an
H100, not the config's H800), however a site spells them."""

from __future__ import annotations

import pytest

from console.peaks import board_power_w, model_from_gres, peak_tflops


@pytest.mark.parametrize("gres_type, bf16_dense", [
    ("h100", 989.4), ("H100", 989.4), ("nvidia_h100", 989.4), ("h100_pcie", 756.0),
    ("h100-pcie", 756.0), ("h800", 989.5), ("h200", 989.0), ("h20", 148.0), ("a100", 312.0),
    ("a100_80g", 312.0), ("b200", 2250.0), ("gb200", 2500.0), ("mi300x", 1307.4),
    ("l40s", 362.05),
])
def test_gres_types_map_to_the_models_of_the_peak_table(gres_type: str, bf16_dense: float) -> None:
    model = model_from_gres(gres_type)
    assert peak_tflops(model, "bf16_dense") == bf16_dense
    assert board_power_w(model) > 0  # the model is one the power table knows as well


def test_h200_gb200_are_not_mistaken_for_their_prefixes() -> None:
    assert model_from_gres("h200") == "NVIDIA H200" and model_from_gres("h20") == "NVIDIA H20"
    assert model_from_gres("gb200") == "NVIDIA GB200" and model_from_gres("b200") == "NVIDIA B200"


@pytest.mark.parametrize("gres_type", ["", "tesla", "gpu", "v100", "rtx"])
def test_types_the_table_does_not_know_name_no_model(gres_type: str) -> None:
    # The caller falls back to the config's model and says so; no guess.
    assert model_from_gres(gres_type) == ""
