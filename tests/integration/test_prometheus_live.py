"""The console's Prometheus source and the shipped rules against a live Prometheus scraping the
simulated DCGM exporter, checked against the exporter's own /metrics."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from console.model import TelemetryUpdate
from console.peaks import boost_clock_mhz, peak_tflops
from console.sources.prometheus import (MetricMap, PrometheusClient, PrometheusTelemetrySource,
                                        cluster_delivered_pf_query)

from .live import Stack, wait_until

SHIPPED_GROUPS = {"aisc-console-gpu", "aisc-console-aggregates", "aisc-console-alerts"}
#: The model fragments of the stack's two GPU models (the exporter's modelName per node is in
#: stack.json) and their BF16 dense peaks and boost clocks, as the console's query takes them.
FRAGMENTS = ("H800", "H100")


def model_tables(stack: Stack) -> tuple[dict[str, float], dict[str, float]]:
    models = {m for n, m in stack.info["node_models"].items() if n in stack.info["exporter_nodes"]}
    assert {f for f in FRAGMENTS for m in models if f in m} == set(FRAGMENTS), models
    full = {f: next(m for m in models if f in m) for f in FRAGMENTS}
    return ({f: peak_tflops(m) for f, m in full.items()}, {f: boost_clock_mhz(m) for f, m in full.items()})


def installed_tflops(stack: Stack) -> float:
    """Peak of every GPU the exporter serves, each at its own model's peak."""
    return sum(stack.info["node_gpus"][n] * peak_tflops(stack.info["node_models"][n])
               for n in stack.info["exporter_nodes"])

Samples = dict[tuple[str, str, int], float]


@pytest.fixture(scope="module")
def prom(stack: Stack) -> Iterator[PrometheusClient]:
    client = PrometheusClient.from_url(stack.urls["prometheus"], timeout=10)
    yield client
    client.close()


def exporter_samples(stack: Stack) -> tuple[Samples, dict[str, str]]:
    """(metric, host, gpu) -> value from the exporter itself, and host -> GPU model name.

    Series the HPC job mapping duplicates carry the same value; the max keeps one.
    """
    text = requests.get(stack.urls["exporter"], timeout=5).text
    samples: Samples = {}
    models: dict[str, str] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if not s.name.startswith("DCGM_"):
                continue
            host = s.labels.get("Hostname") or s.labels.get("hostname")
            gpu = s.labels.get("gpu", "")
            if not host or not gpu.isdigit():
                continue
            key = (s.name, host, int(gpu))
            samples[key] = max(samples.get(key, -math.inf), s.value)
            models.setdefault(host, s.labels.get("modelName", ""))
    return samples, models


def last_scrape(prom: PrometheusClient, scrape_url: str) -> float:
    for t in prom.targets():
        if t.get("scrapeUrl") == scrape_url and t.get("lastScrape"):
            stamp = t["lastScrape"]
            # "2026-11-29T07:42:19.178229754Z": trim nanoseconds for fromisoformat
            head, _, frac = stamp.rstrip("Z").partition(".")
            dt = datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
            return dt.timestamp()
    return 0.0


def test_shipped_rules_are_loaded_and_healthy(prom: PrometheusClient) -> None:
    def evaluated() -> list[dict] | None:
        groups = prom.http.get_json("api/v1/rules")["data"]["groups"]
        rules = [r for g in groups if g["name"] in SHIPPED_GROUPS for r in g["rules"]]
        names = {g["name"] for g in groups}
        assert SHIPPED_GROUPS <= names, names
        return rules if all(r["health"] != "unknown" for r in rules) else None
    rules = wait_until("every shipped rule evaluated once", evaluated, timeout_s=30)
    bad = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad
    assert {"GpuXidFatal", "DcgmExporterDown", "GpusAllocatedButIdle",
            "aisc:delivered_pf:bf16_dense"} <= {r["name"] for r in rules}


def test_one_exporter_target_up_and_the_declared_one_down(prom: PrometheusClient, stack: Stack) -> None:
    def both_scraped() -> list[dict] | None:
        ts = [t for t in prom.targets() if t["labels"].get("job") == "dcgm"]
        return ts if len(ts) == 2 and all(t["health"] != "unknown" for t in ts) else None
    targets = wait_until("both dcgm targets scraped", both_scraped, timeout_s=30)
    health = {t["scrapeUrl"]: t["health"] for t in targets}
    assert health == {stack.urls["exporter"]: "up", stack.urls["down_target"]: "down"}


def test_telemetry_matches_the_exporter(prom: PrometheusClient, stack: Stack) -> None:
    src = PrometheusTelemetrySource(prom, interval_s=5)
    metrics = MetricMap()
    keys = [k for k in metrics.metric_keys() if getattr(metrics, k).startswith("DCGM_")]
    for _attempt in range(6):
        before, models = exporter_samples(stack)
        asked = prom.query_scalar("time()")
        assert asked is not None
        wait_until("a scrape after reading the exporter",
                   lambda: last_scrape(prom, stack.urls["exporter"]) > asked, timeout_s=20)
        (upd,) = src.fetch()
        after, _ = exporter_samples(stack)
        if before == after:  # the exporter did not change across the scrape: compare exactly
            break
    else:
        pytest.fail("the exporter's values changed during every one of 6 scrapes")
    assert isinstance(upd, TelemetryUpdate)
    exporter_nodes = sorted({h for _, h, _ in before})
    assert exporter_nodes == sorted(stack.info["exporter_nodes"])
    assert list(upd.nodes) == sorted([*exporter_nodes, stack.info["exporter_down_node"]])
    row = {n: i for i, n in enumerate(upd.nodes)}
    compared = 0
    for key in keys:
        name = getattr(metrics, key)
        for (metric, host, gpu), value in before.items():
            if metric != name:
                continue
            got = float(upd.metrics[key][row[host], gpu])
            assert got == pytest.approx(value, rel=1e-6, abs=1e-6), (key, host, gpu)
            compared += 1
    gpus = sum(stack.info["node_gpus"][n] for n in exporter_nodes)
    assert compared >= gpus * 4  # at least util, tensor, clock and temperature of every GPU
    for host in exporter_nodes:  # the 4-GPU node has 4 GPU rows with data, not 8
        assert len({g for _, h, g in before if h == host}) == stack.info["node_gpus"][host], host
    for host in exporter_nodes:
        assert upd.node_model[row[host]] == models[host]


def test_down_target_shows_its_node_unreachable(prom: PrometheusClient, stack: Stack) -> None:
    src = PrometheusTelemetrySource(prom, interval_s=5)
    (upd,) = src.fetch()
    assert isinstance(upd, TelemetryUpdate)
    up = dict(zip(upd.nodes, upd.node_up.tolist()))
    assert up == {**{n: True for n in stack.info["exporter_nodes"]}, stack.info["exporter_down_node"]: False}
    down_row = upd.nodes.index(stack.info["exporter_down_node"])
    for key, arr in upd.metrics.items():
        assert np.isnan(arr[down_row]).all(), key


def test_recorded_delivered_pf_matches_the_console_query(prom: PrometheusClient, stack: Stack) -> None:
    gpus = sum(stack.info["node_gpus"][n] for n in stack.info["exporter_nodes"])
    installed = wait_until("aisc:installed_pf:bf16_dense recorded",
                           lambda: prom.query("aisc:installed_pf:bf16_dense").result, timeout_s=30)
    # hpc_job duplicates collapsed: each GPU counted once, at its own model's peak
    assert float(installed[0]["value"][1]) == pytest.approx(installed_tflops(stack) / 1000, rel=1e-9)
    count = prom.query("aisc:gpus_reporting:count").result
    assert float(count[0]["value"][1]) == gpus
    peaks, clocks = model_tables(stack)
    console_expr = cluster_delivered_pf_query(peaks, MetricMap(), clocks)
    # Compare at the rule's own evaluation instant; a scrape landing between the evaluation and
    # our query is the only way they differ, so a few evaluations are tried.
    mismatches = []
    for _attempt in range(4):
        at = prom.query("timestamp(aisc:delivered_pf:bf16_dense)").result
        t_eval = float(at[0]["value"][1])
        recorded = float(prom.query("aisc:delivered_pf:bf16_dense", time=t_eval).result[0]["value"][1])
        direct = prom.query_scalar(f"scalar({console_expr})", time=t_eval)
        assert direct is not None
        if direct == pytest.approx(recorded, rel=1e-9):
            break
        mismatches.append((t_eval, recorded, direct))
        wait_until("the next rule evaluation",
                   lambda: float(prom.query("timestamp(aisc:delivered_pf:bf16_dense)")
                                 .result[0]["value"][1]) > t_eval, timeout_s=20)
    else:
        pytest.fail(f"recorded and console delivered PF differ: {mismatches}")
    assert 0 < recorded <= installed_tflops(stack) / 1000
