"""SeriesDetector on synthetic series with known change points: detected where they are,
quiet on clean noise and on a repeating cycle, one alarm per change, columns independent."""

from __future__ import annotations

import numpy as np

from console.analytics.detectors.series import SeriesDetector, SeriesSettings


def alarms(values: np.ndarray, settings: SeriesSettings | None = None) -> list[int]:
    det = SeriesDetector(1, settings)
    out = []
    one = np.zeros(1)
    for i, v in enumerate(values):
        one[0] = v
        if det.step(one)[0] >= 0.5:
            out.append(i)
    return out


def test_clean_gaussian_noise_is_almost_always_quiet() -> None:
    # The range rule (NAB's "spatial anomaly") flags a new record beyond the window's range by
    # 5% of it: on Gaussian noise that is about one sample in a thousand, never in a young
    # window. The live findings add a materiality test on top (see test_anomaly_live_series).
    rng = np.random.default_rng(11)
    found = alarms(rng.normal(100.0, 5.0, 3000))
    assert len(found) <= 3 and all(f >= 600 for f in found)


def test_young_window_never_alarms_on_noise() -> None:
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        assert alarms(rng.normal(0.0, 1.0, 600)) == []


def test_daily_cycle_that_repeats_raises_nothing() -> None:
    rng = np.random.default_rng(12)
    t = np.arange(3000)
    cycle = 50 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, t.size)
    assert alarms(cycle) == []


def test_level_shift_is_detected_within_a_few_samples_and_once() -> None:
    rng = np.random.default_rng(13)
    x = rng.normal(100.0, 5.0, 1200)
    x[800:] += 60.0
    found = alarms(x)
    assert len(found) == 1 and 800 <= found[0] <= 803


def test_spike_is_detected_at_the_spike() -> None:
    rng = np.random.default_rng(14)
    x = rng.normal(10.0, 1.0, 900)
    x[700] = 40.0
    assert alarms(x) == [700]


def test_cycle_that_freezes_is_detected() -> None:
    # A stuck sensor: the values stay inside their usual range, only the shape changes.
    rng = np.random.default_rng(15)
    t = np.arange(2400)
    x = 50 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.5, t.size)
    x[1700:1800] = 69.0 + rng.normal(0, 0.5, 100)
    found = alarms(x)
    assert found and 1700 <= found[0] <= 1705
    assert all(f >= 1700 for f in found)


def test_up_only_ignores_drops() -> None:
    rng = np.random.default_rng(16)
    x = rng.normal(100.0, 5.0, 1000)
    x[600:] -= 80.0
    assert alarms(x, SeriesSettings(up_only=True)) == []
    y = rng.normal(100.0, 5.0, 1000)
    y[600:] += 80.0
    assert alarms(y, SeriesSettings(up_only=True))[:1] == [600]


def test_columns_are_independent_and_nan_is_no_data() -> None:
    rng = np.random.default_rng(17)
    det = SeriesDetector(3)
    hits = {0: [], 1: [], 2: []}
    for i in range(900):
        v = rng.normal(10.0, 1.0, 3)
        if i >= 700:
            v[1] += 30.0
        if i % 7 == 0:
            v[2] = np.nan  # gaps: never scored, never an alarm
        s = det.step(v)
        assert np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()
        for c in range(3):
            if s[c] >= 0.5:
                hits[c].append(i)
    assert hits[0] == [] and hits[2] == []
    assert hits[1][:1] == [700]


def test_no_score_before_min_history() -> None:
    det = SeriesDetector(1, SeriesSettings(min_history=30))
    for i in range(29):
        assert det.step(np.array([1000.0 * (i % 2)]))[0] == 0.0


def test_fast_median_matches_nanmedian_with_gaps_and_empty_columns() -> None:
    # The detector's median skips numpy's slow NaN path for complete columns; it must give
    # exactly what nanmedian gives, for complete, gappy and all-NaN columns alike.
    import warnings

    from console.analytics.detectors.series import _median0

    rng = np.random.default_rng(18)
    for rows in (1, 2, 7, 600):
        a = rng.normal(0.0, 1.0, (rows, 5))
        a[rng.random((rows, 5)) < 0.3] = np.nan
        a[:, 0] = rng.normal(0.0, 1.0, rows)  # complete column
        a[:, 4] = np.nan  # no data at all
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(a, axis=0)
        got = _median0(a)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.array_equal(got[~np.isnan(want)], want[~np.isnan(want)])
    full = rng.normal(0.0, 1.0, (600, 3))
    assert np.array_equal(_median0(full), np.median(full, axis=0))


def _nab_file(rel: str) -> np.ndarray:
    """A NAB series shipped with the tests (tests/fixtures/nab, MIT licence): a missing file
    is a failure, not a skip."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "fixtures" / "nab" / rel
    return np.genfromtxt(path, delimiter=",", skip_header=1, usecols=1)


def test_a_day_whose_peak_is_lower_is_found_by_the_coarse_shape_test() -> None:
    # NAB's art_daily_jumpsdown: on day 10 the daily jump reaches half its usual height. Six
    # samples of it look like the noisy top of an ordinary jump; block means do not.
    x = _nab_file("artificialWithAnomaly/art_daily_jumpsdown.csv")
    window = range(2787, 3190)  # the labelled window, in rows
    with_blocks = alarms(x)
    assert [i for i in with_blocks if i in window][:1] and \
        all(i in window for i in with_blocks if i >= 604)  # after NAB's probationary rows
    fine_only = alarms(x, SeriesSettings(coarse=0))
    assert not [i for i in fine_only if i in window]


def test_coarse_blocks_skip_gaps_and_start_after_enough_blocks() -> None:
    det = SeriesDetector(2)
    rng = np.random.default_rng(19)
    for i in range(8 * 30):
        v = rng.normal(10.0, 1.0, 2)
        v[1] = np.nan  # a series with no data never gets a block mean
        det.step(v)
        if det.settings.min_history <= i < 8 * (3 * det.settings.embed + 1):
            assert det.last_parts[3][0] == 0.0  # too few blocks to judge a shape of blocks
    assert det._cfilled == 30
    assert np.isfinite(det._cbuf[-30:, 0]).all() and np.isnan(det._cbuf[:, 1]).all()
    assert abs(float(np.mean(det._cbuf[-30:, 0])) - 10.0) < 0.5


def test_a_day_without_its_jump_is_found_against_the_same_hours_a_day_earlier() -> None:
    # NAB's art_daily_nojump: on day 10 the daily jump does not come. A flat stretch looks like
    # the flat part of any ordinary day, so the nearest-neighbour tests accept it; the same
    # hours one day earlier held the jump.
    x = _nab_file("artificialWithAnomaly/art_daily_nojump.csv")
    window = range(2787, 3190)
    found = alarms(x)
    assert [i for i in found if i in window][:1] and all(i in window for i in found if i >= 604)
    assert not [i for i in alarms(x, SeriesSettings(seasonal_acf=2.0)) if i in window]


def test_period_is_found_by_autocorrelation() -> None:
    from console.analytics.detectors.series import _period

    rng = np.random.default_rng(20)
    t = np.arange(600)
    cols = np.stack([np.sin(2 * np.pi * t / 36) + rng.normal(0, 0.1, t.size),
                     rng.normal(0, 1.0, t.size)], axis=1)
    period, acf = _period(cols, 6, 200)
    assert period[0] == 36 and acf[0] > 0.95
    assert acf[1] < 0.5  # noise repeats at no lag


def test_seasonal_test_stays_quiet_on_a_repeating_cycle_and_on_noise() -> None:
    rng = np.random.default_rng(21)
    t = np.arange(8 * 600)
    cycle = 50 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, t.size)
    det = SeriesDetector(2)
    fired = []
    for i in range(t.size):
        s = det.step(np.array([cycle[i], rng.normal(0.0, 1.0)]))
        if det.last_part[0] == 3 and s[0] >= 0.5:
            fired.append(i)
    assert fired == []
    assert det._season.acf[0] >= 0.95 and det._season.period[0] == 36  # judged: 288 / 8 blocks
    assert det._season.acf[1] < 0.95


def test_a_cliff_after_a_small_dip_breaks_the_quiet_time() -> None:
    # A temperature dips (flagged), then falls off a cliff 100 samples later, inside the quiet
    # time: the cliff is far beyond the range at the first alarm, so it is a new alarm.
    rng = np.random.default_rng(17)
    x = rng.normal(80.0, 1.0, 1200)
    x[800:] -= 8.0  # the dip: below the window's range
    x[900:] -= 40.0  # the cliff
    found = alarms(x)
    assert len(found) == 2 and 800 <= found[0] <= 802 and 900 <= found[1] <= 902
    assert alarms(x, SeriesSettings(escalate=0.0)) == found[:1]


def test_a_repeat_of_the_same_size_stays_quiet() -> None:
    rng = np.random.default_rng(18)
    x = rng.normal(10.0, 1.0, 1200)
    x[700] = 40.0
    x[800] = 41.0  # the same break again: not beyond the range at the alarm by 1.5 ranges
    assert alarms(x) == [700]


def test_flat_line_is_quiet_and_its_first_move_is_flagged_at_once() -> None:
    # A constant has no spread: the scale floor (share of |median|) keeps z finite, and the
    # first departure, however small next to the value, is a range break on that very sample.
    assert alarms(np.full(3000, 5.0)) == []
    step = np.full(3000, 5.0)
    step[2000:] = 5.5
    assert alarms(step) == [2000]


def test_a_drift_is_flagged_soon_after_it_starts_and_again_while_it_goes_on() -> None:
    # 0.05 noise sigmas per sample: a few tens of samples take it past the window's range.
    # Once flagged, a drift that keeps going is flagged again when it leaves the range it had at
    # the alarm by 1.5x (escalation) or after the quiet time (ended early once z settled):
    # a few alarms over its 2000 samples, never on every sample.
    rng = np.random.default_rng(30)
    x = rng.normal(100.0, 1.0, 3000)
    x[1000:] += 0.05 * np.arange(2000)
    found = alarms(x)
    assert found[0] >= 1000 and found[0] <= 1060
    assert 3 <= len(found) <= 8
    assert all(b - a >= 120 for a, b in zip(found, found[1:]))


def test_adaptive_quiet_time_lets_a_new_anomaly_through_once_the_series_settled() -> None:
    # A level shift, then 200 samples later a spike too small to escalate: the fixed quiet time
    # (500 samples, calm off) hides it; with ``calm`` the quiet time ended once the shifted
    # series settled.
    rng = np.random.default_rng(13)
    x = rng.normal(100.0, 5.0, 1400)
    x[800:] += 60.0
    x[1000] = 200.0
    assert alarms(x, SeriesSettings(calm=0)) == [800]
    assert alarms(x, SeriesSettings(calm=30)) == [800, 1000]


def test_likelihood_is_quiet_while_it_learns_and_flags_a_clear_spike() -> None:
    # The likelihood scores nothing until it has seen a quarter of its span (500 samples here),
    # then a spike far outside the series' usual z is flagged on the spike.
    rng = np.random.default_rng(14)
    x = rng.normal(10.0, 1.0, 3000)
    x[2500] = 40.0
    settings = SeriesSettings(likelihood=2000, z_alarm=6.0)
    det = SeriesDetector(1, settings)
    scores = np.array([det.step(np.array([v]))[0] for v in x])
    assert (scores[:500] == 0.0).all()
    assert np.flatnonzero(scores >= 0.5).tolist() == [2500]
