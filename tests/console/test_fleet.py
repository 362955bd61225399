"""Several clusters: `fleet_rows` from known frames (exact figures), and a `Fleet` of real engines
that delivers frames for every cluster and leaves no thread or process behind when stopped."""

from __future__ import annotations

import math
import multiprocessing
import threading
from dataclasses import replace

import pytest

from console.config import ClusterSettings, PrometheusSettings, Settings, SimSettings
from console.engine import Engine, run_sync
from console.fleet import Fleet, data_age, data_presence, fleet_rows, worst_source
from console.model import Frame, Kpis, SourceState, SourceStatus
from console.testing import frame_from_sim

NOW = 1_767_225_600.0


def known_frame(name: str = "alpha", *, ages: tuple[float | None, float | None, float | None] = (3.0, 4.0, 5.0),
                sources: tuple[SourceStatus, ...] | None = None, simulated: bool = False) -> Frame:
    """A simulated frame with every figure `fleet_rows` reads replaced by a chosen value."""
    f = frame_from_sim(nodes=4, polls=1)
    kpis = Kpis(installed_pf=31.664, available_pf=23.748, allocated_pf=11.874, busy_pf=9.9,
                delivered_pf=7.25, precision="BF16 dense", gpus_total=32, gpus_available=24,
                gpus_healthy=23, gpus_allocated=12, gpus_busy=10, gpus_by_health={}, nodes_total=4,
                nodes_by_state={}, jobs_running=2, jobs_pending=1, gpus_pending=16, alerts_firing=3,
                alerts_by_severity={"critical": 1, "warning": 2, "info": 0})
    if sources is None:
        sources = (SourceStatus("prometheus", "telemetry", SourceState.OK, 10.0, NOW - 3, NOW - 3, 0.05,
                                None, None),)
    data_time = {k: (None if a is None else NOW - a)
                 for k, a in zip(("telemetry", "scheduler", "alerts"), ages)}
    return replace(f, cluster=name, time=NOW, kpis=kpis, sources=sources, data_time=data_time,
                   stale_after_s={"telemetry": 30.0, "scheduler": 30.0, "alerts": 45.0},
                   simulated=simulated)


def status(name: str, state: SourceState, error: str | None = None) -> SourceStatus:
    return SourceStatus(name, "scheduler", state, 10.0, NOW - 20, NOW - 1, None, error,
                        None if error is None else "unreachable")


# --------------------------------------------------------------------------- fleet_rows


def test_a_row_carries_the_headline_figures_exactly() -> None:
    [row] = fleet_rows({"alpha": known_frame(simulated=True)}, NOW)
    assert row.name == "alpha" and not row.waiting and row.simulated
    assert (row.delivered_pf, row.installed_pf, row.precision) == (7.25, 31.664, "BF16 dense")
    assert (row.gpus_healthy, row.gpus_total) == (23, 32)
    assert (row.jobs_running, row.jobs_pending) == (2, 1)
    assert (row.alerts_critical, row.alerts_warning, row.alerts_info) == (1, 2, 0)
    assert row.alerts_firing == 3 and row.worst_severity is not None and row.worst_severity.name == "CRITICAL"
    assert row.source_state is SourceState.OK and row.source_errors == ""
    assert row.data_age_s == 5.0  # the oldest kind shown: alerts, 5 s
    assert not row.stale
    assert (row.telemetry, row.scheduler, row.alerts) == ("ok", "ok", "ok")


def test_a_cluster_without_a_frame_says_waiting() -> None:
    rows = fleet_rows({"alpha": known_frame(), "beta": None}, NOW, simulated={"beta": True})
    beta = rows[1]
    assert beta.name == "beta" and beta.waiting and beta.simulated
    assert beta.source_state is SourceState.WAITING
    assert math.isnan(beta.delivered_pf) and beta.data_age_s is None
    assert beta.alerts_firing is None and beta.worst_severity is None  # unknown, not 0


def test_rows_keep_the_configuration_order() -> None:
    frames = {"zeta": known_frame("zeta"), "alpha": known_frame("alpha"), "mu": None}
    assert [r.name for r in fleet_rows(frames, NOW)] == ["zeta", "alpha", "mu"]


def test_worst_source_state_and_its_error_words() -> None:
    sources = (status("prometheus", SourceState.OK),
               status("slurm", SourceState.FAILING, "token rejected or expired"),
               status("alertmanager", SourceState.SLOW),
               status("slurm-b", SourceState.FAILING, "HTTP 503 from the server"))
    [row] = fleet_rows({"a": known_frame(sources=sources)}, NOW)
    assert row.source_state is SourceState.FAILING
    assert row.source_errors == "slurm: token rejected or expired; slurm-b: HTTP 503 from the server"
    # stale (failed for more than three polls) outranks failing
    stale = sources + (status("prom2", SourceState.STALE, "cannot connect"),)
    assert worst_source(known_frame(sources=stale)) == (SourceState.STALE, "prom2: cannot connect")
    assert worst_source(known_frame(sources=(status("x", SourceState.SLOW),))) == (SourceState.SLOW, "")


def test_data_age_is_measured_against_the_callers_clock() -> None:
    f = known_frame()
    assert data_age(f, NOW + 100) == 105.0  # a dead engine's data keeps ageing
    [row] = fleet_rows({"a": f}, NOW + 100)
    assert row.data_age_s == 105.0 and row.stale  # 103 s of telemetry > 30 s


def test_kinds_without_a_source_are_left_out_of_age_and_staleness() -> None:
    f = known_frame(ages=(3.0, None, None))
    f = replace(f, stale_after_s={"telemetry": 30.0, "scheduler": math.inf, "alerts": math.inf})
    [row] = fleet_rows({"a": f}, NOW)
    assert row.data_age_s == 3.0 and not row.stale
    assert (row.telemetry, row.scheduler, row.alerts) == ("ok", "absent", "absent")


def test_a_provided_kind_without_data_makes_the_age_unknown_and_stale() -> None:
    f = known_frame(ages=(3.0, None, 5.0))
    assert data_presence(f, "scheduler") == "waiting"
    [row] = fleet_rows({"a": f}, NOW)
    assert row.data_age_s is None and row.stale


def test_an_engine_failure_is_shown_as_failing_with_its_words() -> None:
    [row] = fleet_rows({"a": known_frame()}, NOW, errors={"a": "the console engine process ended"})
    assert row.source_state is SourceState.FAILING and row.stale
    assert row.source_errors == "the console engine process ended"
    [waiting] = fleet_rows({"a": None}, NOW, errors={"a": "boom"})
    assert waiting.waiting and waiting.source_errors == "boom" and waiting.stale


def test_rows_from_simulated_frames() -> None:
    a = run_sync(Engine(Settings(clusters=(ClusterSettings("a", sim=SimSettings(seed=1, nodes=4)),)),
                        detect=False), 2)
    [row] = fleet_rows({"a": a}, a.time)
    assert row.simulated and row.gpus_total == 32 == a.kpis.gpus_total
    assert row.installed_pf == pytest.approx(32 * 0.9895, rel=1e-6)
    assert row.jobs_running == a.kpis.jobs_running and row.source_state is SourceState.OK
    assert row.data_age_s == pytest.approx(max(a.time - t for t in a.data_time.values()))


# --------------------------------------------------------------------------- the Fleet


def two_sims(nodes_a: int = 4, nodes_b: int = 6) -> Settings:
    return Settings(clusters=(ClusterSettings("alpha", sim=SimSettings(seed=1, nodes=nodes_a, interval_s=0.2)),
                              ClusterSettings("beta", sim=SimSettings(seed=2, nodes=nodes_b, interval_s=0.2))))


def test_a_fleet_delivers_frames_for_every_cluster() -> None:
    before = set(threading.enumerate())
    fleet = Fleet(two_sims(), mode="thread")
    assert fleet.names == ("alpha", "beta")
    assert fleet.simulated() == {"alpha": True, "beta": True}
    got: dict[str, int] = {}
    lock = threading.Lock()
    seen = threading.Event()

    def on_frame(name: str, frame: Frame) -> None:
        with lock:
            got[name] = frame.kpis.gpus_total
            if len(got) == 2:
                seen.set()

    fleet.subscribe(on_frame)
    assert fleet.latest("alpha") is None
    with fleet:
        frames = fleet.wait_ready(timeout=30)
        assert seen.wait(30)
    assert got == {"alpha": 32, "beta": 48}
    assert {n: f.cluster for n, f in frames.items()} == {"alpha": "alpha", "beta": "beta"}
    assert fleet.latest("beta").kpis.gpus_total == 48
    rows = fleet.rows()
    assert [(r.name, r.waiting, r.gpus_total) for r in rows] == [("alpha", False, 32), ("beta", False, 48)]
    assert set(threading.enumerate()) <= before  # every engine and poller thread has ended
    with pytest.raises(KeyError):
        fleet.latest("gamma")


def test_stop_before_start_is_harmless_and_engines_are_separate() -> None:
    fleet = Fleet(two_sims(), mode="thread")
    assert isinstance(fleet.engine("alpha"), Engine)
    assert fleet.engine("alpha") is not fleet.engine("beta")
    assert fleet.engine("beta").cluster.name == "beta"
    fleet.stop()  # never started: nothing to do, nothing raised
    with pytest.raises(KeyError):
        fleet.engine("gamma")


def test_a_fleet_of_worker_processes_stops_them_all() -> None:
    fleet = Fleet(two_sims(2, 3), mode="process")
    with fleet:
        frames = fleet.wait_ready(timeout=60)
        pids = [fleet.engine(n).pid for n in fleet.names]
        assert all(pids) and len(set(pids)) == 2
    assert {n: f.kpis.gpus_total for n, f in frames.items()} == {"alpha": 16, "beta": 24}
    assert multiprocessing.active_children() == []


def test_one_failing_cluster_does_not_hold_up_the_others() -> None:
    settings = Settings(clusters=(
        ClusterSettings("sim", sim=SimSettings(seed=1, nodes=2, interval_s=0.2)),
        ClusterSettings("down", prometheus=PrometheusSettings(url="http://127.0.0.1:9", interval_s=0.5,
                                                              timeout_s=0.5))))
    fleet = Fleet(settings, mode="thread")
    with fleet:
        frames = fleet.wait_ready(timeout=30)
    rows = {r.name: r for r in fleet_rows(frames, max(f.time for f in frames.values()))}
    assert rows["sim"].source_state is SourceState.OK
    assert rows["down"].source_state in (SourceState.FAILING, SourceState.STALE)
    assert "cannot connect" in rows["down"].source_errors
    assert rows["down"].telemetry == "waiting" and rows["down"].scheduler == "absent"
