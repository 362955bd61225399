"""NAB scorer on a tiny hand-computed example, and the runner's output layout."""

from __future__ import annotations

from dataclasses import replace

import csv
import importlib.util
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from console.analytics import nab

T0 = datetime(2024, 1, 1)


def stamps(n: int) -> list[datetime]:
    return [T0 + timedelta(minutes=5 * i) for i in range(n)]


def test_scaled_sigmoid_matches_nab_definition() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661429, abs=1e-7)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0, abs=1e-12)
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.98661429, abs=1e-7)
    assert nab.scaled_sigmoid(3.5) == -1.0


def test_probationary_length_is_15_percent_capped_at_750() -> None:
    assert nab.probationary_length(20) == 3
    assert nab.probationary_length(4032) == 604
    assert nab.probationary_length(22695) == 750


def hand_file(detect_rows: list[int]) -> nab.ScoredFile:
    ts = stamps(20)
    scores = np.zeros(20)
    scores[detect_rows] = 1.0
    return nab.prepare_file("cat/f.csv", ts, scores, [(ts[10], ts[13])])


def test_hand_example_standard_profile() -> None:
    # 20 rows, probation 3 rows, one window over rows 10..13 (width 4).
    # Row 1: inside probation, ignored.
    # Row 5: before any window: -1 x fp 0.11 = -0.11.
    # Row 11: position -(13-11+1)/4 = -0.75: (2/(1+e^-3.75) - 1) / (2/(1+e^-5) - 1) = 0.966983.
    # Row 12: a later detection in the same window counts nothing.
    # Row 16: 3 rows past the window, x = 3/(4-1) = 1: 0.11 x (2/(1+e^5) - 1) = -0.108528.
    f = hand_file([1, 5, 11, 12, 16])
    raw = nab.raw_score(f, 0.5, nab.PROFILES["standard"])
    assert raw == pytest.approx(0.966983 - 0.11 - 0.108528, abs=1e-5)
    null, perfect = nab.null_and_perfect([f], nab.PROFILES["standard"])
    assert (null, perfect) == (-1.0, 1.0)
    assert nab.normalise(raw, null, perfect) == pytest.approx(100 * (raw + 1) / 2)


def test_missed_window_costs_fn_weight_and_low_fn_profile_doubles_it() -> None:
    f = hand_file([5])
    assert nab.raw_score(f, 0.5, nab.PROFILES["standard"]) == pytest.approx(-1.0 - 0.11)
    assert nab.raw_score(f, 0.5, nab.PROFILES["reward_low_FN_rate"]) == pytest.approx(-2.0 - 0.11)
    assert nab.raw_score(f, 0.5, nab.PROFILES["reward_low_FP_rate"]) == pytest.approx(-1.0 - 0.22)


def test_detection_at_window_start_scores_full_tp_weight() -> None:
    f = hand_file([10])
    assert nab.raw_score(f, 0.5, nab.PROFILES["standard"]) == pytest.approx(1.0)


def test_threshold_is_optimised_over_the_corpus() -> None:
    ts = stamps(20)
    scores = np.zeros(20)
    scores[11] = 0.9  # the true detection
    scores[5] = 0.4  # a weaker false positive: the best threshold keeps only the first
    f = nab.prepare_file("cat/f.csv", ts, scores, [(ts[10], ts[13])])
    res = nab.optimise([f], "standard")
    assert 0.4 < res.threshold <= 0.9
    assert res.score == pytest.approx(100 * (0.966983 + 1) / 2, abs=1e-3)
    assert res.by_category["cat"] == pytest.approx(res.score)


def test_runner_writes_nab_layout_one_row_per_input_row(tmp_path: Path) -> None:
    data = tmp_path / "data" / "realThings"
    data.mkdir(parents=True)
    rng = np.random.default_rng(1)
    values = rng.normal(10, 1, 400)
    values[300:] += 30  # a level shift the detector must catch
    ts = stamps(400)
    with (data / "thing.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        for t, v in zip(ts, values):
            w.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), f"{v:.3f}"])
    labels = {"realThings/thing.csv": [[ts[290].strftime("%Y-%m-%d %H:%M:%S.%f"),
                                        ts[320].strftime("%Y-%m-%d %H:%M:%S.%f")]]}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    out = tmp_path / "results"
    files = nab.run_corpus(tmp_path / "data", nab.load_labels(tmp_path / "labels.json"), out)
    result = out / nab.DETECTOR_NAME / "realThings" / f"{nab.DETECTOR_NAME}_thing.csv"
    with result.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == 401
    lab = [int(r[3]) for r in rows[1:]]
    assert lab[290:321] == [1] * 31 and sum(lab) == 31
    scores = np.array([float(r[2]) for r in rows[1:]])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[300:306].max() >= 0.5  # the shift is flagged within a few rows
    assert files[0].n_windows == 1
    assert nab.optimise(files, "standard").score > 50


def test_stream_has_no_look_ahead() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 300)
    b = a.copy()
    b[250:] += 100  # changing the future must not change the past scores
    sa, sb = nab.run_stream(a), nab.run_stream(b)
    assert np.array_equal(sa[:250], sb[:250])
    assert not math.isclose(float(sa[250]), float(sb[250]))


def random_file(seed: int, name: str, n: int = 300) -> nab.ScoredFile:
    rng = np.random.default_rng(seed)
    ts = stamps(n)
    scores = np.round(rng.random(n), 2)  # coarse values: many ties, as real detectors give
    return nab.prepare_file(name, ts, scores, [(ts[100], ts[119]), (ts[200], ts[229])])


@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_sweep_totals_equal_the_direct_score_at_every_distinct_threshold(profile: str) -> None:
    files = [random_file(1, "a/x.csv"), random_file(2, "b/y.csv")]
    thresholds, totals = nab.sweep(files, nab.PROFILES[profile])
    distinct = np.unique(np.concatenate([f.scores for f in files]))
    assert sorted(thresholds[1:]) == sorted(distinct) and thresholds[0] == np.inf
    for t, total in zip(thresholds, totals):
        direct = sum(nab.raw_score(f, float(t), nab.PROFILES[profile]) for f in files)
        assert total == pytest.approx(direct, abs=1e-9)


def test_sweep_finds_the_best_distinct_score_that_sampling_would_miss() -> None:
    # 2000 distinct low scores outside the window and one true detection at 0.5004, just above
    # a false positive at 0.5003: only the exact score 0.5004 keeps the hit without the FP.
    ts = stamps(3000)
    scores = np.linspace(0.0, 0.5, 3000)
    scores[2000] = 0.5003  # far from the window: costs the full fp weight
    scores[1500] = 0.5004  # the window's first row
    f = nab.prepare_file("cat/f.csv", ts, scores, [(ts[1500], ts[1550])])
    res = nab.optimise([f], "standard")
    assert res.threshold == 0.5004
    assert res.score == pytest.approx(100.0)


def test_leave_one_category_out_chooses_on_the_others_only() -> None:
    # Two settings: "a" is perfect on categories x and y, "b" only on z. Held out z is scored
    # with "a" (best on x + y), so it gets a's poor score there, not b's perfect one.
    ts = stamps(100)
    win = [(ts[50], ts[59])]

    def f(name: str, hit: bool) -> nab.ScoredFile:
        s = np.zeros(100)
        if hit:
            s[50] = 1.0
        return nab.prepare_file(name, ts, s, win)

    runs = {"a": [f("x/1.csv", True), f("y/1.csv", True), f("z/1.csv", False)],
            "b": [f("x/1.csv", False), f("y/1.csv", False), f("z/1.csv", True)]}
    held = {h.category: h for h in nab.leave_one_category_out(runs, "standard")}
    assert held["z"].choice == "a" and held["z"].score == pytest.approx(0.0)
    assert held["x"].choice == "a" and held["x"].score == pytest.approx(100.0)


def test_anchor_streams_are_scored_like_the_console(tmp_path: Path) -> None:
    import gzip
    ts = stamps(100)
    d = tmp_path / "HTM" / "cat"
    d.mkdir(parents=True)
    with gzip.open(d / "HTM_f.csv.gz", "wt") as fh:
        fh.write("timestamp,anomaly_score\n")
        for i, t in enumerate(ts):
            fh.write(f"{t:%Y-%m-%d %H:%M:%S},{1.0 if i == 50 else 0.1}\n")
    labels = {"cat/f.csv": [[f"{ts[50]:%Y-%m-%d %H:%M:%S}.000000", f"{ts[59]:%Y-%m-%d %H:%M:%S}.000000"]]}
    files = nab.anchor_corpus(tmp_path, "HTM", ["cat/f.csv"], labels)
    res = nab.optimise(files, "standard")
    assert res.threshold == 1.0 and res.score == pytest.approx(100.0)
    with pytest.raises(FileNotFoundError):
        nab.anchor_corpus(tmp_path, "HTM", ["cat/missing.csv"], labels)


# ---------------------------------------------------------------------------------------------
# benchmarks/run_nab.py: any detector, the same scorer
# ---------------------------------------------------------------------------------------------


def _runner() -> Any:
    """benchmarks/run_nab.py as a module (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "run_nab.py"
    spec = importlib.util.spec_from_file_location("run_nab_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FiresAbove:
    """A stand-in peer: raw score 0.9 above the middle of its range, else 0.0."""

    def __init__(self, lo: float, hi: float, rest_period: float, **bounds: int) -> None:
        self.mid = (lo + hi) / 2.0  # (``bounds``, CAD OSE's memory cap, means nothing here)

    def step(self, value: float) -> float:
        return 0.9 if value > self.mid else 0.0


@pytest.fixture()
def fake_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    from console.analytics.detectors import ensemble

    monkeypatch.setattr(ensemble, "peer_factory", lambda kind: FiresAbove)


def small_corpus(root: Path) -> tuple[Path, Path]:
    """Two categories, one file each, a level shift inside each file's one window."""
    ts = stamps(400)
    labels = {}
    for cat, seed in (("realThings", 1), ("otherThings", 2)):
        data = root / "data" / cat
        data.mkdir(parents=True)
        values = np.random.default_rng(seed).normal(10, 1, 400)
        values[300:] += 30
        with (data / "thing.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value"])
            for t, v in zip(ts, values):
                w.writerow([t.strftime("%Y-%m-%d %H:%M:%S"), f"{v:.3f}"])
        labels[f"{cat}/thing.csv"] = [[f"{ts[290]:%Y-%m-%d %H:%M:%S}.000000",
                                       f"{ts[320]:%Y-%m-%d %H:%M:%S}.000000"]]
    (root / "labels.json").write_text(json.dumps(labels))
    return root / "data", root / "labels.json"


def test_runner_scores_a_chosen_detector_in_nab_layout(tmp_path: Path, fake_peer: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data, labels = small_corpus(tmp_path)
    out = tmp_path / "results"
    rc = _runner().main([str(data), str(labels), "--detector", "context_ose", "--out", str(out),
                         "--loco", "--no-cost"])
    assert rc == 0
    with (out / nab.DETECTOR_NAME / "realThings" / f"{nab.DETECTOR_NAME}_thing.csv").open() as fh:
        rows = list(csv.reader(fh))[1:]
    # The stand-in peer alone: its raw score, 0.9 exactly on the rows above the file's mid-range.
    scores = [float(r[2]) for r in rows]
    assert scores[:300] == [0.0] * 300 and scores[300:] == [0.9] * 100
    printed = capsys.readouterr().out
    assert "detector context_ose" in printed and "MEAN (categories w/ windows)" in printed


def test_runner_refuses_an_unknown_detector_and_an_absent_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    data, labels = small_corpus(tmp_path)
    runner = _runner()
    with pytest.raises(SystemExit) as exc:
        runner.main([str(data), str(labels), "--detector", "htm"])
    assert exc.value.code == 2
    from console.analytics.detectors import ensemble

    monkeypatch.setitem(ensemble.PEERS, "context_ose", ("console.analytics.detectors.no_such_module", "X"))
    assert runner.main([str(data), str(labels), "--detector", "ensemble", "--no-cost"]) == 2
    assert "'ensemble' is not available here" in capsys.readouterr().err


def test_cached_ensemble_stream_is_the_live_detector_s_stream(tmp_path: Path, fake_peer: None) -> None:
    # The cache keeps each part's stream and combines them: the result must be exactly the
    # ensemble stepped live, at every alarm level tried.
    from console.analytics.detectors.ensemble import EnsembleSettings

    runner = _runner()
    data, labels = small_corpus(tmp_path)
    series = nab.load_corpus(data, nab.load_labels(labels))[0]
    for alarm in (0.6, 0.95):
        s = EnsembleSettings(alarm=alarm)
        cached = runner.cached_stream(series, s, tmp_path / "cache")
        assert np.array_equal(cached, nab.run_stream(series.values, s))
        alone = float(nab.run_stream(series.values, s.series).max())
        assert cached.max() == pytest.approx(min(1.0, max(0.9, alone) * 0.5 / alarm))


def test_ensemble_grids_vary_one_thing_and_keep_the_base_first() -> None:
    from console.analytics.detectors.ensemble import EnsembleSettings, PeerSettings

    runner = _runner()
    base = EnsembleSettings(alarm=0.75)
    g = runner.grids(base)
    alarm = g["alarm"]()
    assert next(iter(alarm.values())) == base
    assert {(v.series, v.peer) for v in alarm.values()} == {(base.series, base.peer)}
    z = g["z_alarm"]()
    assert all(isinstance(v, EnsembleSettings) and v.peer == base.peer for v in z.values())
    assert sorted({v.series.z_alarm for v in z.values()}) == [6.0, 7.0, 8.0, 9.0, 10.0]
    assert list(runner.grids(PeerSettings())) == ["live"]


@pytest.mark.parametrize(("rows", "rest"), [(400, 12), (4032, 120), (22695, 150)])
def test_a_peer_left_to_nab_rests_a_fifth_of_the_probation(rows: int, rest: int) -> None:
    from console.analytics.detectors.ensemble import EnsembleSettings, PeerSettings, bounded_peer

    assert nab.for_file(PeerSettings(), rows) == PeerSettings(rest_period=rest)
    filled = nab.for_file(EnsembleSettings(), rows)
    # The ensemble's peer keeps its memory cap; only the rest period is filled in.
    assert isinstance(filled, EnsembleSettings) and filled.peer == replace(bounded_peer(), rest_period=rest)
    fixed = PeerSettings(rest_period=7)
    assert nab.for_file(fixed, rows) is fixed  # a number is kept: it is what runs live
