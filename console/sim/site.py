"""The simulated centre's rows, PDUs and leaf switches, named the way a site config names them.

Layout, for 8-GPU H800-class nodes of about 10 kW each, eight to a rack (~80 kW a rack):

- rows of eight racks (A, B, ...), sharing a row's cooling (CRAH units, containment);
- two PDUs per rack, ``R01-PDU-A`` feeding the rack's lower half and ``R01-PDU-B`` the upper
  half: one rack PDU carries some 40-60 kW, so an 80 kW rack needs at least two, and one PDU per
  pair of racks (160 kW) is not a rack PDU at all. Each simulated node hangs off one PDU (the
  failure domain a trip exposes: single-corded, or both cords on the same upstream breaker);
- one Ethernet leaf switch per 32 nodes (``leaf-01``...): 32 host ports plus uplinks fill a
  48-port top-of-row leaf, and it is the network Slurm and the exporters are reached over.

So a PDU trip is half a rack and a switch failure four racks: neither looks like a rack.
"""

from __future__ import annotations

import math
import string

from console.config import SiteTopology

RACKS_PER_ROW = 8
NODES_PER_SWITCH = 32


def node_name(i: int) -> str:
    return f"n{i + 1:04d}"


def rack_name(r: int) -> str:
    return f"R{r + 1:02d}"


def row_name(k: int) -> str:
    letters = string.ascii_uppercase
    return letters[k] if k < 26 else letters[k // 26 - 1] + letters[k % 26]


def sim_site(nodes: int, nodes_per_rack: int = 8) -> SiteTopology:
    """Rows, PDUs and switches of a simulated cluster of ``nodes`` nodes."""
    n_racks = math.ceil(nodes / nodes_per_rack)
    rows: dict[str, tuple[str, ...]] = {}
    for r in range(n_racks):
        rows.setdefault(row_name(r // RACKS_PER_ROW), ())
        rows[row_name(r // RACKS_PER_ROW)] += (rack_name(r),)
    pdus: dict[str, tuple[str, ...]] = {}
    half = max(1, math.ceil(nodes_per_rack / 2))
    for r in range(n_racks):
        members = range(r * nodes_per_rack, min((r + 1) * nodes_per_rack, nodes))
        for side, lo in (("A", 0), ("B", half)):
            names = tuple(node_name(i) for i in members if lo <= i - r * nodes_per_rack < lo + half)
            if names:
                pdus[f"{rack_name(r)}-PDU-{side}"] = names
    switches = {f"leaf-{k + 1:02d}": tuple(node_name(i) for i in range(k * NODES_PER_SWITCH,
                                                                       min((k + 1) * NODES_PER_SWITCH, nodes)))
                for k in range(math.ceil(nodes / NODES_PER_SWITCH))}
    return SiteTopology(rows=rows, pdus=pdus, switches=switches)
