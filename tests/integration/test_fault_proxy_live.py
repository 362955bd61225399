"""The console against the real stack through a fault-injecting proxy (issue 8, hostile endpoints).

One in-process engine polls the session stack's Prometheus, Alertmanager and slurmrestd through
one `FaultProxy` each, every 0.5 s with a 1 s deadline and a 1 MB answer limit, and the tests
switch the proxies' fault. For each fault that leaves no usable answer the console must stay
responsive, say what is wrong in words with the data's age, keep the last good figures while
the source is failing and turn them unknown (null) once stale, never show any other number,
and recover by itself when the proxy passes answers through again. For each fault that leaves
usable data in an odd form (wrong content type, duplicate and reordered series, NaN/Inf/negative
samples, timestamps from the future) the figures must be the true ones, checked against
Prometheus itself.

Assertions read the frames through `console.cli.status_dict`, the contract of ``status --json``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from console.cli import status_dict
from console.config import (AlertmanagerSettings, ClusterSettings, PrometheusSettings, Settings,
                            SlurmSettings)
from console.engine import Engine, EngineState
from console.model import Frame
from console.secrets import MemorySecretStore, SecretResolver
from console.sources.http import HttpClient
from console.sources.prometheus import PrometheusClient

from .fault_proxy import DATA, FAILING, Fault, FaultProxy, Recorder, set_all
from .live import Stack, wait_until

INTERVAL_S = 0.5
TIMEOUT_S = 1.0
UPSTREAMS = ("prometheus", "alertmanager", "slurm")
SOURCES = ("prometheus", "alertmanager", "slurm", "prometheus-alerts")
HEALTHY = ("ok", "slow")  # slow = answered, but slower than its 0.5 s interval: data all the same
#: Figures that are numbers exactly when their data is known (README, `status --json`).
FIGURES = ("installed_pf", "available_pf", "allocated_pf", "busy_pf", "delivered_pf",
           "gpus_total", "gpus_available", "gpus_healthy", "gpus_allocated", "gpus_busy",
           "jobs_running", "jobs_pending", "gpus_pending", "alerts_firing")
#: Figures computed from the sources' data alone (gpus_healthy also counts the console's own
#: anomalies, which the detectors may open or close between two answers).
FROM_DATA = tuple(k for k in FIGURES if k != "gpus_healthy")
#: BF16 dense peak (TFLOPS) per model fragment and the boost clock (MHz) of both (FACTS 2),
#: as in test_status_live: delivered PF computed by Prometheus itself.
PEAK_TF = {"H800": 989.5, "H100": 989.4}
BOOST_MHZ = 1980.0

#: Per fault: the error kind every source must show, and words its message must contain.
EXPECTED: dict[Fault, tuple[str, str]] = {
    Fault.DROP: ("unreachable", r"127\.0\.0\.1:\d+ closed the connection without answering"),
    Fault.STALL: ("timeout", r"no complete answer from 127\.0\.0\.1:\d+ within 1 s \(it was "
                             r"still arriving, too slowly\)"),
    Fault.SLOW: ("timeout", r"no answer from 127\.0\.0\.1:\d+ within 1 s"),
    Fault.HTTP_503: ("http error", r"server error 503 from 127\.0\.0\.1:\d+: upstream overloaded"),
    Fault.HTTP_401: ("auth", r"authentication failed at (slurmrestd )?127\.0\.0\.1:\d+ \(401"),
    Fault.HTML: ("bad payload", r"expected JSON, got an HTML page \(a proxy or login page\?\)"),
    Fault.TRUNCATED: ("bad payload", r"truncated or invalid JSON from 127\.0\.0\.1:\d+"),
    Fault.CORRUPT: ("bad payload", r"truncated or invalid JSON from 127\.0\.0\.1:\d+"),
    Fault.OVERSIZED: ("bad payload", r"larger than the 1 MB limit \(max_answer_mb of this "
                                     r"endpoint\): not read further"),
    Fault.BINARY: ("bad payload", r"truncated or invalid JSON from 127\.0\.0\.1:\d+"),
    Fault.REDIRECT: ("http error", r"redirected to {foreign}/\S*; not followed"),
}


@dataclass
class Rig:
    """The engine, its proxies, the other origin of redirects, and every frame it built."""

    engine: Engine
    proxies: dict[str, FaultProxy]
    foreign: Recorder
    stack: Stack
    frames: list[Frame] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, frame: Frame) -> None:
        with self.lock:
            self.frames.append(frame)

    def frames_since(self, start: int) -> list[Frame]:
        with self.lock:
            return self.frames[start:]

    def mark(self) -> int:
        with self.lock:
            return len(self.frames)

    def status(self) -> dict[str, Any]:
        frame = self.engine.latest_frame()
        assert frame is not None
        return status_dict(frame)


def sources_of(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in d["sources"]}


@pytest.fixture(scope="module")
def rig(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    foreign = Recorder()
    proxies = {k: FaultProxy(stack.urls[k], redirect_to=foreign.url, slow_s=3.0)
               for k in UPSTREAMS}
    ep: dict[str, Any] = dict(interval_s=INTERVAL_S, timeout_s=TIMEOUT_S, max_answer_mb=1.0)
    am = proxies["alertmanager"].url
    cluster = ClusterSettings(
        name="lab",
        prometheus=PrometheusSettings(url=proxies["prometheus"].url, backfill_hours=0.0, **ep),
        alertmanager=AlertmanagerSettings(url=am, urls=(am,), **ep),
        slurm=SlurmSettings(url=proxies["slurm"].url, auth="slurm_jwt", user=stack.user, **ep))
    secrets = SecretResolver(MemorySecretStore({"lab/slurm": stack.token}), environ={})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))  # the action journal
        engine = Engine(Settings(clusters=(cluster,)), secrets=secrets, refresh_s=0.25)
        r = Rig(engine, proxies, foreign, stack)
        engine.subscribe(r.record)
        engine.start()
        try:
            wait_healthy(r, since=0.0)
            yield r
        finally:
            engine.stop()
            for p in proxies.values():
                p.close()
            foreign.close()


def wait_healthy(r: Rig, since: float) -> dict[str, Any]:
    """Every source answered (ok or slow) after ``since``, with every figure known."""
    def healthy() -> dict[str, Any] | None:
        d = r.status()
        src = sources_of(d)
        ok = all(src[n]["state"] in HEALTHY and src[n]["error"] is None for n in SOURCES)
        newest = min(d["time"] - (src[n]["age_s"] or 0.0) for n in SOURCES)
        return d if ok and newest > since and all(d[k] is not None for k in FIGURES) else None
    return wait_until("every source answering through the proxies", healthy, timeout_s=45,
                      step_s=0.1)


def check_never_a_wrong_number(frames: list[Frame]) -> None:
    """The frames of one fault, from its start to recovery: no figure is ever anything but the
    last good one (no new data, no new number) or unknown; unknown exactly when stale; and
    every number is a possible one."""
    groups: dict[tuple[float | None, ...], dict[str, set[float]]] = {}
    for frame in frames:
        d = status_dict(frame)
        states = {s["state"] for s in d["sources"]}
        key = tuple(s.last_success for s in frame.sources)
        for k in FIGURES:
            v = d[k]
            if v is not None:
                assert math.isfinite(v) and v >= 0, (k, v, d)
                if k in FROM_DATA:
                    groups.setdefault(key, {}).setdefault(k, set()).add(v)
        if states == {"failing"}:  # every source failing, none stale yet: last data kept
            assert all(d[k] is not None for k in FIGURES), d
        if states == {"stale"}:  # every source stale: every figure unknown, never 0
            assert all(d[k] is None for k in FIGURES), d
        if d["delivered_pf"] is not None and d["installed_pf"] is not None:
            assert d["delivered_pf"] <= d["installed_pf"], d
    for key, by_figure in groups.items():
        changed = {k: v for k, v in by_figure.items() if len(v) > 1}
        assert not changed, f"figures changed with no new data ({key}): {changed}"


@pytest.mark.parametrize("fault", FAILING, ids=lambda f: f.name.lower())
def test_a_failing_endpoint_is_worded_kept_then_stale_and_recovers_by_itself(
        rig: Rig, fault: Fault) -> None:
    wait_healthy(rig, since=0.0)
    start = rig.mark()
    kind, words = EXPECTED[fault]
    pattern = re.compile(words.format(foreign=re.escape(rig.foreign.url)))
    set_all(rig.proxies, fault)
    try:
        def worded() -> dict[str, Any] | None:
            d = rig.status()
            src = sources_of(d)
            return d if all(src[n]["state"] in ("failing", "stale") and src[n]["error_kind"] == kind
                            and pattern.search(src[n]["error"] or "") for n in SOURCES) else None

        d = wait_until(f"every source failing with {fault.value} in words", worded, timeout_s=20,
                       step_s=0.05)
        for s in d["sources"]:
            assert rig.stack.token not in (s["error"] or "")
        # Responsive: frames keep coming while every source fails (or hangs on the proxy).
        rig.engine.wait_frames(3, timeout=10)
        assert rig.engine.engine_status().state is EngineState.RUNNING

        def stale() -> dict[str, Any] | None:
            d = rig.status()
            src = sources_of(d)
            return d if all(src[n]["state"] == "stale" for n in SOURCES) else None

        d = wait_until(f"every source stale under {fault.value}", stale, timeout_s=20, step_s=0.05)
        for s in d["sources"]:  # the data's age is shown, past the stale limit (to 0.1 s)
            assert s["age_s"] is not None and s["age_s"] >= 3 * INTERVAL_S, s
            assert s["error_kind"] == kind and pattern.search(s["error"]), s
        assert all(d[k] is None for k in FIGURES), d
        assert all(p.count(fault) >= 1 for p in rig.proxies.values())
    finally:
        back = time.time()
        set_all(rig.proxies, Fault.PASS)
    wait_healthy(rig, since=back)  # by itself: nobody asks it to poll now
    check_never_a_wrong_number(rig.frames_since(start))
    if fault is Fault.REDIRECT:
        assert rig.foreign.requests == []  # not followed: nothing, no token, reached it


# --- faults that leave usable data ------------------------------------------------------------


def delivered_query(gpu_regex: str | None = None) -> str:
    """Delivered PF computed by Prometheus (hpc_job duplicates collapsed, each model at its own
    peak, SM clock over boost clock at most 1), for the GPUs whose label matches ``gpu_regex``."""
    by = "hostname, gpu"
    gpu = f', gpu=~"{gpu_regex}"' if gpu_regex else ""
    return " + ".join(
        f'(sum(max by ({by}) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{modelName=~".*{frag}.*"{gpu}}})'
        f' * clamp_max(max by ({by}) (DCGM_FI_DEV_SM_CLOCK{{modelName=~".*{frag}.*"{gpu}}})'
        f" / {BOOST_MHZ}, 1)) * {peak} / 1000)" for frag, peak in PEAK_TF.items())


def agrees_with_prometheus(rig: Rig, query: str) -> dict[str, Any]:
    """Wait for a poll through the proxy whose delivered PF equals Prometheus' own figure while
    that figure held still (the simulated exporter changes its values every few seconds)."""
    prom = PrometheusClient(HttpClient(rig.stack.urls["prometheus"]))

    def agree() -> dict[str, Any] | None:
        before = prom.query_scalar(query)
        asked = time.time()
        d = wait_until("a telemetry poll", lambda: _polled_after(rig, asked), timeout_s=15,
                       step_s=0.05)
        after = prom.query_scalar(query)
        same = before == pytest.approx(after, abs=1e-9)
        return d if same and d["delivered_pf"] == pytest.approx(before, abs=1e-3) else None

    try:
        return wait_until("delivered PF as Prometheus computes it", agree, timeout_s=60,
                          step_s=0.1)
    finally:
        prom.http.close()


def _polled_after(rig: Rig, t: float) -> dict[str, Any] | None:
    d = rig.status()
    prom = sources_of(d)["prometheus"]
    return d if prom["state"] in HEALTHY and d["time"] - prom["age_s"] > t else None


@pytest.fixture
def faulted(rig: Rig, request: pytest.FixtureRequest) -> Iterator[Fault]:
    fault: Fault = request.param
    wait_healthy(rig, since=0.0)
    set_all(rig.proxies, fault)
    # A poll already under way was answered as before: wait until Prometheus' proxy has answered
    # with the fault, so the polls a test then waits for are the faulted ones.
    wait_until(f"a telemetry request answered with {fault.value}",
               lambda: rig.proxies["prometheus"].count(fault) >= 1, timeout_s=30, step_s=0.05)
    try:
        yield fault
    finally:
        set_all(rig.proxies, Fault.PASS)


@pytest.mark.parametrize("faulted", [Fault.TEXT_PLAIN, Fault.DUPLICATES, Fault.FUTURE],
                         ids=lambda f: f.name.lower(), indirect=True)
def test_usable_answers_in_an_odd_form_give_the_true_figures(rig: Rig, faulted: Fault) -> None:
    start = rig.mark()
    d = agrees_with_prometheus(rig, delivered_query())
    assert rig.proxies["prometheus"].count(faulted) >= 1
    src = sources_of(d)
    assert all(src[n]["state"] in HEALTHY and src[n]["error"] is None for n in SOURCES), src
    # The inventory is what the servers say, not doubled by duplicates nor shifted by clocks.
    nodes = rig.stack.slurm("sinfo", "-h", "-N", "-o", "%N").split()
    assert d["nodes_total"] == len(set(nodes)) + len(rig.stack.info["exporter_only_nodes"])
    for s in d["sources"]:
        assert s["age_s"] is not None and 0.0 <= s["age_s"] <= 3 * INTERVAL_S, s
    assert d["time"] <= time.time()
    check_never_a_wrong_number(rig.frames_since(start))


@pytest.mark.parametrize("faulted", [Fault.BAD_VALUES], ids=["bad_values"], indirect=True)
def test_nan_inf_and_negative_samples_are_no_data_never_a_figure(rig: Rig, faulted: Fault) -> None:
    """Odd-numbered GPUs report NaN, +Inf, -Inf or -1.5 (`BAD_SAMPLES`) for every metric:
    they are no data, the cluster's delivered PF is that of the even-numbered GPUs, as
    Prometheus computes it, and the source says in words that it dropped samples."""
    start = rig.mark()
    d = agrees_with_prometheus(rig, delivered_query("[02468]"))
    prom = sources_of(d)["prometheus"]
    assert prom["state"] in HEALTHY and prom["error"] is None
    assert re.search(r"tensor: \d+ samples infinite, negative or out of range \(shown as no "
                     r"data\)", prom["detail"]), prom["detail"]
    frame = rig.engine.latest_frame()
    assert frame is not None
    topo = frame.topology
    exists = topo.gpu_exists()
    odd = (np.arange(topo.n_gpus) % topo.gpus_per_node) % 2 == 1
    for name in ("util", "tensor", "sm_clock", "temp", "power", "fb_used", "delivered_tflops"):
        values = np.asarray(getattr(frame.gpu, name), np.float64)
        assert not np.isinf(values).any() and not (values < 0).any(), name
    for name in ("util", "tensor", "temp", "power"):
        values = np.asarray(getattr(frame.gpu, name), np.float64)
        assert np.isnan(values[exists & odd]).all(), name
    assert np.isfinite(np.asarray(frame.gpu.tensor)[exists & ~odd]).any()
    assert rig.engine.state.detector_error is None  # the detectors never saw an infinite XID
    assert rig.proxies["prometheus"].count(faulted) >= 1
    check_never_a_wrong_number(rig.frames_since(start))


def test_every_fault_is_covered() -> None:
    assert set(FAILING) | set(DATA) | {Fault.PASS} == set(Fault)
    assert set(EXPECTED) == set(FAILING)
