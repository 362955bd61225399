"""The compiled CAD OSE core (``_cad_ose.c``) against the Python port it replaces.

The compiled core must give the same scores as `PythonContextOSE`, float for float: the ranking
ties (Python 2's tuple hash), the ids of new contexts (Python 2's dict order), the original's
quantisation quirks outside the range, unknown values, the rest period and the bounded memory.
Each test runs both on the same values and compares every score with ``==`` (NaN where the
value is unknown, in both), the memory's size after every step and the rebuilds.

The core is optional (built by ``pip install`` when a C compiler is there): the comparisons are
skipped, saying why, only when it is not importable.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.analytics.detectors import context_ose
from console.analytics.detectors.context_ose import PythonContextOSE, nab_rest_period, py2_tuple_hash

try:
    from console.analytics.detectors import _cad_ose
except ImportError as exc:  # the extension was not built (no compiler when installed)
    _cad_ose = None
    NOT_BUILT = f"the compiled CAD OSE core is not built here: {exc}"
else:
    NOT_BUILT = ""

native = pytest.mark.skipif(_cad_ose is None, reason=NOT_BUILT or "built")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nab"
ROOT = Path(__file__).resolve().parents[2]


def same_stream(values: list[float], lo: float, hi: float, **kw: Any) -> tuple[list[float], Any]:
    """Step both cores through ``values``; assert every score, the memory's size after every
    step and the rebuilds are the same. Returns the scores and the compiled detector."""
    assert _cad_ose is not None
    py = PythonContextOSE(lo, hi, **kw)
    c = _cad_ose.ContextOSE(lo, hi, **kw)
    got: list[float] = []
    for i, v in enumerate(values):
        want, have = py.step(v), c.step(v)
        assert have == want or (math.isnan(have) and math.isnan(want)), (i, v, want, have)
        assert c.n_contexts == py.n_contexts, i
        got.append(have)
    assert c.n_rebuilds == py.n_rebuilds
    return got, c


def read_values(path: Path) -> list[float]:
    with path.open(newline="") as fh:
        return [float(r["value"]) for r in csv.DictReader(fh)]


# ---------------------------------------------------------------------------------------------
# Which core runs
# ---------------------------------------------------------------------------------------------


def _backend_in_fresh_interpreter(force: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != context_ose.FORCE_PYTHON_ENV}
    if force is not None:
        env[context_ose.FORCE_PYTHON_ENV] = force
    code = ("from console.analytics.detectors import context_ose as c; "
            "print(c.BACKEND, c.ContextOSE.__name__, c.NATIVE_UNAVAILABLE is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    return out.stdout.strip()


def test_the_environment_variable_forces_the_python_core() -> None:
    assert _backend_in_fresh_interpreter("1") == "python PythonContextOSE False"


@native
def test_the_compiled_core_is_the_default_when_built() -> None:
    assert _backend_in_fresh_interpreter(None) == "c ContextOSE True"
    assert _backend_in_fresh_interpreter("0") == "c ContextOSE True"  # "0" forces nothing


@native
def test_this_session_runs_the_core_it_was_asked_for() -> None:
    forced = os.environ.get(context_ose.FORCE_PYTHON_ENV, "") not in ("", "0")
    assert context_ose.BACKEND == ("python" if forced else "c")
    assert context_ose.ContextOSE is (PythonContextOSE if forced else _cad_ose.ContextOSE)


# ---------------------------------------------------------------------------------------------
# The same scores
# ---------------------------------------------------------------------------------------------


@native
def test_python2_tuple_hash_is_the_same() -> None:
    assert _cad_ose is not None
    rng = np.random.default_rng(11)
    tuples = [(), (0,), (1, 2, 3), (0, 2, 4, 2**31, 2**31 + 7)]
    tuples += [tuple(sorted(rng.choice(2**31 + 9000, size=k, replace=False).tolist()))
               for k in range(1, 19) for _ in range(5)]
    for t in tuples:
        assert _cad_ose.py2_tuple_hash(t) == py2_tuple_hash(t), t


@native
def test_recorded_nab_excerpt_scores_the_same() -> None:
    meta = json.loads((FIXTURES / "contextOSE" / "speed_7578_head.json").read_text())
    values = read_values(FIXTURES / "contextOSE" / "speed_7578_head.csv")
    got, _ = same_stream(values, meta["file_min"], meta["file_max"],
                         rest_period=nab_rest_period(meta["rows_in_file"]))
    with (FIXTURES / "contextOSE" / "speed_7578_head.csv").open(newline="") as fh:
        recorded = [r["anomaly_score"] for r in csv.DictReader(fh)]
    # and NAB's recorded stream (its six significant digits of Python 2's str())
    assert [f"{float(f'{g:.12g}'):.6g}" for g in got] == recorded


@native
@pytest.mark.parametrize("name", ["art_daily_jumpsdown.csv", "art_daily_nojump.csv"])
def test_nab_files_score_the_same(name: str) -> None:
    values = read_values(FIXTURES / "artificialWithAnomaly" / name)
    got, c = same_stream(values, min(values), max(values), rest_period=nab_rest_period(len(values)))
    assert len(got) == 4032 and c.n_contexts > 100 and sum(g > 0 for g in got) > 100


@native
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walks_score_the_same(seed: int) -> None:
    walk = np.cumsum(np.random.default_rng(seed).normal(0.0, 1.0, 1500))
    lo, hi = float(walk[:500].min()), float(walk[:500].max())  # later it wanders out of range
    got, _ = same_stream(walk.tolist(), lo, hi, rest_period=30)
    assert sum(g > 0 for g in got) > 50


@native
def test_noise_filling_the_range_scores_the_same() -> None:
    # Every step a new situation: the case where contexts multiply fastest.
    values = np.random.default_rng(4).uniform(0.0, 8.0, 500).tolist()
    _, c = same_stream(values, 0.0, 8.0, rest_period=20)
    assert c.n_contexts > 5000


@native
def test_values_out_of_range_and_unknown_score_the_same() -> None:
    rng = np.random.default_rng(6)
    values = rng.normal(0.0, 1.0, 700)
    values[::37] = np.nan
    values[5::41] = np.inf
    values[6::43] = -np.inf
    values[7::53] = 1e30  # a bin beyond 2**64: the original's long bit string
    values[9::59] = -1e300
    values[11::31] = -2.5  # negative bins: the original's "-0b..." characters
    values[13::29] = 40.0
    got, _ = same_stream(values.tolist(), -1.0, 1.0, rest_period=25)
    unknown = ~np.isfinite(values)
    assert all(math.isnan(g) for g in np.asarray(got)[unknown])
    assert not any(math.isnan(g) for g in np.asarray(got)[~unknown])


@native
@pytest.mark.parametrize("bits", [1, 2, 5])
def test_other_quantisations_score_the_same(bits: int) -> None:
    values = np.random.default_rng(bits).normal(0.0, 1.0, 400)
    values[::23] *= 6.0  # out of range both ways
    same_stream(values.tolist(), -1.5, 1.5, rest_period=10, num_norm_value_bits=bits)


@native
@pytest.mark.parametrize("rest", [0, 0.5, 30, 150, 33.8])
def test_rest_periods_score_the_same(rest: float) -> None:
    t = np.arange(900)
    values = (np.sin(t / 6.0) + (t % 211 == 0) * 3.0 + np.random.default_rng(2).normal(0, 0.1, t.size))
    got, _ = same_stream(values.tolist(), -1.2, 1.2, rest_period=rest)
    if rest < 1:
        assert got == [0.0] * len(got)  # the original's look-back then spans its seed 1.0
    else:
        assert sum(g > 0 for g in got) > 100


@native
@pytest.mark.parametrize("cap, replay", [(1500, 40), (600, 0), (3000, 300), (10**6, 50)])
def test_bounded_memory_rebuilds_the_same(cap: int, replay: int) -> None:
    values = np.random.default_rng(8).uniform(0.0, 8.0, 700).tolist()
    _, c = same_stream(values, 0.0, 8.0, rest_period=20, max_contexts=cap, replay=replay)
    if cap < 10**6:
        assert c.n_rebuilds >= 1 and c.n_contexts <= cap
    else:
        assert c.n_rebuilds == 0


@native
def test_live_settings_keep_memory_bounded_on_noise() -> None:
    # The ensemble's cap (8000 contexts, 400 replayed) on noise that fills the range: the
    # compiled core holds it after every step, as the Python one does.
    assert _cad_ose is not None
    c = _cad_ose.ContextOSE(0.0, 8.0, rest_period=150, max_contexts=8000, replay=400)
    peak = 0
    for v in np.random.default_rng(9).uniform(0.0, 8.0, 3000).tolist():
        c.step(v)
        peak = max(peak, c.n_contexts)
    assert c.n_rebuilds >= 3 and peak <= 8000


@native
@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-3, 12).map(float), st.just(math.nan)), min_size=1, max_size=120),
       st.sampled_from([0, 1, 3, 7.5]), st.sampled_from([(0, 0), (40, 10), (80, 0)]))
def test_any_short_series_scores_the_same(values: list[float], rest: float,
                                          bound: tuple[int, int]) -> None:
    same_stream(values, 0.0, 9.0, rest_period=rest, max_contexts=bound[0], replay=bound[1])


@native
def test_a_flat_range_scores_the_same() -> None:
    same_stream([5.0] * 30 + [6.0] + [5.0] * 30, 5.0, 5.0, rest_period=5)


# ---------------------------------------------------------------------------------------------
# The same refusals
# ---------------------------------------------------------------------------------------------


@native
@pytest.mark.parametrize("args, kw", [
    ((1.0, 0.0), {}),
    ((math.nan, 1.0), {}),
    ((0.0, math.inf), {}),
    ((0.0, 1.0), {"rest_period": -1}),
    ((0.0, 1.0), {"max_contexts": -1}),
    ((0.0, 1.0), {"max_contexts": 100, "replay": -5}),
])
def test_unusable_setups_are_refused_by_both(args: tuple[float, float], kw: dict[str, Any]) -> None:
    assert _cad_ose is not None
    with pytest.raises(ValueError):
        PythonContextOSE(*args, **kw)
    with pytest.raises(ValueError):
        _cad_ose.ContextOSE(*args, **kw)


@native
@pytest.mark.parametrize("lo, hi, value, error", [
    (-1e308, 1e308, 1e308, ValueError),  # the range overflows: (v - min) / inf is NaN
    (0.0, 1e-300, 1e300, OverflowError),  # the bin overflows to infinity
])
def test_unquantisable_values_fail_alike(lo: float, hi: float, value: float,
                                         error: type[Exception]) -> None:
    assert _cad_ose is not None
    py, c = PythonContextOSE(lo, hi), _cad_ose.ContextOSE(lo, hi)
    with pytest.raises(error):
        py.step(value)
    with pytest.raises(error):
        c.step(value)
    assert c.n_contexts == py.n_contexts == 0


@native
def test_settings_read_back() -> None:
    assert _cad_ose is not None
    c = _cad_ose.ContextOSE(-2, 3, rest_period=33.8, max_contexts=500, replay=20)
    assert (c.min_value, c.max_value, c.rest_period, c.max_contexts, c.n_rebuilds, c.n_contexts) == (
        -2.0, 3.0, 33.8, 500, 0, 0)
    assert (c.base_threshold, c.max_left_len, c.max_active, c.num_bits) == (0.75, 7, 15, 3)
