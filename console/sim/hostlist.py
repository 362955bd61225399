"""Slurm hostlist compression for the simulator's job ``node_list`` strings.

The real parser/compressor lives with the sources (``console/hostlist.py``); the simulator
only needs the compressing direction, and keeping a private copy avoids an import-order
dependency between two parts written side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NUM_TAIL = re.compile(r"^(.*?)(\d+)$")


def compress(names: Iterable[str]) -> str:
    """``["n0001", "n0002", "n0004"]`` -> ``"n[0001-0002,0004]"`` (Slurm's notation).

    Names keep their order of first appearance by prefix; numbers are sorted within a prefix
    and zero padding is preserved per run so the expression expands back to the same names.
    """
    groups: dict[tuple[str, int], list[int]] = {}
    plain: list[str] = []
    order: list[tuple[str, int] | str] = []
    for name in names:
        m = _NUM_TAIL.match(name)
        if not m:
            if name not in plain:
                plain.append(name)
                order.append(name)
            continue
        key = (m.group(1), len(m.group(2)))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(int(m.group(2)))
    parts: list[str] = []
    for key in order:
        if isinstance(key, str):
            parts.append(key)
            continue
        prefix, width = key
        nums = sorted(set(groups[key]))
        if len(nums) == 1:
            parts.append(f"{prefix}{nums[0]:0{width}d}")
            continue
        ranges: list[str] = []
        lo = prev = nums[0]
        for x in nums[1:] + [None]:  # type: ignore[list-item]
            if x is not None and x == prev + 1:
                prev = x
                continue
            ranges.append(f"{lo:0{width}d}" if lo == prev else f"{lo:0{width}d}-{prev:0{width}d}")
            if x is not None:
                lo = prev = x
        parts.append(f"{prefix}[{','.join(ranges)}]")
    return ",".join(parts)
