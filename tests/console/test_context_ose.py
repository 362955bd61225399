"""ContextOSE (CAD OSE as NAB runs it): reproduces the recorded NAB stream row for row, and
behaves as the original on the cases the console meets (flat line, novel value, gaps)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from console.analytics.detectors import context_ose
from console.analytics.detectors.context_ose import (
    ContextOSE,
    ContextOSEBank,
    _SlotOrder,
    nab_rest_period,
    py2_tuple_hash,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "nab" / "contextOSE"


def recorded_text(score: float) -> str:
    return f"{float(f'{score:.12g}'):.6g}"


@pytest.mark.parametrize("memo_limit", [None, 4])
def test_reproduces_the_recorded_nab_scores_row_for_row(memo_limit: int | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The first 400 rows of realTraffic/speed_7578.csv with the scores NAB recorded for CAD OSE
    # (six significant digits). The detector gets what NAB gave it: the whole file's min/max
    # and a rest period from the whole file's length. With a tiny memo limit the caches are
    # cleared all the time: the scores must not change.
    if memo_limit is not None:
        monkeypatch.setattr(context_ose, "_MEMO_LIMIT", memo_limit)
    meta = json.loads((FIXTURE / "speed_7578_head.json").read_text())
    with (FIXTURE / "speed_7578_head.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == meta["rows_in_excerpt"] == 400
    # the memo limit is the Python port's (the compiled core has no such caches)
    cls = context_ose.PythonContextOSE if memo_limit is not None else ContextOSE
    det = cls(meta["file_min"], meta["file_max"], rest_period=nab_rest_period(meta["rows_in_file"]))
    # NAB wrote Python 2's str() of each score (12 significant digits); the excerpt holds
    # that text rounded to six.
    got = [recorded_text(det.step(float(r["value"]))) for r in rows]
    want = [r["anomaly_score"] for r in rows]
    mismatches = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert mismatches == []
    # The excerpt exercises the interesting paths: silence while resting, then varied scores,
    # including full-scale ones that start a new rest.
    assert want.count("0") > 100 and len(set(want)) > 100 and "1" in want


def test_python2_tuple_hash_matches_known_values() -> None:
    # hash(()) and hash((1, 2, 3)) under 64-bit CPython 2.7; the recorded ties depend on it.
    assert py2_tuple_hash(()) == 3527539
    assert py2_tuple_hash((1, 2, 3)) == 2528502973977326415


def test_rest_period_follows_nab_probation() -> None:
    # NAB: min(floor(0.15 * rows), 0.15 * 5000) / 5, in floats; the detector truncates it.
    assert nab_rest_period(1127) == pytest.approx(33.8)
    assert nab_rest_period(4032) == pytest.approx(120.8)
    assert nab_rest_period(22695) == pytest.approx(150.0)


def test_flat_line_scores_one_half_after_the_rest() -> None:
    # The original's quirk, kept: a flat line has one context, id 0, which the original
    # always leaves out of the selection, so its raw score stays at 0.5 (NAB's art_flatline).
    det = ContextOSE(5.0, 5.0, rest_period=5)
    scores = [det.step(5.0) for _ in range(12)]
    assert scores == [0.0] * 7 + [0.5] * 5


def test_novel_value_after_a_learnt_cycle_is_full_scale_then_rests() -> None:
    cycle = np.tile([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0], 60)
    for novel in (0.5, 2.0, -3.0):  # a new bin inside the range, above it, below it
        det = ContextOSE(0.0, 1.0, rest_period=30)
        learnt = [det.step(v) for v in cycle]
        assert max(learnt[-100:]) < 0.4
        assert det.step(novel) == 1.0
        after = [det.step(v) for v in cycle[:40]]
        assert after[:30] == [0.0] * 30  # silent for the rest period
        assert 0.0 < max(after[30:]) < 0.75


def test_missing_value_is_unknown_and_leaves_the_memory_alone() -> None:
    values = np.tile([3.0, 7.0, 1.0, 9.0, 4.0], 40)
    plain = ContextOSE(0.0, 10.0, rest_period=10)
    expected = [plain.step(v) for v in values]
    gappy = ContextOSE(0.0, 10.0, rest_period=10)
    got = []
    for i, v in enumerate(values):
        if i in (50, 120):
            assert math.isnan(gappy.step(math.nan))
            assert math.isnan(gappy.step(math.inf))
        got.append(gappy.step(v))
    assert got == expected


@pytest.mark.parametrize("lo, hi, rest", [(1.0, 0.0, 30), (math.nan, 1.0, 30), (0.0, 1.0, -1)])
def test_rejects_an_unusable_setup(lo: float, hi: float, rest: float) -> None:
    with pytest.raises(ValueError):
        ContextOSE(lo, hi, rest_period=rest)


def test_python2_dict_order_of_colliding_int_keys() -> None:
    # Python 2.7 places 9 in slot 1; 1 collides there and probes to slot 7 (5*1 + 1 + 1);
    # 17 collides at 1, then at 7 (5*1 + 17 + 1 = 23), then lands in slot 4 (5*23 + 0 + 1).
    # Iteration follows slots: 9, 17, 1 (not the insertion order 9, 1, 17).
    order = _SlotOrder()
    for key in (9, 1, 17):
        assert order.add(key) is False
    assert sorted(order.pos, key=order.pos.__getitem__) == [9, 17, 1]
    # The sixth key fills two thirds of the 8 slots: the table grows to 32 and re-places.
    grown = [order.add(key) for key in (2, 3, 4)]
    assert grown == [False, False, True] and order.mask == 31
    assert sorted(order.pos, key=order.pos.__getitem__) == [1, 2, 3, 4, 9, 17]


def test_bank_steps_each_series_as_its_own_detector() -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 8, size=(300, 3)).astype(float)
    rows[100, 1] = np.nan
    bank = ContextOSEBank([(0.0, 7.0), (0.0, 7.0), (-1.0, 9.0)], rest_period=20)
    singles = [ContextOSE(0.0, 7.0, rest_period=20), ContextOSE(0.0, 7.0, rest_period=20),
               ContextOSE(-1.0, 9.0, rest_period=20)]
    for row in rows:
        got = bank.step(row)
        want = np.array([d.step(v) for d, v in zip(singles, row)])
        np.testing.assert_array_equal(got, want)  # NaN where unknown, equal elsewhere
    with pytest.raises(ValueError):
        bank.step(np.zeros(2))


# ---------------------------------------------------------------------------------------------
# A plain transliteration of NAB's CAD OSE (numenta/NAB nab/detectors/context_ose/, MIT
# licence), with Python 2's tuple hash and dict order, as a reference for the fast port: the
# port's caches must never change a score.
# ---------------------------------------------------------------------------------------------


class _Py2Dict:
    """Insert-only dict of small ints iterating in Python 2 slot order."""

    def __init__(self) -> None:
        self.order = _SlotOrder()
        self.values: dict[int, int] = {}

    def setdefault(self, key: int, value: int) -> int:
        if key not in self.values:
            self.values[key] = value
            self.order.add(key)
        return self.values[key]

    def items(self) -> list[tuple[int, int]]:
        return [(k, self.values[k]) for k in sorted(self.values, key=self.order.pos.__getitem__)]


class _ReferenceCAD:
    def __init__(self, lo: float, hi: float, rest: float) -> None:
        self.lo, self.rest = lo, rest
        rng = hi - lo or 7.0
        self.step_size = rng / 7.0
        self.left_group: tuple[int, ...] = ()
        self.history = [1.0]
        self.facts_dics: list[dict[int, list[list]]] = [{}, {}]
        self.semi_dics: list[dict[int, int]] = [{}, {}]
        self.semi_vals: list[list[list]] = [[], []]
        self.crossed: list[list[list]] = [[], []]
        self.contexts: list[list] = []
        self.new_id: int | bool = False

    def by_facts(self, new: list, zero: int = 0) -> int | bool:
        added = 0
        for lf, rf in new:
            lh, rh = py2_tuple_hash(lf), py2_tuple_hash(rf)
            n = len(self.semi_dics[0])
            lid = self.semi_dics[0].setdefault(lh, n)
            if lid == n:
                lv = [[], len(lf), 0, _Py2Dict()]
                self.semi_vals[0].append(lv)
                for f in lf:
                    self.facts_dics[0].setdefault(f, []).append(lv)
            n = len(self.semi_dics[1])
            rid = self.semi_dics[1].setdefault(rh, n)
            if rid == n:
                rv = [[], len(rf), 0]
                self.semi_vals[1].append(rv)
                for f in rf:
                    self.facts_dics[1].setdefault(f, []).append(rv)
            n = len(self.contexts)
            cid = self.semi_vals[0][lid][3].setdefault(rid, n)
            if cid == n:
                added += 1
                self.contexts.append([0, zero, lh, rh])
                if zero:
                    self.new_id = cid
                    return True
            elif zero:
                self.contexts[cid][1] = 1
                return False
        return added

    def cross(self, side: int, facts: tuple[int, ...]) -> None:
        for sv in self.crossed[side]:
            sv[0] = []
            sv[2] = 0
        for f in facts:
            for sv in self.facts_dics[side].get(f, []):
                sv[0].append(f)
        self.crossed[side] = []
        for sv in self.semi_vals[side]:
            sv[2] = len(sv[0])
            if sv[2] > 0:
                self.crossed[side].append(sv)

    def update(self, flag: bool) -> tuple[list, int, list]:
        active, n_sel, pots = [], 0, []
        for lv in self.crossed[0]:
            for rid, cid in lv[3].items():
                if self.new_id != cid:  # False == 0: context 0 is skipped when nothing is new
                    cv = self.contexts[cid]
                    r0, r1, r2 = self.semi_vals[1][rid]
                    if lv[1] == lv[2]:
                        n_sel += 1
                        if r2 > 0:
                            if r1 == r2:
                                cv[0] += 1
                                active.append([cid, cv[0], cv[2], cv[3]])
                            elif cv[1] and flag and lv[2] <= 7:
                                pots.append((tuple(lv[0]), tuple(r0)))
                    elif cv[1] and flag and r2 > 0 and lv[2] <= 7:
                        pots.append((tuple(lv[0]), tuple(r0)))
        self.new_id = False
        return active, n_sel, pots

    def score(self, value: float) -> float:
        text = bin(int((value - self.lo) / self.step_size)).lstrip("0b").rjust(3, "0")
        sens = tuple(sorted({i * 2 + (ch == "1") for i, ch in enumerate(reversed(text))}))
        uniq = set()
        flag = False
        if self.left_group:
            uniq.add((self.left_group, sens))
            flag = bool(self.by_facts([(self.left_group, sens)], zero=1))
        self.cross(1, sens)
        active, n_sel, pots = self.update(flag)
        uniq.update(pots)
        sel = len(active) / float(n_sel) if n_sel else 0.0
        top = sorted(active, key=lambda x: (x[1], x[2], x[3]))[-15:]
        self.left_group = tuple(sorted(set(sens) | {2**31 + c[0] for c in top}))
        n_new = int(self.by_facts(pots)) if pots else 0
        self.cross(0, self.left_group)
        n_new += 1 if flag else 0
        added = n_new / float(len(uniq)) if flag and uniq else 0.0
        raw = (1.0 - sel + added) / 2.0
        out = raw if max(self.history[-int(self.rest):]) < 0.75 else 0.0
        self.history.append(raw)
        return out


def test_fast_port_equals_the_plain_transliteration_on_varied_series() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(900)
    series = [
        np.where(t < 450, np.sin(t / 7.0), 0.6 + 0.3 * np.sin(t / 3.0)) + rng.normal(0, 0.05, t.size),
        rng.normal(0.0, 1.0, t.size),  # noise: the case where contexts multiply
        np.round(np.abs(np.sin(t / 20.0)) * 5) + (t % 97 == 0) * 9,  # steps, spikes, a new record
    ]
    for values in series:
        lo, hi = float(values[:300].min()), float(values[:300].max())  # later ones leave the range
        plain = _ReferenceCAD(lo, hi, 12)
        want = [plain.score(v) for v in values]
        for cls in {ContextOSE, context_ose.PythonContextOSE}:  # the compiled core and the port
            fast = cls(lo, hi, rest_period=12)
            got = [fast.step(v) for v in values]
            assert got == want, cls
        assert sum(s > 0 for s in want) > 100


# ----------------------------------------------------------------------------------------
# Bounded memory (max_contexts / replay): the ensemble's mode; the default stays faithful.
# ----------------------------------------------------------------------------------------


def _noise(n: int, seed: int = 5) -> list[float]:
    return np.random.default_rng(seed).uniform(0.0, 8.0, n).tolist()


def test_a_cap_the_series_never_reaches_changes_nothing() -> None:
    values = np.tile([0.0, 3.0, 7.0, 3.0, 1.0, 6.0], 80).tolist()
    plain = ContextOSE(0.0, 7.0, rest_period=20)
    capped = ContextOSE(0.0, 7.0, rest_period=20, max_contexts=10**6, replay=50)
    assert [capped.step(v) for v in values] == [plain.step(v) for v in values]
    assert capped.n_rebuilds == 0 and capped.n_contexts == plain.n_contexts


def test_capped_memory_stays_bounded_on_noise_where_the_original_grows() -> None:
    values = _noise(600)
    plain = ContextOSE(0.0, 8.0, rest_period=20)
    capped = ContextOSE(0.0, 8.0, rest_period=20, max_contexts=1500, replay=40)
    peak = 0
    for v in values:
        plain.step(v)
        capped.step(v)
        peak = max(peak, capped.n_contexts)
    assert plain.n_contexts > 5 * 1500  # noise: a new situation nearly every step
    assert capped.n_rebuilds >= 3
    assert peak <= 1500  # checked after each step: a rebuild happens within the step
    assert 0 < capped.n_contexts <= 1500


def test_a_rebuild_relearns_the_recent_past_so_a_learnt_cycle_stays_quiet() -> None:
    # A cycle learnt (243 contexts), a burst of noise that outgrows the cap, the cycle again:
    # the rebuild replays the last 100 values, so the cycle is known at once and the detector
    # neither alarms on its own restart nor needs another rest period to settle.
    cycle = np.tile([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0], 60).tolist()
    noise = np.random.default_rng(2).uniform(0.0, 1.0, 40).tolist()
    det = ContextOSE(0.0, 1.0, rest_period=30, max_contexts=400, replay=100)
    learnt = [det.step(v) for v in cycle]
    assert det.n_rebuilds == 0 and max(learnt[-100:]) < 0.4
    for v in noise:
        det.step(v)
    assert det.n_rebuilds == 1 and det.n_contexts <= 400
    after = [det.step(v) for v in cycle[:300]]
    assert after[:36] == [0.0] * 36  # the rest period after the noise's alarms, carried on
    assert 0.0 < max(after[36:]) < 0.4  # the cycle again: scored, and quiet


def test_without_replay_a_rebuild_starts_from_an_empty_memory() -> None:
    det = ContextOSE(0.0, 8.0, rest_period=20, max_contexts=300)
    for v in _noise(200):
        det.step(v)
    assert det.n_rebuilds >= 1 and det.n_contexts <= 300


@pytest.mark.parametrize("cap, replay", [(-1, 0), (100, -5)])
def test_rejects_a_negative_bound(cap: int, replay: int) -> None:
    with pytest.raises(ValueError):
        ContextOSE(0.0, 1.0, max_contexts=cap, replay=replay)
