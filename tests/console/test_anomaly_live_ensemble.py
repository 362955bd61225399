"""The ensemble as the console runs it live: the series detector with its live settings and CAD
OSE (bounded memory, fixed rest period) on a physical range, here a series of petaflops in
[0, 100]. What it flags, and when, on the textbook shapes: a step, a spike, a drift, a seasonal
series, a flat line. (In the console a flag also has to be material, a quarter of the series'
median away from it, before it becomes a finding: `workload`.)
"""

from __future__ import annotations

import numpy as np

from console.analytics.anomaly import DetectorConfig
from console.analytics.detectors.ensemble import LIVE_REST, MAX_CONTEXTS, EnsembleDetector, live_settings

N = 2000
AT = 1500  # where the change starts
RANGE = (0.0, 100.0)  # physical bounds (installed petaflops), not the series' own min / max
T = np.arange(N)


def flags(values: np.ndarray) -> list[tuple[int, str]]:
    """(step, which part's score reached the alarm) for every step the ensemble flags."""
    settings = live_settings(DetectorConfig().series)
    det = EnsembleDetector(1, settings, [RANGE])
    out = []
    for i, v in enumerate(values):
        if det.step(np.array([v]))[0] >= 0.5:
            out.append((i, "context" if det.last_peer[0] >= settings.alarm else "series"))
    return out


def noise(seed: int = 0) -> np.ndarray:
    return 60.0 + np.random.default_rng(seed).normal(0.0, 1.0, N)


def test_live_settings_are_nabs_ensemble_with_a_fixed_rest_period() -> None:
    s = live_settings(DetectorConfig().series)
    assert s.series == DetectorConfig().series
    assert s.peer is not None and s.peer.rest_period == LIVE_REST == 150
    assert (s.peer.max_contexts, s.peer.replay) == (MAX_CONTEXTS, MAX_CONTEXTS // 20)


def test_flat_line_is_never_flagged_and_its_step_is_flagged_at_once() -> None:
    # CAD OSE's flat-line quirk (0.5 forever) sits below the ensemble's alarm of 0.75.
    assert flags(np.full(N, 60.0)) == []
    stepped = np.where(T >= AT, 40.0, 60.0)
    assert flags(stepped) == [(AT, "context")]


def test_noise_crossing_a_bin_edge_for_the_first_time_is_flagged_once() -> None:
    # 60 +- 1 in [0, 100]: CAD OSE's bins are 100/7 wide; a 3-sigma dip to 56.9 enters the bin
    # below 57.1 for the first time (step 238, after the 150-step rest). The series detector
    # sees nothing (robust z 0.2); live, the materiality test (5% < 25%) keeps it off the screen.
    assert flags(noise()) == [(238, "context")]


def test_a_step_down_is_flagged_on_its_first_sample() -> None:
    x = noise()
    x[AT:] -= 25.0
    assert flags(x) == [(238, "context"), (AT, "context")]


def test_a_spike_is_flagged_on_its_sample() -> None:
    x = noise()
    x[AT] = 95.0
    assert flags(x) == [(238, "context"), (AT, "context")]


def test_a_drift_is_flagged_as_it_enters_new_bins_before_the_series_detector_sees_it() -> None:
    x = noise()
    x[1200:] += np.linspace(0.0, 30.0, N - 1200)  # +30 over 800 steps
    got = flags(x)
    assert got[0] == (238, "context")
    # 71.5 at step 1462, the first visit to the bin above 71.4; later ones follow as it climbs.
    assert got[1] == (1462, "context")
    assert [i for i, _ in got] == [238, 1462, 1500, 1836]


def test_a_seasonal_series_is_quiet_until_its_amplitude_doubles() -> None:
    rng = np.random.default_rng(0)
    rng.normal(0.0, 1.0, N)  # the same draws as `noise` first, so the series is reproducible
    x = 50.0 + 20.0 * np.sin(2 * np.pi * T / 144) + rng.normal(0.0, 1.0, N)
    quiet = flags(x)
    # Two first visits of a rare (bin, bin) transition in 1,500 steps, none by the series part.
    assert quiet == [(586, "context"), (1262, "context")]
    x[AT:] = 50.0 + 40.0 * np.sin(2 * np.pi * T[AT:] / 144) + rng.normal(0.0, 1.0, N - AT)
    # Flagged on the first crest of the larger swing (87.5 at step 1610; the crest is at 1620).
    assert flags(x) == quiet + [(1610, "context")]
