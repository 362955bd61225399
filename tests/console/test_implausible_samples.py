"""Samples no GPU can report (+-Inf, negative, a ratio above 1) are no data, never a figure.

A broken exporter, or a proxy between the console and Prometheus, can send any number; the
fault-injecting proxy of the integration suite found that one +Inf tensor activity made the
cluster's delivered PF unknown while the source looked healthy, that negative activity
subtracted petaflops, and that an infinite XID crashed the anomaly detector. These tests pin
the rule at the Prometheus source without a server.
"""

from __future__ import annotations

import math

import numpy as np

from console.config import ClusterSettings
from console.polling import PollResult
from console.sources.prometheus import (MetricMap, PrometheusTelemetrySource, QueryResult,
                                        plausible)
from console.state import ClusterState


class _Client:
    """Answers each query from a dict (an empty vector for the rest)."""

    class http:
        host = "prom:9090"

    def __init__(self, answers: dict[str, list]) -> None:
        self.answers = answers

    def query(self, expr: str, time: float | None = None) -> QueryResult:
        return QueryResult("vector", self.answers.get(expr, []))

    def close(self) -> None:
        pass


def _series(gpu: int, value: str, **labels: str) -> dict:
    return {"metric": {"Hostname": "n01", "gpu": str(gpu), "modelName": "NVIDIA H800",
                       **labels}, "value": [1.0, value]}


def test_infinite_negative_and_out_of_range_samples_become_nan_and_are_counted() -> None:
    values = np.array([0.5, np.nan, np.inf, -np.inf, -0.1, 1.0, 1.2, 0.0])
    out, bad = plausible("tensor", values)
    np.testing.assert_array_equal(out, [0.5, np.nan, np.nan, np.nan, np.nan, 1.0, np.nan, 0.0])
    assert bad == 4  # +Inf, -Inf, -0.1 and 1.2; NaN was no data already
    assert np.isnan(values[1]) and values[2] == np.inf  # the input is left as it was


def test_each_metric_has_its_own_range() -> None:
    out, bad = plausible("util", np.array([100.0, 100.5, -1.0]))
    np.testing.assert_array_equal(out, [100.0, np.nan, np.nan])
    assert bad == 2
    out, bad = plausible("temp", np.array([120.0, 0.0, -5.0]))  # no upper bound for a temperature
    np.testing.assert_array_equal(out, [120.0, 0.0, np.nan])
    assert bad == 1


def test_plausible_values_are_passed_as_they_are() -> None:
    values = np.array([0.0, 0.25, 1.0])
    out, bad = plausible("tensor", values)
    assert out is values and bad == 0


def test_the_source_drops_bad_samples_before_collapsing_duplicates_and_says_so() -> None:
    mm = MetricMap()
    client = _Client({mm.expr("tensor"): [
        _series(0, "0.5"), _series(0, "+Inf", hpc_job="7"),  # the finite duplicate wins the max
        _series(1, "-0.3"), _series(2, "NaN"), _series(3, "1.7")],
        mm.expr("util"): [_series(g, "90") for g in range(4)]})
    src = PrometheusTelemetrySource(client, metrics=mm)  # type: ignore[arg-type]
    u = src.fetch(now=5.0)[0]
    np.testing.assert_array_equal(u.metrics["tensor"],
                                  np.array([[0.5, np.nan, np.nan, np.nan]], np.float32))
    assert "tensor: 3 samples infinite, negative or out of range (shown as no data)" in u.warnings


def test_delivered_pf_counts_only_the_gpus_with_plausible_activity() -> None:
    mm = MetricMap()
    client = _Client({mm.expr("tensor"): [_series(0, "0.5"), _series(1, "-50"),
                                          _series(2, "+Inf"), _series(3, "-Inf")],
                      mm.expr("xid"): [_series(0, "0"), _series(1, "+Inf")]})
    src = PrometheusTelemetrySource(client, metrics=mm)  # type: ignore[arg-type]
    updates = tuple(src.fetch(now=5.0))
    state = ClusterState(ClusterSettings(name="x"), [("prometheus", "telemetry", 10.0)],
                         wall=lambda: 10.0)
    state.apply(PollResult(source="prometheus", kind="telemetry", request_id=1, started_at=9.0,
                           fetched_at=9.0, latency_s=0.1, updates=updates))
    frame = state.build_frame()
    peak = float(frame.topology.gpu_peak_tflops[0])
    assert peak > 0
    # GPU 0 alone, at full clock (no SM clock reported: no correction)
    assert frame.kpis.delivered_pf is not None and math.isclose(
        frame.kpis.delivered_pf, 0.5 * peak / 1000.0, rel_tol=1e-6)
    assert np.isnan(frame.gpu.xid[1]) and frame.gpu.xid[0] == 0
