"""Types of the compiled CAD OSE core (``_cad_ose.c``); see `context_ose` for the detector."""

from collections.abc import Sequence
from typing import SupportsFloat

class ContextOSE:
    """CAD OSE for one series, compiled: the same scores as `context_ose.PythonContextOSE`."""

    rest_period: float
    base_threshold: float
    max_left_len: int
    max_active: int
    num_bits: int
    max_contexts: int
    n_rebuilds: int

    def __init__(self, min_value: float, max_value: float, *, rest_period: float = 30,
                 base_threshold: float = 0.75, max_left_semi_contexts_length: int = 7,
                 max_active_neurons: int = 15, num_norm_value_bits: int = 3,
                 max_contexts: int = 0, replay: int = 0) -> None: ...
    def step(self, value: SupportsFloat) -> float: ...
    @property
    def n_contexts(self) -> int: ...
    @property
    def min_value(self) -> float: ...
    @property
    def max_value(self) -> float: ...

def py2_tuple_hash(items: Sequence[int]) -> int: ...
