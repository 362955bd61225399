"""History backfill: the Prometheus source reads back past cluster series and the state seeds its
history with them, against a loopback server answering hand-written query_range matrices."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from urllib.parse import parse_qs

import numpy as np
import pytest
from test_sources_http import ReplayServer, capture, server  # noqa: F401  (fixture)
from test_sources_prometheus import _series, _vector

from console.config import ClusterSettings, ConfigError, parse_settings
from console.model import HistorySeed, SourceState, TelemetryUpdate
from console.peaks import boost_clock_mhz, peak_tflops
from console.polling import PollResult
from console.sources.factory import build_sources
from console.sources.prometheus import PrometheusClient, PrometheusTelemetrySource
from console.sources.prometheus_history import HistoryBackfill, cluster_history_queries
from console.state import ClusterState

T0 = 1_795_935_495.0  # 15 s into its minute
MODEL = "NVIDIA H800 80GB HBM3"
PEAK = peak_tflops(MODEL)
INSTALLED = 4 * PEAK / 1000  # the fake Prometheus reports 2 nodes x 2 GPUs
B0 = math.floor(T0 / 60) * 60  # start of T0's one-minute bucket


def delivered_at(t: float) -> float:
    return round(1.0 + (t % 3600) / 3600, 6)


class FakeProm:
    """Instant queries answer a 2x2-GPU cluster; range queries answer from a store of series
    with a hole in it (``gap``), or the queued failures first."""

    def __init__(self, server: ReplayServer, model: str = MODEL) -> None:
        self.server = server
        self.gap: tuple[float, float] = (0.0, 0.0)
        self.failures: list[tuple[int, bytes]] = []
        self.ranges: list[dict[str, str]] = []
        # 1.0 for every metric (``up`` included): a value each of them can really take (a
        # tensor activity of 50 would be refused as implausible, with a warning)
        live = json.dumps(_vector([_series("M", h, g, 1.0, modelName=model)
                                   for h in ("n01", "n02") for g in (0, 1)])).encode()
        server.add("GET", "/api/v1/query", 200, live)
        server.add_handler("GET", "/api/v1/query_range", self._range)

    def _range(self, h) -> None:
        q = {k: v[0] for k, v in parse_qs(h.path.split("?", 1)[1]).items()}
        self.ranges.append(q)
        if self.failures:
            status, body = self.failures.pop(0)
        else:
            start, end, step = float(q["start"]), float(q["end"]), float(q["step"])
            installed = "DCGM_FI_DEV_GPU_UTIL" in q["query"]
            values = []
            for k in range(int((end - start) / step) + 1):
                t = start + k * step
                if not self.gap[0] <= t < self.gap[1]:
                    values.append([t, repr(INSTALLED if installed else delivered_at(t))])
            result = [{"metric": {}, "values": values}] if values else []
            status = 200
            body = json.dumps({"status": "success",
                               "data": {"resultType": "matrix", "result": result}}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _source(server: ReplayServer, hours: float = 2.0, clock: Callable[[], float] | None = None,
            model: str = MODEL, **kw: float) -> tuple[PrometheusTelemetrySource, FakeProm]:
    fake = FakeProm(server, model)
    src = PrometheusTelemetrySource(PrometheusClient.from_url(server.url, timeout=(3.05, 7.0)),
                                    interval_s=10.0)
    src.configure_backfill(hours, default_model=MODEL)
    if clock is not None or kw:
        src.backfill = HistoryBackfill(hours, clock=clock or Clock(), timeout_s=7.0, **kw)
    return src, fake


def _state() -> ClusterState:
    return ClusterState(ClusterSettings(name="lab"), [("prometheus", "telemetry", 10.0)])


class Feed:
    """Hands poll results to a state with increasing request ids, as the poller would."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.rid = 0

    def __call__(self, updates: list, t: float) -> None:
        self.rid += 1
        assert self.state.apply(PollResult(source="prometheus", kind="telemetry",
                                           request_id=self.rid, started_at=t, fetched_at=t + 0.5,
                                           latency_s=0.5, updates=tuple(updates)))


def centres(first_bucket: float, last_bucket: float) -> np.ndarray:
    return np.arange(first_bucket, last_bucket + 1, 60.0) + 30.0


# ------------------------------------------------------------------ source + state, end to end


def test_seed_lands_in_history_before_the_first_own_sample(server: ReplayServer) -> None:
    src, fake = _source(server, hours=2.0)
    state = _state()
    state.build_frame(now=T0 - 5)  # before any data: a row of zeros that must not survive
    updates = src.fetch(now=T0)
    assert [type(u) for u in updates] == [TelemetryUpdate, HistorySeed]
    assert updates[0].warnings == ()
    # one chunk per series, on the one-minute bucket centres, each with a server-side timeout
    assert len(fake.ranges) == 2
    expected_t = centres(math.floor((T0 - 7200) / 60) * 60 + 60, B0 - 60)
    for q in fake.ranges:
        assert (float(q["start"]), float(q["end"]), q["step"], q["timeout"]) == \
            (expected_t[0], expected_t[-1], "60", "2500ms")
    Feed(state)(updates, T0)
    frame = state.build_frame(now=T0 + 1)
    h = frame.history
    np.testing.assert_array_equal(h.t, np.append(expected_t, T0))
    np.testing.assert_array_equal(h.series["delivered_pf"][:-1],
                                  np.array([delivered_at(t) for t in expected_t], np.float32))
    np.testing.assert_array_equal(h.series["installed_pf"][:-1],
                                  np.full(len(expected_t), INSTALLED, np.float32))
    for key in ("available_pf", "allocated_pf", "busy_pf", "jobs_running", "jobs_pending"):
        assert np.isnan(h.series[key][:-1]).all(), key  # Prometheus has no history of these
    assert h.series["installed_pf"][-1] == pytest.approx(INSTALLED)  # the own sample follows
    assert h.tenant_delivered_pf.shape[0] == h.tenant_gpus.shape[0] == len(h.t)
    # later polls ask for no more history
    src.fetch(now=T0 + 10)
    assert len(fake.ranges) == 2


def test_gaps_in_prometheus_stay_nan(server: ReplayServer) -> None:
    src, fake = _source(server, hours=1.0)
    fake.gap = (B0 - 1800, B0 - 1200)  # Prometheus itself was down for ten minutes
    state = _state()
    Feed(state)(src.fetch(now=T0), T0)
    h = state.build_frame(now=T0 + 1).history
    t, d = h.t[:-1], h.series["delivered_pf"][:-1]
    hole = (t >= B0 - 1800) & (t < B0 - 1200)
    assert hole.sum() == 10
    assert np.isnan(d[hole]).all() and np.isnan(h.series["installed_pf"][:-1][hole]).all()
    assert np.isfinite(d[~hole]).all()


def test_outage_gap_is_read_back_after_recovery(server: ReplayServer) -> None:
    src, fake = _source(server, hours=1.0)
    state = _state()
    feed = Feed(state)
    feed(src.fetch(now=T0), T0)
    state.build_frame(now=T0 + 1)
    # Every source unreachable for an hour: no rows at all meanwhile. Then Prometheus answers.
    t1 = T0 + 3600
    fake.ranges.clear()
    updates = src.fetch(now=t1)
    assert isinstance(updates[-1], HistorySeed)
    gap_t = centres(B0 + 60, B0 + 3600 - 60)
    assert (float(fake.ranges[0]["start"]), float(fake.ranges[0]["end"])) == (gap_t[0], gap_t[-1])
    feed(updates, t1)
    h = state.build_frame(now=t1 + 1).history
    inside = (h.t > T0) & (h.t < t1)
    np.testing.assert_array_equal(h.t[inside], gap_t)
    np.testing.assert_array_equal(h.series["delivered_pf"][inside],
                                  np.array([delivered_at(t) for t in gap_t], np.float32))
    assert h.t[-1] == t1 and T0 in h.t


# ------------------------------------------------------------------ the state's rules


def _tel(t: float) -> TelemetryUpdate:
    metrics = {k: np.full((1, 1), 50.0, np.float32) for k in ("util", "tensor", "sm_clock")}
    metrics["tensor"][:] = 0.5
    metrics["sm_clock"][:] = 1980.0
    return TelemetryUpdate(time=t, nodes=("n01",), gpus_per_node=1, metrics=metrics,
                           node_up=np.array([True]), node_model=(MODEL,))


def test_seed_never_overwrites_or_follows_own_samples() -> None:
    state = _state()
    feed = Feed(state)
    own_t = [T0 - 300 + 60 * i for i in range(6)]  # one own row in each of six buckets
    for t in own_t:
        feed([_tel(t)], t)
        state.build_frame(now=t)
    before = state.build_frame(now=T0 + 1).history
    seed_t = centres(B0 - 1200, B0 + 120)  # overlaps the own rows and goes past the newest
    feed([HistorySeed(series={"delivered_pf": (seed_t, np.full(len(seed_t), 99.0, np.float32))})],
         T0 + 2)
    h = state.build_frame(now=T0 + 3).history
    taken = seed_t[seed_t < B0 - 300]
    np.testing.assert_array_equal(h.t, np.concatenate([taken, before.t]))
    n = len(taken)
    for key, own in before.series.items():
        np.testing.assert_array_equal(h.series[key][n:], own)  # own rows untouched
    assert (h.series["delivered_pf"][:n] == 99.0).all()
    assert np.isnan(h.series["installed_pf"][:n]).all()  # not in the seed: NaN, not zero
    assert h.series["delivered_pf"][n] == pytest.approx(0.5 * PEAK / 1000)


def test_seed_fills_empty_buckets_between_own_samples_only() -> None:
    state = _state()
    feed = Feed(state)
    for t in (T0 - 3600, T0 - 3590, T0):
        feed([_tel(t)], t)
        state.build_frame(now=t)
    seed_t = centres(B0 - 3660, B0)
    feed([HistorySeed(series={"delivered_pf": (seed_t, np.full(len(seed_t), 7.0, np.float32))})],
         T0 + 1)
    h = state.build_frame(now=T0 + 1).history
    own_buckets = {math.floor((T0 - 3600) / 60), math.floor(T0 / 60)}
    expected = [t for t in seed_t if math.floor(t / 60) not in own_buckets]
    seeded = h.series["delivered_pf"] == 7.0
    np.testing.assert_array_equal(h.t[seeded], expected)
    assert {T0 - 3600, T0 - 3590, T0} <= set(h.t[~seeded].tolist())
    assert (np.diff(h.t) > 0).all()


def test_history_window_bounds_the_seed() -> None:
    state = ClusterState(ClusterSettings(name="lab"), [("prometheus", "telemetry", 10.0)],
                         history_raw_points=100, history_hours=2.0)
    feed = Feed(state)
    feed([_tel(T0)], T0)
    seed_t = centres(B0 - 6 * 3600, B0 - 60)
    feed([HistorySeed(series={"delivered_pf": (seed_t, np.arange(len(seed_t), dtype=np.float32))})],
         T0)
    h = state.build_frame(now=T0 + 1).history
    assert len(h.t) == 120 + 1  # two hours of one-minute rows, then the own sample
    np.testing.assert_array_equal(h.t[:-1], seed_t[-120:])


# ------------------------------------------------------------------ failures


def test_failure_is_a_warning_retried_a_bounded_number_of_times(server: ReplayServer) -> None:
    clock = Clock()
    src, fake = _source(server, hours=1.0, clock=clock, retry_s=30.0, max_attempts=3)
    too_many = capture("prom_query_range_too_many_points.400.json")
    fake.failures = [(400, too_many)] * 3
    state = _state()
    feed = Feed(state)
    updates = src.fetch(now=T0)
    assert [type(u) for u in updates] == [TelemetryUpdate]  # live data flows regardless
    (w,) = updates[0].warnings
    assert w.startswith("history backfill failed (attempt 1 of 3, retrying in 30 s): query "
                        "rejected by") and "11,000 points" in w
    feed(updates, T0)
    status = state.build_frame(now=T0 + 1).sources[0]
    assert status.state is SourceState.OK and "history backfill failed" in status.detail
    clock.now += 29  # not yet due: the warning stays, nothing is asked
    assert src.fetch(now=T0 + 10)[0].warnings == (w,) and len(fake.ranges) == 1
    clock.now += 1
    (w2,) = src.fetch(now=T0 + 20)[0].warnings
    assert w2.startswith("history backfill failed (attempt 2 of 3, retrying in 60 s)")
    clock.now += 60
    (w3,) = src.fetch(now=T0 + 30)[0].warnings
    assert w3.startswith("history backfill gave up after 3 attempts (no history from ")
    clock.now += 3600
    assert src.fetch(now=T0 + 40)[0].warnings == (w3,)  # stays visible; never asked again
    assert len(fake.ranges) == 3


def test_server_timeout_halves_the_chunk_and_recovers(server: ReplayServer) -> None:
    clock = Clock()
    src, fake = _source(server, hours=1.0, clock=clock, retry_s=30.0)
    fake.failures = [(503, json.dumps({"status": "error", "errorType": "timeout",
                                       "error": "query timed out in expression evaluation"}
                                      ).encode())]
    (upd,) = src.fetch(now=T0)
    assert upd.warnings == ()  # not a failure: the next poll asks for less at once
    updates = src.fetch(now=T0 + 10)
    assert updates[0].warnings == () and isinstance(updates[1], HistorySeed)
    spans = [(float(q["start"]), float(q["end"])) for q in fake.ranges]
    first, last = spans[0]
    assert len(spans) == 1 + 4  # the failed whole, then two halves for each of two series
    halves = sorted(set(spans[1:]))
    assert halves[0][0] == first and halves[1][1] == last and halves[1][0] == halves[0][1] + 60
    t, v = updates[1].series["delivered_pf"]
    np.testing.assert_array_equal(t, np.arange(first, last + 1, 60.0))
    np.testing.assert_array_equal(v, np.array([delivered_at(x) for x in t], np.float32))


def test_budget_spreads_chunks_over_polls_newest_first(server: ReplayServer) -> None:
    clock = Clock()
    src, fake = _source(server, hours=12.0, clock=clock, budget_s=0.0, chunk_points=360)
    state = _state()
    feed = Feed(state)
    seeds = []
    for i in range(3):
        updates = src.fetch(now=T0 + 10 * i)
        seeds += [u for u in updates if isinstance(u, HistorySeed)]
        feed(updates, T0 + 10 * i)
    assert len(seeds) == 2 and len(fake.ranges) == 4
    assert seeds[0].series["delivered_pf"][0][0] > seeds[1].series["delivered_pf"][0][-1]
    h = state.build_frame(now=T0 + 30).history
    seeded = h.t[h.t < T0]
    np.testing.assert_array_equal(seeded, centres(math.floor((T0 - 12 * 3600) / 60) * 60 + 60,
                                                  B0 - 60))
    assert (np.diff(h.t) > 0).all()


def test_unknown_gpu_model_gives_up_with_words(server: ReplayServer) -> None:
    src, fake = _source(server, hours=1.0, model="Mystery GPU 9000")
    (upd,) = src.fetch(now=T0)
    (w,) = upd.warnings
    assert w.startswith("history backfill gave up after 1 attempt (no history from ")
    assert "'Mystery GPU 9000'" in w and "[clusters].peaks" in w
    assert src.fetch(now=T0 + 10)[0].warnings == (w,)
    assert fake.ranges == []


# ------------------------------------------------------------------ queries and settings


def test_queries_match_models_exactly_and_leave_gaps_empty() -> None:
    q = cluster_history_queries({MODEL: (PEAK, 1980.0), "Other": (100.0, 0.0), "Nope": (0.0, 0.0)})
    by = "Hostname, hostname, gpu"
    sel = f'{{modelName="{MODEL}"}}'
    assert q["delivered_pf"].startswith(
        f"sum((max by ({by}) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{sel}) * on({by}) "
        f"(clamp_max(max by ({by}) (DCGM_FI_DEV_SM_CLOCK{sel}) / 1980, 1) or count by ({by}) "
        f"(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{sel}) * 0 + 1) * {PEAK:g}) or ")
    assert '{modelName="",model_name="Other"}) * 100)' in q["delivered_pf"]
    assert "Nope" not in q["delivered_pf"] and "vector(0)" not in q["delivered_pf"]
    assert q["installed_pf"] == (
        f"sum((count by ({by}) (DCGM_FI_DEV_GPU_UTIL{sel}) * 0 + {PEAK:g}) or "
        f'(count by ({by}) (DCGM_FI_DEV_GPU_UTIL{{modelName="",model_name="{MODEL}"}}) * 0 + '
        f'{PEAK:g}) or (count by ({by}) (DCGM_FI_DEV_GPU_UTIL{{modelName="Other"}}) * 0 + 100) or '
        f'(count by ({by}) (DCGM_FI_DEV_GPU_UTIL{{modelName="",model_name="Other"}}) * 0 + 100))'
        " / 1000")
    unlabelled = cluster_history_queries({"": (PEAK, 0.0)})["installed_pf"]
    assert unlabelled == (f'sum((count by ({by}) (DCGM_FI_DEV_GPU_UTIL{{modelName="",model_name=""}})'
                          f" * 0 + {PEAK:g})) / 1000")
    assert boost_clock_mhz(MODEL) == 1980.0


def _settings(prom: str, top: str = "") -> ClusterSettings:
    import tomllib

    raw = tomllib.loads(f'{top}\n[[clusters]]\nname = "lab"\nprecision = "fp8_dense"\n'
                        f'[clusters.prometheus]\nurl = "http://127.0.0.1:9"\n{prom}\n')
    return parse_settings(raw).clusters[0]


def test_backfill_setting_defaults_on_and_reaches_the_source() -> None:
    c = _settings("")
    assert c.prometheus is not None and c.prometheus.backfill_hours == 24.0
    (src,) = [s for s in build_sources(c) if isinstance(s, PrometheusTelemetrySource)]
    assert src.backfill is not None and src.backfill.hours == 24.0
    # the server gives up a backfill query after a quarter of the interval (at most timeout_s)
    assert src.backfill.timeout_s == 2.5 and src._precision == "fp8_dense"
    slow = _settings("interval_s = 60\ntimeout_s = 8")
    (src,) = [s for s in build_sources(slow) if isinstance(s, PrometheusTelemetrySource)]
    assert src.backfill is not None and src.backfill.timeout_s == 8.0
    off = _settings("backfill_hours = 0")
    (src,) = [s for s in build_sources(off) if isinstance(s, PrometheusTelemetrySource)]
    assert src.backfill is None
    assert _settings("backfill_hours = 500", "history_hours = 48").prometheus.backfill_hours == 48.0
    with pytest.raises(ConfigError, match=r"backfill_hours: 0 \(off\) or more"):
        _settings("backfill_hours = -1")
    with pytest.raises(ConfigError, match="unknown key.*backfill_hour"):
        _settings("backfill_hour = 3")


def test_rebuilt_history_equals_appending_every_row_in_order() -> None:
    """The seeded history is exactly what appending old and seed rows in time order would give,
    in both tiers, and stays so as new rows arrive (the running minute carries on)."""
    from console.history import TieredHistory
    from console.state import _reseeded

    rng = np.random.default_rng(5)
    old = TieredHistory(3, raw_capacity=50, coarse_capacity=100)
    for t in np.sort(T0 - rng.uniform(0, 7000, 400)):
        old.append(float(t), rng.normal(size=3).astype(np.float32))
    seed_t = centres(B0 - 20_000 // 60 * 60, B0 - 8040)
    seed_rows = rng.normal(size=(len(seed_t), 3)).astype(np.float32)
    seed_rows[::7] = np.nan
    rebuilt = _reseeded(old, np.ones(len(old.window()[0]), bool), seed_t, seed_rows)
    replayed = TieredHistory(3, raw_capacity=50, coarse_capacity=100)
    t, v = old.window()
    all_t, all_v = np.concatenate([t, seed_t]), np.concatenate([v, seed_rows])
    for i in np.argsort(all_t):
        replayed.append(float(all_t[i]), all_v[i])
    for t_new in (None, T0 + 100, T0 + 130, T0 + 400):
        if t_new is not None:
            for h in (rebuilt, replayed):
                h.append(t_new, np.full(3, t_new - T0, np.float32))
        for a, b in zip(rebuilt.window(), replayed.window()):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(rebuilt.coarse.view()[1], replayed.coarse.view()[1], rtol=1e-6)
