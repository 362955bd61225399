"""History backfill against the live Prometheus: the console's first frame shows the cluster's
delivered and installed PF from before the console started, as Prometheus answers them."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from console.config import parse_settings
from console.engine import Engine
from console.peaks import boost_clock_mhz, peak_tflops
from console.sources.prometheus import MetricMap, PrometheusClient, cluster_delivered_pf_query

from .live import Stack, wait_until



@pytest.fixture(scope="module")
def prom(stack: Stack) -> Iterator[PrometheusClient]:
    client = PrometheusClient.from_url(stack.urls["prometheus"], timeout=10)
    yield client
    client.close()


def test_first_frame_holds_history_from_before_the_start(
        prom: PrometheusClient, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Backfill points sit on one-minute bucket centres before the current minute: wait until
    # Prometheus has scraped the exporter for long enough that a few of them exist.
    wait_until("150 s of scraped DCGM history",
               lambda: prom.query("count(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE offset 150s)").result,
               timeout_s=300, step_s=2)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # the operator journal stays in here
    settings = parse_settings(tomllib.loads(
        "schema_version = 1\n[[clusters]]\nname = \"lab\"\n"
        f"[clusters.prometheus]\nurl = \"{stack.urls['prometheus']}\"\ninterval_s = 5\n"))
    started = time.time()
    with Engine(settings, detect=False) as engine:
        frame = engine.wait_ready(timeout=60)
    tel = next(s for s in frame.sources if s.kind == "telemetry")
    assert tel.error is None and "backfill" not in tel.detail, tel
    h = frame.history
    old = h.t < started
    d, inst = h.series["delivered_pf"][old], h.series["installed_pf"][old]
    have = np.isfinite(d)
    assert have.sum() >= 2, (h.t, h.series["delivered_pf"])
    assert (h.t[old] % 60 == 30).all()  # one-minute bucket centres
    # The same instants asked directly, with the fragment-matching query the shipped rules use.
    # Two GPU models: each fragment at its own model's peak and boost clock.
    models = {f: next(stack.info["node_models"][n] for n in stack.info["exporter_nodes"]
                      if f in stack.info["node_models"][n]) for f in ("H800", "H100")}
    expr = cluster_delivered_pf_query({f: peak_tflops(m) for f, m in models.items()}, MetricMap(),
                                      {f: boost_clock_mhz(m) for f, m in models.items()})
    installed_pf = sum(stack.info["node_gpus"][n] * peak_tflops(stack.info["node_models"][n])
                       for n in stack.info["exporter_nodes"]) / 1000
    t_old = h.t[old]
    r = prom.query_range(expr, float(t_old[0]), float(t_old[-1]), 60)
    direct = {float(t): float(v) for t, v in r.result[0]["values"]}
    for t, seeded, ok in zip(t_old.tolist(), d.tolist(), have.tolist()):
        if ok:
            assert seeded == pytest.approx(direct[t], rel=1e-6), t
        else:  # no DCGM series at that instant (before the stack ran): a gap, never a zero
            assert direct.get(t, 0.0) == 0.0, t
    np.testing.assert_allclose(inst[have], installed_pf, rtol=1e-6)
    assert np.isnan(h.series["allocated_pf"][old]).all()  # Slurm's series have no history
