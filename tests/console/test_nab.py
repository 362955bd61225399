"""NAB scorer on a tiny hand-computed example, and the runner's output layout."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

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
