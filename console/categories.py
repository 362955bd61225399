"""Category columns: a column of repeated values (accounts, partitions, users, reasons) as
small integer codes plus the distinct values, numbered in order of first appearance.

Both the live job table (slurmrestd's /jobs) and the accounting table (slurmdbd's jobs of a
period) store their text columns this way: tens of thousands of rows share a few hundred
values, and codes make grouping a numpy operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class FirstSeen(dict):
    """value -> its code, numbered in order of first appearance (a new value takes the next).

    A dict subclass so that ``map(first_seen.__getitem__, values)`` runs in C for every value
    already seen; Python runs only once per new value (`__missing__`)."""

    def __missing__(self, key: Any) -> int:
        code = self[key] = len(self)
        return code


def category_codes(values: Sequence[Any]) -> tuple[np.ndarray, tuple[Any, ...]]:
    """(int32 codes, the distinct values in order of first appearance) of ``values``."""
    seen = FirstSeen()
    codes = np.fromiter(map(seen.__getitem__, values), np.int32, len(values))
    return codes, tuple(seen)
