"""How the health map groups nodes into labelled blocks when the site names no racks.

Racks are physical facts (a cooling failure is "in rack R07"), so a node's rack is only ever
what the config or the exporter's rack label says; a node with neither is in the fallback
rack `UNRACKED`. Drawn as one block, such nodes are an unnamed pile of rows nobody can tell
apart. This module finds a *display* grouping for them from the host names alone, without
making the groups racks (the analytics must not call "gpu" a hot rack):

* by hostname prefix: ``gpu01..gpu32`` -> ``gpu``, ``dgx-a-001`` -> ``dgx-a``, domains dropped
  (``gpu01.cluster.local`` -> ``gpu``);
* a prefix that holds more than `BLOCK` nodes is cut into numbered blocks of `BLOCK`
  consecutive numbers (``n0001-0032``), so 4,096 nodes are 128 blocks, not one column;
* names with no shared pattern are cut into blocks of `BLOCK` in name order.

A name from the config or a rack label always wins. The groups are deterministic: the same
set of names gives the same groups in any order, and a block's members depend on the node
numbers, not on how many nodes exist, so nodes appearing one by one never move an existing
node to another numbered block. Pure Python and numpy: no Qt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from console.model import Topology

#: The rack name the cluster state gives a node that neither the config nor a label places.
UNRACKED = "unracked"
#: Nodes per numbered block: a prefix with more nodes than this is cut into blocks.
BLOCK = 32
#: Grouping by prefix is useless when most nodes would sit alone in a group of their own.
_MAX_LONE_NODES = 3

RANGE_DASH = "\u2013"  # en dash: "gpu001–032" reads as a range, not as part of a name

_LAST_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")
_IPV4 = re.compile(r"^\d+(\.\d+){3}$")
_DIGITS = re.compile(r"(\d+)")

RACK_SOURCE_WORDS = {
    "config": "racks from config",
    "label": "racks from the exporter's rack label",
    "simulator": "racks from the simulator",
    "": "by rack",
}


@dataclass(frozen=True, eq=False)
class Grouping:
    """Blocks of the health map: their labels in drawing order and each node's block."""

    names: tuple[str, ...]
    node_group: np.ndarray  # int32[n_nodes]: index into `names`
    how: str  # in words, for the legend: how these groups were chosen

    def members(self, i: int) -> np.ndarray:
        """Node indices of group ``i``, in topology order."""
        return np.flatnonzero(self.node_group == i)


def natural_key(name: str) -> tuple:
    """Sort key that puts gpu2 before gpu10 (numbers compared as numbers)."""
    # isdecimal, not isdigit: "²" is a digit to Python but not a number int() can read.
    return tuple((0, int(p), "") if p.isdecimal() else (1, 0, p) for p in _DIGITS.split(name) if p)


def short_name(name: str) -> str:
    """The host part of a node name: ``gpu01.cluster.local`` -> ``gpu01``; an IPv4 address
    stays whole (its dots are not a domain)."""
    if _IPV4.match(name):
        return name
    return name.split(".", 1)[0] or name


def row_labels(names: Sequence[str]) -> tuple[str, ...]:
    """The text for each node's row: the short host names when they stay unique, else the
    names as given (two nodes must never carry the same label)."""
    short = tuple(short_name(n) for n in names)
    return short if len(set(short)) == len(set(names)) else tuple(names)


@dataclass(frozen=True)
class _Parsed:
    prefix: str  # text before the last number, as written ("dgx-a-")
    digits: str  # the last number as written ("001"), "" when the name has none
    suffix: str  # text after it ("-ib")

    @property
    def stem(self) -> tuple[str, str]:
        return self.prefix, self.suffix

    @property
    def stem_label(self) -> str:
        if not self.digits:
            return self.prefix
        base = self.prefix.rstrip("-_.")
        if self.suffix:
            return f"{self.prefix}#{self.suffix}"
        return base or "#"


def _parse(name: str) -> _Parsed:
    short = short_name(name)
    m = _LAST_NUMBER.match(short)
    if m is None:
        return _Parsed(short, "", "")
    return _Parsed(m.group(1), m.group(2), m.group(3))


def _range_label(members: Sequence[_Parsed]) -> str:
    """``gpu001–032`` from the lowest and highest number present (one member: its name)."""
    lo = min(members, key=lambda p: int(p.digits))
    hi = max(members, key=lambda p: int(p.digits))
    if lo is hi or lo.digits == hi.digits:
        return f"{lo.prefix}{lo.digits}{lo.suffix}"
    return f"{lo.prefix}{lo.digits}{RANGE_DASH}{hi.digits}{lo.suffix}"


def auto_groups(names: Sequence[str]) -> tuple[list[str], str]:
    """A group label for each of ``names`` (nodes without a rack) and the words for how
    ("grouped by hostname prefix").

    The labels depend only on the set of names, never on their order.
    """
    if not names:
        return [], ""
    parsed = [_parse(n) for n in names]
    by_stem: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(parsed):
        by_stem.setdefault(p.stem, []).append(i)
    lone = sum(1 for m in by_stem.values() if len(m) == 1)
    if lone > _MAX_LONE_NODES and lone * 2 > len(names):
        return _order_groups(names)
    labels = [""] * len(names)
    split = False
    for stem, idx in by_stem.items():
        numbered = [i for i in idx if parsed[i].digits]
        if len(idx) <= BLOCK or not numbered:
            for i in idx:
                labels[i] = parsed[i].stem_label
            continue
        split = True
        base = 0 if any(int(parsed[i].digits) == 0 for i in numbered) else 1
        blocks: dict[int, list[int]] = {}
        for i in numbered:
            blocks.setdefault((int(parsed[i].digits) - base) // BLOCK, []).append(i)
        for members in blocks.values():
            label = _range_label([parsed[i] for i in members])
            for i in members:
                labels[i] = label
        for i in idx:  # a name equal to the bare prefix ("gpu" among gpu001..gpu512)
            if not parsed[i].digits:
                labels[i] = parsed[i].stem_label
    how = "grouped by hostname prefix"
    if split:
        how += f", up to {BLOCK} nodes per block"
    return labels, how


def _order_groups(names: Sequence[str]) -> tuple[list[str], str]:
    """Names with no shared pattern: blocks of BLOCK in natural name order."""
    order = sorted(range(len(names)), key=lambda i: natural_key(names[i]))
    labels = [""] * len(names)
    if len(names) <= BLOCK:
        for i in order:
            labels[i] = "nodes"
        return labels, "in one block, one row per node"
    for start in range(0, len(order), BLOCK):
        chunk = order[start:start + BLOCK]
        label = f"{short_name(names[chunk[0]])}{RANGE_DASH}{short_name(names[chunk[-1]])}"
        for i in chunk:
            labels[i] = label
    return labels, f"grouped in name order, {BLOCK} nodes per block"


def is_fallback_rack(rack: int, rack_names: Sequence[str], rack_source: Sequence[str] = ()) -> bool:
    """True when rack index ``rack`` is the pile of nodes nobody placed, not a real rack."""
    if rack_source and 0 <= rack < len(rack_source):
        return rack_source[rack] == ""
    return not (0 <= rack < len(rack_names)) or rack_names[rack] == UNRACKED


def group_nodes(node_names: Sequence[str], node_rack: np.ndarray, rack_names: Sequence[str],
                rack_source: Sequence[str] = (), simulated: bool = False) -> Grouping:
    """Racked nodes by their rack (in rack order), the rest by `auto_groups`, after them.

    ``rack_source`` gives, per rack, where its name came from ("config", "label", or "" for
    the fallback rack); without it (a topology built by hand) only a rack named `UNRACKED`
    counts as no rack. ``simulated`` words a labelled rack as the simulator's.
    """
    racks = np.asarray(node_rack, np.int64)
    n = len(node_names)
    loose = [i for i in range(n) if is_fallback_rack(int(racks[i]), rack_names, rack_source)]
    loose_set = set(loose)
    racked_ids = sorted({int(racks[i]) for i in range(n) if i not in loose_set})
    names: list[str] = [rack_names[r] for r in racked_ids]
    index = {r: k for k, r in enumerate(racked_ids)}
    node_group = np.zeros(n, np.int32)
    for i in range(n):
        if i not in loose_set:
            node_group[i] = index[int(racks[i])]
    sources = {(rack_source[r] if r < len(rack_source) else "") for r in racked_ids}
    if simulated:
        sources = {"simulator" if s == "label" else s for s in sources}
    order = tuple(RACK_SOURCE_WORDS)
    rack_words = "; ".join(RACK_SOURCE_WORDS[s] for s in sorted(
        {s if s in RACK_SOURCE_WORDS else "" for s in sources}, key=order.index))
    if not loose:
        return Grouping(tuple(names), node_group, rack_words)
    labels, how = auto_groups([node_names[i] for i in loose])
    auto_names = sorted(set(labels), key=natural_key)
    auto_index = {name: len(names) + k for k, name in enumerate(auto_names)}
    names.extend(auto_names)
    for i, label in zip(loose, labels):
        node_group[i] = auto_index[label]
    if racked_ids:
        nodes = "node" if len(loose) == 1 else "nodes"
        how = f"{rack_words}; {len(loose):,} {nodes} without a rack {how}"
    else:
        how += " (no rack labels)"
    return Grouping(tuple(names), node_group, how)


def group_topology(topology: Topology, simulated: bool = False) -> Grouping:
    """`group_nodes` for a topology (its `rack_source` when the state filled it in)."""
    return group_nodes(topology.node_names, topology.node_rack, topology.rack_names,
                       getattr(topology, "rack_source", ()), simulated)
