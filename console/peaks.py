"""Peak tensor throughput per GPU model and precision (TFLOPS, dense), from FACTS.md section 2.

Vendors print sparse figures (2x dense); the console's headline states its basis, and a site
chooses the basis that makes 100 % match its advertised petaflops. Models are matched on
substrings of dcgm-exporter's ``modelName`` label, most specific first.
"""

from __future__ import annotations

from collections.abc import Mapping

#: precision key -> words shown next to every PF figure
PRECISIONS: Mapping[str, str] = {
    "bf16_dense": "BF16 dense",
    "bf16_sparse": "BF16 sparse",
    "fp8_dense": "FP8 dense",
    "fp8_sparse": "FP8 sparse",
    "tf32_dense": "TF32 dense",
    "fp64": "FP64",
}

# model substring -> (fp64, tf32 dense, bf16 dense, fp8 dense, boost clock MHz)
_TABLE: tuple[tuple[str, tuple[float, float, float, float, float]], ...] = (
    ("GB200", (40.0, 1250.0, 2500.0, 5000.0, 2062.0)),
    ("B200", (37.0, 1100.0, 2250.0, 4500.0, 1965.0)),
    ("H800", (1.0, 494.5, 989.5, 1979.0, 1980.0)),
    ("H200", (34.0, 494.5, 989.0, 1979.0, 1980.0)),
    ("H100 PCIe", (26.0, 378.0, 756.0, 1513.0, 1755.0)),
    ("H100", (34.0, 494.7, 989.4, 1978.9, 1980.0)),
    ("H20", (1.0, 74.0, 148.0, 296.0, 1980.0)),
    ("A100", (9.7, 156.0, 312.0, 0.0, 1410.0)),
    ("L40S", (1.43, 183.0, 362.05, 733.0, 2520.0)),
    ("MI300X", (81.7, 653.7, 1307.4, 2614.9, 2100.0)),
)

DEFAULT_MODEL = "NVIDIA H800 80GB HBM3"

#: model substring -> board power (default power limit, W), FACTS.md section 2's Power column.
#: An enforced limit well below it means someone capped the GPU, whatever the GPU draws now.
_BOARD_POWER_W: tuple[tuple[str, float], ...] = (
    ("GB200", 1200.0),
    ("B200", 1000.0),
    ("H800", 700.0),
    ("H200", 700.0),
    ("H100 PCIe", 350.0),
    ("H100", 700.0),
    ("H20", 400.0),
    ("A100", 400.0),
    ("L40S", 350.0),
    ("MI300X", 750.0),
)


def _row(model: str) -> tuple[float, float, float, float, float] | None:
    for key, row in _TABLE:
        if key.lower() in model.lower():
            return row
    return None


def peak_tflops(model: str, precision: str = "bf16_dense",
                overrides: Mapping[str, float] | None = None) -> float:
    """Dense (or sparse, when asked) peak of one GPU at ``precision``; 0.0 for an unknown model.

    ``overrides`` maps model substrings to a site's own figure at the configured precision.
    """
    for key, value in (overrides or {}).items():
        if key.lower() in model.lower():
            return float(value)
    row = _row(model)
    if row is None:
        return 0.0
    fp64, tf32, bf16, fp8, _clock = row
    return {
        "bf16_dense": bf16, "bf16_sparse": 2 * bf16, "fp8_dense": fp8 or bf16,
        "fp8_sparse": 2 * (fp8 or bf16), "tf32_dense": tf32, "fp64": fp64,
    }.get(precision, bf16)


def boost_clock_mhz(model: str) -> float:
    row = _row(model)
    return row[4] if row else 0.0


def board_power_w(model: str) -> float:
    """The model's board power (its default power limit) in watts; NaN for an unknown model,
    so that an unknown GPU is never judged capped against a guessed figure."""
    for key, watts in _BOARD_POWER_W:
        if key.lower() in model.lower():
            return watts
    return float("nan")


#: Slurm gres type (``gpu:h100:8`` -> "h100"), normalised by `_gres_key`, -> the model name the
#: exporter would report, so that a node no exporter describes is peaked as what Slurm says it
#: holds rather than as the config's default. Sites name gres types freely; these are the usual
#: spellings. Most specific first: matched as a prefix of the normalised type.
_GRES_MODELS: tuple[tuple[str, str], ...] = (
    ("gb200", "NVIDIA GB200"),
    ("b200", "NVIDIA B200"),
    ("h100pcie", "NVIDIA H100 PCIe"),
    ("h100", "NVIDIA H100 80GB HBM3"),
    ("h800", "NVIDIA H800 80GB HBM3"),
    ("h200", "NVIDIA H200"),
    ("h20", "NVIDIA H20"),
    ("a100", "NVIDIA A100-SXM4-80GB"),
    ("l40s", "NVIDIA L40S"),
    ("mi300x", "AMD Instinct MI300X"),
    ("mi300", "AMD Instinct MI300X"),
)


def _gres_key(gres_type: str) -> str:
    """"H100_PCIe", "h100-pcie", "nvidia_h100" -> "h100pcie", "h100": vendor and separators
    carry no meaning in a gres type, the model and its variant do."""
    key = "".join(ch for ch in gres_type.lower() if ch.isalnum())
    for vendor in ("nvidia", "amd", "tesla", "instinct"):
        key = key.removeprefix(vendor)
    return key


def model_from_gres(gres_type: str) -> str:
    """The model name for a Slurm gres type ("h100" -> "NVIDIA H100 80GB HBM3"); "" when the
    type is empty or not one this table knows (the caller then falls back to the config)."""
    key = _gres_key(gres_type)
    if not key:
        return ""
    for prefix, model in _GRES_MODELS:
        if key.startswith(prefix):
            return model
    return ""


def precision_words(precision: str) -> str:
    return PRECISIONS.get(precision, precision)
