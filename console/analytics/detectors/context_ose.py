"""CAD OSE: the Contextual Anomaly Detector, Open Source Edition, as NAB runs it ("contextOSE").

A faithful port of Mikhail Smirnov's detector as published in the Numenta Anomaly Benchmark
(numenta/NAB, ``nab/detectors/context_ose/cad_ose.py`` and ``context_operator.py``, MIT
licence), restructured for speed. It reproduces the scores NAB recorded for it, row for row.

How it works. Each value is quantised into ``2**3`` bins between the series' minimum and
maximum; the bin's three bits become three *sensor facts*. The detector remembers *contexts*:
pairs (left facts -> right facts) where the left side is what was true one step ago (the
previous sensor facts plus the ids of the contexts that were active then, the *neuron facts*)
and the right side is the sensor facts now. Every step it asks which remembered contexts the
present matches, and learns new ones from the overlaps of old ones. The raw score mixes two
surprises: the share of the selected contexts that did *not* come true, and the share of
candidate contexts that were new. After a score of 0.75 or more the detector stays silent for
``rest_period`` steps.

Why the port needs care to be faithful. The published scores were produced under Python 2.7,
and the algorithm depends on two things that changed in Python 3:

* contexts are ranked by ``(count, hash(left facts), hash(right facts))`` to pick the fifteen
  that become neuron facts, so ties are broken by Python 2's tuple hash; `py2_tuple_hash`
  reproduces it;
* new contexts get ids in the order a left side's dictionary of contexts is iterated, which in
  Python 2 is the order of the hash table's slots, not the insertion order; `_SlotOrder`
  reproduces that order for the small-integer keys used here.

With both, the port reproduces NAB's recorded stream on every row of the 42 files checked
(``benchmarks/bench_context_ose.py``; one file needs its values read as NAB's 2016 pandas read
them, one unit in the last place apart on one value). With Python 3's hash and dict order the
original code reproduces only 18-59% of the rows of the files tried.

Why it is fast. The original scans every remembered semi-context twice per step and every
context of every matched left side once. Here each left side keeps a bit mask of its facts;
the fully matched left sides are found through an index by their largest fact and remembered
per group; the active contexts are remembered per (group, sensor pattern), which every step
that adds no zero-level context revisits, so only contexts created since are checked; counts
and the ranking live in numpy arrays; and candidate contexts are built only from left sides
that hold a zero-level context, each remembering its overlaps per sensor pattern. The results
are the same; the cost per step falls from about a millisecond to tens of microseconds.

By default memory grows as in the original: every new situation adds contexts and none is
forgotten (NAB's art_noisy: 64,000 contexts after 4,032 rows, and milliseconds per step by
then). The memos are capped (`_MEMO_LIMIT` entries, then cleared). ``max_contexts`` bounds the
memory of contexts too, at the price of departing from the published scores once a series
reaches it: past the cap the memory is forgotten and rebuilt from the last ``replay`` values
(`PythonContextOSE._rebuild` says why a rebuild and not the eviction of single contexts).
Below the cap the scores are the original's. The bound holds memory, not the cost of a step:
a series of noise that fills its range meets a new situation every step, and costs hundreds
of microseconds a step at any cap in Python (tens compiled).

NAB gives the detector the file's minimum and maximum (``inputMin``/``inputMax``, a look at the
whole file that only fixes the quantisation) and ``restPeriod = probationaryPeriod / 5`` with
``probationaryPeriod = min(floor(0.15 * rows), 0.15 * 5000)``; `nab_rest_period` computes it.
Live, the console passes the range it expects for the metric. Values outside the range are
handled exactly as the original does (above the maximum they add a fourth bit); a missing
value (NaN, or an infinity that cannot be quantised) is unknown: it scores NaN and leaves the
detector's memory untouched. As in the original, ``rest_period`` below 1 silences the detector
for good (its look-back then spans the whole history, which starts with a 1.0).

Two cores, one detector. `PythonContextOSE` is this port, the reference. ``_cad_ose.c`` is the
same algorithm compiled (an optional extension that ``pip install`` builds when a C compiler is
there): the same scores, float for float, at a few microseconds a step, which the live
console's budget needs (64 series, at most 50 us per series per step for the whole ensemble).
`ContextOSE`, the name everything else uses (the ensemble, the NAB runner, the benchmarks), is
the compiled core when it is importable and the Python one otherwise;
``AISC_PURE_PYTHON_CAD_OSE=1`` in the environment forces the Python one. `BACKEND` says which
is in use ("c" or "python") and `NATIVE_UNAVAILABLE` why the compiled one is not (None when it
is in use).
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from console.analytics.detectors import _cad_ose

__all__ = ["BACKEND", "ContextOSE", "ContextOSEBank", "PythonContextOSE", "nab_rest_period",
           "py2_tuple_hash"]

_MASK64 = (1 << 64) - 1
_NEURON_BASE = 2**31  # neuron facts are 2**31 + context id, above every sensor fact
_MEMO_LIMIT = 4096  # groups (and group/pattern pairs) whose matches are remembered


def py2_tuple_hash(items: tuple[int, ...]) -> int:
    """Python 2.7's ``hash()`` of a tuple of non-negative ints on a 64-bit build.

    The published NAB scores break ties between equally often active contexts by this hash,
    so a faithful port must compute it (Python 3 hashes tuples differently).
    """
    x = 0x345678
    mult = 1000003
    n = len(items)
    for y in items:  # hash(int) == int for the small non-negative ints used here
        n -= 1
        x = ((x ^ y) * mult) & _MASK64
        mult = (mult + 82520 + n + n) & _MASK64
    x = (x + 97531) & _MASK64
    if x >= 1 << 63:
        x -= 1 << 64
    return -2 if x == -1 else x


def nab_rest_period(n_rows: int, probationary_percent: float = 0.15) -> float:
    """The rest period NAB passes to CAD OSE for a file of ``n_rows`` rows.

    NAB computes ``min(floor(p * rows), p * 5000) / 5.0`` in floating point; the detector
    truncates it to an int. Kept in floats so that the truncation matches NAB's exactly.
    """
    probation = min(math.floor(probationary_percent * n_rows), probationary_percent * 5000)
    return probation / 5.0


class _SlotOrder:
    """The iteration order Python 2.7 gives a dict of small non-negative int keys.

    Emulates the open-addressing table (size 8, grown to the next power of two above
    4 * used when two thirds full, probing ``i = 5*i + perturb + 1``, ``perturb >>= 5``) for
    insertions only, which is all the detector does. ``pos[key]`` is the key's slot.
    """

    __slots__ = ("mask", "slots", "pos")

    def __init__(self) -> None:
        self.mask = 7
        self.slots: list[int | None] = [None] * 8
        self.pos: dict[int, int] = {}

    def _place(self, key: int) -> None:
        slots = self.slots
        mask = self.mask
        i = key & mask
        if slots[i] is not None:
            perturb = key
            while True:
                i = (i << 2) + i + perturb + 1
                if slots[i & mask] is None:
                    i &= mask
                    break
                perturb >>= 5
        slots[i] = key
        self.pos[key] = i

    def add(self, key: int) -> bool:
        """Insert a key known to be new; True if the table grew (positions moved)."""
        self._place(key)
        used = len(self.pos)
        if used * 3 >= (self.mask + 1) * 2:
            size = 8
            while size <= 4 * used:
                size <<= 1
            old = [k for k in self.slots if k is not None]
            self.mask = size - 1
            self.slots = [None] * size
            self.pos = {}
            for k in old:
                self._place(k)
            return True
        return False


class _LeftSide:
    """One left semi-context: a set of facts, and the contexts that start from it."""

    __slots__ = ("facts", "bits", "ctx", "order", "zero", "zero_sorted", "zero_key", "active",
                 "crosses", "zver")

    def __init__(self, facts: tuple[int, ...], bits: int) -> None:
        self.facts = facts
        self.bits = bits  # facts as a bit mask over PythonContextOSE._fact_bit
        self.ctx: dict[int, int] = {}  # right side id -> context id
        self.order = _SlotOrder()  # Python 2 iteration order of ``ctx``
        self.zero: list[int] = []  # right side ids whose context is zero-level
        self.zero_sorted: list[int] = []
        self.zver = 0  # bumped when ``zero`` grows or ``order`` moves its slots
        self.zero_key = -1  # the zver that zero_sorted was made for
        # Per sensor pattern: (len(ctx) when computed, ids of contexts whose right side the
        # pattern fully matches). Contexts are only ever added, so the length dates it.
        self.active: dict[int, tuple[int, list[int]]] = {}
        # Per sensor pattern: (zero_key when computed, overlaps with the pattern of the
        # zero-level contexts' right sides in order without repeats: [all, not fully matched]).
        self.crosses: dict[int, tuple[int, list[list[tuple[int, ...]]]]] = {}

    def zero_in_order(self) -> list[int]:
        """Right side ids of the zero-level contexts, in Python 2 dict iteration order."""
        if self.zver != self.zero_key:
            self.zero_sorted = sorted(self.zero, key=self.order.pos.__getitem__)
            self.zero_key = self.zver
        return self.zero_sorted

    def zero_crosses(self, sens_mask: int, right_cross: list[tuple[int, ...]],
                     right_full: list[bool]) -> list[list[tuple[int, ...]]]:
        """The non-empty overlaps of this side's zero-level right sides with the present
        sensor pattern, in order and without repeats: [all of them, those of right sides the
        pattern does not fully match]. Remembered per pattern until the side changes."""
        memo = self.crosses.get(sens_mask)
        if memo is not None and memo[0] == self.zver:
            return memo[1]
        order = self.zero_in_order()
        every = list(dict.fromkeys([right_cross[r] for r in order if right_cross[r]]))
        partial = list(dict.fromkeys([right_cross[r] for r in order
                                      if right_cross[r] and not right_full[r]]))
        lists = [every, partial]
        self.crosses[sens_mask] = (self.zver, lists)
        return lists


class PythonContextOSE:
    """CAD OSE for one series: ``step(value)`` returns its raw anomaly score in [0, 1].

    ``min_value``/``max_value`` fix the quantisation (NAB: the file's minimum and maximum).
    ``rest_period`` is how many steps stay silent after a score of ``base_threshold`` or more
    (NAB: `nab_rest_period` of the file's length; the original's default is 30). The other
    settings are the original's, with its defaults. ``max_contexts`` > 0 bounds the memory
    (rebuilt from the last ``replay`` values when it is exceeded); 0, the default, is the
    published, unbounded detector. Not thread-safe: one owner steps it.
    """

    def __init__(self, min_value: float, max_value: float, *, rest_period: float = 30,
                 base_threshold: float = 0.75, max_left_semi_contexts_length: int = 7,
                 max_active_neurons: int = 15, num_norm_value_bits: int = 3,
                 max_contexts: int = 0, replay: int = 0) -> None:
        if not (math.isfinite(min_value) and math.isfinite(max_value)) or max_value < min_value:
            raise ValueError(f"need a finite range with min <= max, got [{min_value}, {max_value}]")
        if rest_period < 0:
            raise ValueError(f"rest_period must be >= 0, got {rest_period}")
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self.rest_period = rest_period
        self.base_threshold = base_threshold
        self.max_left_len = max_left_semi_contexts_length
        self.max_active = max_active_neurons
        self.num_bits = num_norm_value_bits
        max_bin = 2.0**num_norm_value_bits - 1.0
        full_range = self.max_value - self.min_value
        if full_range == 0.0:
            full_range = max_bin
        self._step_size = full_range / max_bin
        # Sensor facts of each in-range bin, precomputed (fact = 2 * bit position + bit).
        self._bin_facts = [self._facts_of_bin(b) for b in range(2**num_norm_value_bits)]
        if max_contexts < 0 or replay < 0:
            raise ValueError(f"max_contexts and replay must be >= 0, got {max_contexts}, {replay}")
        # Bounded memory (0 = the original's, unbounded): past ``max_contexts`` contexts the
        # memory is rebuilt from the last ``replay`` values (see `_rebuild`).
        self.max_contexts = int(max_contexts)
        self.n_rebuilds = 0
        self._recent: deque[tuple[int, ...]] | None = (
            deque(maxlen=int(replay)) if max_contexts > 0 and replay > 0 else None)
        self._clear_memory()
        # Rest period: history length and index of the last score >= base_threshold.
        self._n_history = 1  # the original seeds its history with a 1.0
        self._last_high = 0

    def _clear_memory(self) -> None:
        """Forget every context (the detector's state apart from its rest period)."""
        # Memory: left sides, right sides, contexts (parallel lists indexed by id).
        self._left: list[_LeftSide] = []
        self._left_id: dict[int, int] = {}  # py2 hash of facts -> left id
        self._left_by_top: dict[int, list[int]] = {}  # largest fact -> left ids
        self._left_zero: list[int] = []  # sorted ids of left sides with a zero-level context
        self._left_zero_bits: list[int] = []  # and their fact masks, in the same order
        self._fact_bit: dict[int, int] = {}  # fact -> its bit in _LeftSide.bits
        self._right_facts: list[tuple[int, ...]] = []
        self._right_mask: list[int] = []  # right facts as a mask of 1 << fact
        self._right_id: dict[int, int] = {}  # py2 hash of facts -> right id
        # Per context: activation count and the two hashes that break ties between equal
        # counts, in numpy arrays so a step's few hundred active contexts are counted and
        # ranked in a handful of vector operations (grown by doubling).
        self._n_ctx = 0
        self._cnt = np.zeros(1024, dtype=np.int64)
        self._lh = np.zeros(1024, dtype=np.int64)
        self._rh = np.zeros(1024, dtype=np.int64)
        self._ctx_zero: list[bool] = []
        self._ctx_left: list[int] = []
        self._ctx_right: list[int] = []
        # Group -> ([left ids checked], fully matched left ids among them, the same as a set,
        # the group's facts as a bit mask over _fact_bit).
        self._full_memo: dict[tuple[int, ...], tuple[list[int], list[int], set[int], int]] = {}
        # (group, sensor pattern) -> [contexts checked, ids fully matched on both sides,
        # number of contexts whose left side is fully matched]: every step that does not add a
        # zero-level context revisits a known pair.
        self._act_memo: dict[tuple[tuple[int, ...], int], list] = {}
        self._hash_memo: dict[tuple[int, ...], int] = {}
        # (left facts, right facts) pairs known to have a context: lets a repeated candidate
        # skip the hash path (which stays the authority, hash collisions included).
        self._pair_ctx: dict[tuple[tuple[int, ...], tuple[int, ...]], None] = {}
        self._cross_memo: dict[int, tuple[int, ...]] = {}  # fact bit mask -> sorted facts
        self._sens_memo: dict[int, tuple[int, list[tuple[int, ...]], list[bool]]] = {}

        # The previous step: its left facts group and how many left sides existed when the
        # original would have crossed them with it.
        self._group: tuple[int, ...] = ()
        self._n_left_crossed = 0

    # ------------------------------------------------------------------------------------
    # Public
    # ------------------------------------------------------------------------------------

    def step(self, value: float) -> float:
        """Feed the next value; return the raw anomaly score (0 while resting; NaN if unknown)."""
        if not math.isfinite(value):  # unknown (or unquantisable): memory left as it was
            return math.nan
        norm = int((value - self.min_value) / self._step_size)
        sens = self._bin_facts[norm] if 0 <= norm < len(self._bin_facts) else self._facts_of_bin(norm)
        selected_active, added_share = self._learn(sens)
        if self.max_contexts:
            if self._recent is not None:
                self._recent.append(sens)
            if self._n_ctx > self.max_contexts:
                self._rebuild()
        score = (1.0 - selected_active + added_share) / 2.0
        k = int(self.rest_period)
        start = self._n_history - k if 0 < k < self._n_history else 0
        out = score if self._last_high < start else 0.0
        if score >= self.base_threshold:
            self._last_high = self._n_history
        self._n_history += 1
        return out

    def _rebuild(self) -> None:
        """Bounded memory: forget every context, then relearn from the last ``replay`` values.

        Why a rebuild and not the eviction of single contexts: a context's id is part of the
        facts of the contexts learned after it (the neuron facts), so dropping one context
        leaves others pointing at nothing; forgetting all and relearning the recent past keeps
        the memory consistent and holds what the recent past taught. The replay's scores are
        dropped and the rest period runs on, so the detector neither alarms on its own restart
        nor goes blind for a rest period. Should the replay itself outgrow half the cap (a
        series noisier than the cap allows for) the memory is cleared again mid-replay, so the
        memory stays under ``max_contexts`` plus one step's growth.
        """
        self.n_rebuilds += 1
        self._clear_memory()
        if self._recent is None:
            return
        half = self.max_contexts // 2
        for sens in self._recent:
            if self._n_ctx > half:
                self._clear_memory()
            self._learn(sens)

    @property
    def n_contexts(self) -> int:
        """How many contexts the detector remembers (its memory, and its cost, grow with it)."""
        return self._n_ctx

    # ------------------------------------------------------------------------------------
    # The algorithm
    # ------------------------------------------------------------------------------------

    def _facts_of_bin(self, norm: int) -> tuple[int, ...]:
        """The original's sensor facts of a bin, including its quirks outside the range."""
        text = bin(norm).lstrip("0b").rjust(self.num_bits, "0")
        return tuple(sorted({i * 2 + (1 if ch == "1" else 0) for i, ch in enumerate(reversed(text))}))

    def _hash(self, facts: tuple[int, ...]) -> int:
        h = self._hash_memo.get(facts)
        if h is None:
            h = self._hash_memo[facts] = py2_tuple_hash(facts)
        return h

    def _left_side(self, facts: tuple[int, ...]) -> tuple[int, int]:
        """Id and hash of the left side with these facts, created if new (keyed by hash)."""
        h = self._hash(facts)
        lid = self._left_id.get(h)
        if lid is None:
            lid = self._left_id[h] = len(self._left)
            self._left.append(_LeftSide(facts, self._group_bits(facts)))
            self._left_by_top.setdefault(facts[-1], []).append(lid)
        return lid, h

    def _right_side(self, facts: tuple[int, ...]) -> tuple[int, int]:
        h = self._hash(facts)
        rid = self._right_id.get(h)
        if rid is None:
            rid = self._right_id[h] = len(self._right_facts)
            self._right_facts.append(facts)
            mask = 0
            for f in facts:
                mask |= 1 << f
            self._right_mask.append(mask)
        return rid, h

    def _context(self, left: tuple[int, ...], right: tuple[int, ...], zero_level: bool) -> bool:
        """Find or create the context left -> right; True if it was created.

        A zero-level lookup of an existing context marks it zero-level (the original's
        ``getContextByFacts(..., zerolevel=1)``).
        """
        lid, lh = self._left_side(left)
        rid, rh = self._right_side(right)
        side = self._left[lid]
        cid = side.ctx.get(rid)
        if cid is None:
            cid = side.ctx[rid] = self._n_ctx
            if cid == self._cnt.shape[0]:
                grow = np.zeros(cid, dtype=np.int64)
                self._cnt = np.concatenate([self._cnt, grow])
                self._lh = np.concatenate([self._lh, grow])
                self._rh = np.concatenate([self._rh, grow])
            self._lh[cid] = lh
            self._rh[cid] = rh
            self._n_ctx = cid + 1
            if side.order.add(rid):
                side.zver += 1
            self._ctx_zero.append(zero_level)
            self._ctx_left.append(lid)
            self._ctx_right.append(rid)
            if zero_level:
                self._mark_zero(side, lid, rid)
            return True
        if zero_level and not self._ctx_zero[cid]:
            self._ctx_zero[cid] = True
            self._mark_zero(side, lid, rid)
        return False

    def _mark_zero(self, side: _LeftSide, lid: int, rid: int) -> None:
        if not side.zero:
            at = bisect_left(self._left_zero, lid)
            self._left_zero.insert(at, lid)
            self._left_zero_bits.insert(at, side.bits)
        side.zero.append(rid)
        side.zver += 1

    def _sensor_view(self, sens_mask: int) -> tuple[list[tuple[int, ...]], list[bool]]:
        """For the present sensor facts: each right side's overlap with them (the original's
        sorted fact tuple) and whether they match it fully. Cached per sensor pattern until a
        right side is added (there are a few dozen right sides at most)."""
        memo = self._sens_memo.get(sens_mask)
        n_right = len(self._right_mask)
        if memo is not None and memo[0] == n_right:
            return memo[1], memo[2]
        cross: list[tuple[int, ...]] = []
        full: list[bool] = []
        for mask, facts in zip(self._right_mask, self._right_facts):
            inter = mask & sens_mask
            full.append(inter == mask)
            cross.append(facts if inter == mask else tuple(f for f in facts if inter >> f & 1))
        self._sens_memo[sens_mask] = (n_right, cross, full)
        return cross, full

    def _group_bits(self, group: tuple[int, ...]) -> int:
        """Facts (a group's, or a left side's) as a bit mask over `_fact_bit`; a fact seen for
        the first time gets the next bit."""
        fact_bit = self._fact_bit
        gbits = 0
        for f in group:
            b = fact_bit.get(f)
            if b is None:
                b = fact_bit[f] = len(fact_bit)
            gbits |= 1 << b
        return gbits

    def _fully_matched(self, group: tuple[int, ...],
                       n_crossed: int) -> tuple[list[int], set[int], int]:
        """Ids of the left sides (among the first ``n_crossed``) whose facts all lie in ``group``
        (as a list and a set), and the group's facts as a bit mask.

        Groups recur (a periodic series revisits its states), and left sides never change, so
        the answer is remembered per group and only left sides created since are checked. A
        group seen for the first time is answered through the index by largest fact.
        """
        left = self._left
        memo = self._full_memo.get(group)
        if memo is None:
            gbits = self._group_bits(group)
            ids: list[int] = []
            by_top = self._left_by_top
            for f in group:
                for lid in by_top.get(f, ()):
                    if lid >= n_crossed:
                        break  # ids are in creation order
                    bits = left[lid].bits
                    if bits & gbits == bits:
                        ids.append(lid)
            if len(self._full_memo) >= _MEMO_LIMIT:
                self._full_memo.clear()
            memo = self._full_memo[group] = ([n_crossed], ids, set(ids), gbits)
        elif memo[0][0] < n_crossed:
            gbits = memo[3]
            ids, id_set = memo[1], memo[2]
            for lid in range(memo[0][0], n_crossed):
                bits = left[lid].bits
                if bits & gbits == bits:
                    ids.append(lid)
                    id_set.add(lid)
            memo[0][0] = n_crossed
        return memo[1], memo[2], memo[3]

    def _matched(self, group: tuple[int, ...], sens_mask: int, full_ids: list[int],
                 full_left: set[int], right_full: list[bool], fresh: int) -> tuple[np.ndarray, int]:
        """Ids of the contexts fully matched on both sides, and the number of contexts whose
        left side is fully matched, before the original's exclusion of one id. ``fresh`` is
        the zero-level context created this step, or -1.

        Remembered per (group, sensor pattern); a revisit checks only the contexts created
        since. A first visit asks each fully matched left side, which remembers its own
        answer per sensor pattern until it gains a context.
        """
        key = (group, sens_mask)
        n_ctx = self._n_ctx
        memo = self._act_memo.get(key)
        if memo is not None:
            if memo[0] < n_ctx:
                ctx_left = self._ctx_left
                ctx_right = self._ctx_right
                extra = []
                for cid in range(memo[0], n_ctx):
                    if ctx_left[cid] in full_left:
                        memo[2] += 1
                        if right_full[ctx_right[cid]]:
                            extra.append(cid)
                if extra:
                    memo[1] = np.concatenate([memo[1], np.asarray(extra, dtype=np.int64)])
                memo[0] = n_ctx
            return memo[1], memo[2]
        left = self._left
        active: list[int] = []
        n_selected = 0
        for lid in full_ids:
            side = left[lid]
            d = side.ctx
            nd = len(d)
            n_selected += nd
            lmemo = side.active.get(sens_mask)
            if lmemo is None or lmemo[0] != nd:
                lmemo = side.active[sens_mask] = (nd, [c for r, c in d.items() if right_full[r]])
            if lmemo[1]:
                active += lmemo[1]
        act = np.asarray(active, dtype=np.int64)
        if len(self._act_memo) >= _MEMO_LIMIT:
            self._act_memo.clear()
        # A zero-level context created this step on a left side created with it is not in
        # this answer (that side was not crossed yet); later visits must still check it.
        checked = n_ctx
        if fresh >= 0 and self._ctx_left[fresh] not in full_left:
            checked = fresh
        self._act_memo[key] = [checked, act, n_selected]
        return act, n_selected

    def _learn(self, sens: tuple[int, ...]) -> tuple[float, float]:
        """One step of the original's ``step()``: returns (share of selected contexts that
        came true, share of candidate new contexts that were new)."""
        group = self._group
        new_flag = False
        skip = 0  # the original skips context id ``newContextID``, which is False (== 0) if none
        if group:
            new_flag = self._context(group, sens, True)
            if new_flag:
                skip = self._n_ctx - 1
        sens_mask = 0
        for f in sens:
            sens_mask |= 1 << f
        right_cross, right_full = self._sensor_view(sens_mask)

        # Contexts whose left side the previous group fully matches (the left side must have
        # existed when the group was formed) are "selected"; those whose right side the
        # present fully matches too are "active".
        n_crossed = self._n_left_crossed
        full_ids, full_left, gbits = self._fully_matched(group, n_crossed)
        act, n_selected = self._matched(group, sens_mask, full_ids, full_left, right_full,
                                        skip if new_flag else -1)
        if skip < self._n_ctx and self._ctx_left[skip] in full_left:
            n_selected -= 1
            if right_full[self._ctx_right[skip]]:
                act = act[act != skip]
        n_active = act.shape[0]
        cnt = self._cnt
        cnt[act] += 1  # ids are distinct: each context has one left side

        unique: dict[tuple[tuple[int, ...], tuple[int, ...]], None] = {}
        if new_flag:
            unique = self._potentials(group, gbits, sens_mask, n_crossed, full_left,
                                      skip, right_cross, right_full)

        # The most often active contexts (ties by the hashes) become the next neuron facts.
        k = self.max_active
        if n_active > k:
            counts = cnt[act]
            kth = np.partition(counts, n_active - k)[n_active - k]
            top = act[counts > kth]
            ties = act[counts == kth]
            need = k - top.shape[0]
            if ties.shape[0] > need:
                ties = ties[np.lexsort((self._rh[ties], self._lh[ties]))[ties.shape[0] - need:]]
            top_ids = top.tolist() + ties.tolist()
        else:
            top_ids = act.tolist()
        self._group = sens + tuple(sorted([_NEURON_BASE + c for c in top_ids]))

        # Learn the candidates; known pairs skip the hash path.
        n_new = 0
        pair_ctx = self._pair_ctx
        for pair in unique:
            if pair not in pair_ctx:
                if self._context(pair[0], pair[1], False):
                    n_new += 1
                pair_ctx[pair] = None
        self._n_left_crossed = len(self._left)

        selected_active = n_active / float(n_selected) if n_selected > 0 else 0.0
        added_share = 0.0
        if new_flag:
            n_unique = len(unique) + (0 if (group, sens) in unique else 1)
            added_share = (n_new + 1) / float(n_unique)
        return selected_active, added_share

    def _potentials(self, group: tuple[int, ...], gbits: int, sens_mask: int, n_crossed: int,
                    full_left: set[int], skip: int, right_cross: list[tuple[int, ...]],
                    right_full: list[bool]) -> dict[tuple[tuple[int, ...], tuple[int, ...]], None]:
        """Candidate new contexts: overlaps of zero-level contexts with the present, without
        repeats, in the order the original first lists them (left sides by id, their
        contexts in Python 2 dict order). Repeats are no-ops in the original."""
        out: dict[tuple[tuple[int, ...], tuple[int, ...]], None] = {}
        left = self._left
        fact_bit = self._fact_bit
        cross_memo = self._cross_memo
        max_len = self.max_left_len
        skip_left = self._ctx_left[skip] if skip < self._n_ctx else -1
        for lid, bits in zip(self._left_zero, self._left_zero_bits):
            if lid >= n_crossed:
                break
            inter = bits & gbits
            if not inter or inter.bit_count() > max_len:
                continue
            side = left[lid]
            is_full = inter == bits
            if lid == skip_left:  # the one left side holding the excluded context
                d = side.ctx
                rcs = [right_cross[r] for r in side.zero_in_order()
                       if right_cross[r] and not (is_full and right_full[r]) and d[r] != skip]
            else:
                memo = side.crosses.get(sens_mask)
                if memo is not None and memo[0] == side.zver:
                    rcs = memo[1][is_full]
                else:
                    rcs = side.zero_crosses(sens_mask, right_cross, right_full)[is_full]
            if not rcs:
                continue
            lcross = cross_memo.get(inter)
            if lcross is None:
                lcross = cross_memo[inter] = tuple([f for f in group if inter >> fact_bit[f] & 1])
            for rc in rcs:
                out[(lcross, rc)] = None
        return out


#: The environment variable that, set to anything but "" or "0", keeps the compiled core out.
FORCE_PYTHON_ENV = "AISC_PURE_PYTHON_CAD_OSE"


def _select_core() -> tuple[type[PythonContextOSE] | type[_cad_ose.ContextOSE], str, str | None]:
    """The core `ContextOSE` names, its backend's name, and why the compiled one is not used."""
    if os.environ.get(FORCE_PYTHON_ENV, "") not in ("", "0"):
        return PythonContextOSE, "python", f"{FORCE_PYTHON_ENV} is set"
    try:
        from console.analytics.detectors._cad_ose import ContextOSE as native
    except ImportError as exc:  # not built (no compiler at install time) or not installed
        return PythonContextOSE, "python", f"the compiled core is not importable: {exc}"
    return native, "c", None


ContextOSE: type[PythonContextOSE] | type[_cad_ose.ContextOSE]
#: "c" when `ContextOSE` is the compiled core, "python" when it is `PythonContextOSE`.
BACKEND: str
#: Why the compiled core is not in use, in plain words (None when it is).
NATIVE_UNAVAILABLE: str | None
ContextOSE, BACKEND, NATIVE_UNAVAILABLE = _select_core()


class ContextOSEBank:
    """Many series stepped together, one `ContextOSE` per column: the live console's shape.

    ``ranges`` gives each series' expected (min, max); the other settings apply to every
    series. CAD OSE has no vector form (each series grows its own memory of contexts), so the
    bank is a loop; its cost per series is that of one detector.
    """

    def __init__(self, ranges: list[tuple[float, float]], **settings: Any) -> None:
        self.detectors = [ContextOSE(lo, hi, **settings) for lo, hi in ranges]

    def step(self, values: np.ndarray) -> np.ndarray:
        """Scores for one row of values (NaN where a value is unknown)."""
        if values.shape != (len(self.detectors),):
            raise ValueError(f"expected {len(self.detectors)} values, got shape {values.shape}")
        return np.fromiter((d.step(v) for d, v in zip(self.detectors, values.tolist())),
                           dtype=np.float64, count=len(self.detectors))
