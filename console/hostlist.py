"""Slurm hostlist expressions: ``gpu[01-04,07],n1`` <-> a list of node names.

Slurm hands node sets around in this compressed form (a job's ``nodes``, a partition's
``nodes``), and joining a job's per-node ``gres_detail`` entries to telemetry needs the
expanded names in Slurm's own order. Zero padding follows Slurm: the width of a range is the
width of its lower bound as written (``09-10`` gives ``09, 10``; ``9-10`` gives ``9, 10``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

#: Refuse expressions that would expand past this many names (a typo such as ``n[1-999999999]``
#: must not eat the memory of the process that polls).
MAX_EXPANSION = 1_000_000

#: ASCII digits only, as `expand` reads them (\d also matches "٣"); at most 18 of them, which
#: int() reads quickly (a longer run leaves its head in the prefix).
_TAIL_NUMBER = re.compile(r"^(.*?)([0-9]{1,18})([^0-9]*)$")


class HostlistError(ValueError):
    """A malformed hostlist expression (unbalanced brackets, bad range)."""


def _split_top(text: str) -> list[str]:
    """Split on commas that are outside brackets."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise HostlistError(f"nested brackets in hostlist {text!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise HostlistError(f"unbalanced ']' in hostlist {text!r}")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise HostlistError(f"unbalanced '[' in hostlist {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def _expand_range_list(body: str, whole: str) -> list[str]:
    out: list[str] = []
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        lo, sep, hi = item.partition("-")
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses; and a number
        # of more than 18 digits is no node name (int() refuses more than 4,300 digits).
        if not _number(lo) or (sep and not _number(hi)):
            raise HostlistError(f"bad range {item[:40]!r} in hostlist {whole[:80]!r}")
        if not sep:
            out.append(lo)
            continue
        a, b = int(lo), int(hi)
        if b < a:
            raise HostlistError(f"descending range {item!r} in hostlist {whole[:80]!r}")
        if len(out) + b - a + 1 > MAX_EXPANSION:  # the whole bracket, not each range alone
            raise HostlistError(f"range {item!r} in hostlist {whole[:80]!r} is too large")
        width = len(lo)
        out.extend(str(n).zfill(width) for n in range(a, b + 1))
    return out


def expand(expr: str | None) -> list[str]:
    """Expand a hostlist expression into node names, in Slurm's order, duplicates kept."""
    if not expr:
        return []
    names: list[str] = []
    for term in _split_top(expr):
        pieces: list[list[str]] = []
        pos = 0
        for m in re.finditer(r"\[([^\]]*)\]", term):
            pieces.append([term[pos:m.start()]])
            pieces.append(_expand_range_list(m.group(1), expr))
            pos = m.end()
        pieces.append([term[pos:]])
        total = 1
        for p in pieces:
            total *= max(1, len(p))
        if total > MAX_EXPANSION or len(names) + total > MAX_EXPANSION:
            raise HostlistError(f"hostlist {expr!r} expands to too many names")
        names.extend("".join(combo) for combo in itertools.product(*pieces))
    return names


def compress(names: Iterable[str]) -> str:
    """Compress node names into one hostlist expression (groups in order of first appearance).

    Names that share a prefix and suffix around their last number are merged into one bracket;
    consecutive numbers of the same zero-padded width become ranges.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    plain: dict[str, None] = {}
    order: list[tuple[str, str] | str] = []
    for name in names:
        m = _TAIL_NUMBER.match(name)
        if not m:
            if name not in plain:
                plain[name] = None
                order.append(name)
            continue
        key = (m.group(1), m.group(3))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(m.group(2))
    out: list[str] = []
    for key in order:
        if isinstance(key, str):
            out.append(key)
            continue
        prefix, suffix = key
        nums = sorted(set(groups[key]), key=lambda s: (int(s), len(s)))
        ranges: list[tuple[str, str]] = []
        for s in nums:
            if ranges:
                lo, hi = ranges[-1]
                if int(s) == int(hi) + 1 and str(int(s)).zfill(len(lo)) == s:
                    ranges[-1] = (lo, s)
                    continue
            ranges.append((s, s))
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            out.append(f"{prefix}{ranges[0][0]}{suffix}")
            continue
        body = ",".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
        out.append(f"{prefix}[{body}]{suffix}")
    return ",".join(out)
