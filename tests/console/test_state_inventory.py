"""GPUs exist where the inventory says so, the model comes from the best witness, and an
unknown figure is None (issue 13): the state's figures, computed by hand for small clusters
shaped like the ones the console met on real sites (a CPU node, 4- and 8-GPU nodes, two
models, a node no exporter describes, a node whose exporter is down)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from console.config import ClusterSettings
from console.model import (AlertsUpdate, JobState, JobTable, NodeState, NodeTable,
                           SchedulerUpdate, TelemetryUpdate, TELEMETRY_METRICS)
from console.polling import PollResult
from console.state import ClusterState

H800 = 989.5  # BF16 dense TFLOPS (FACTS.md 2), the config's default model
H100 = 989.4
A100 = 312.0
MI300X = 1307.4


def _state(sources=(("prom", "telemetry", 10.0), ("slurm", "scheduler", 10.0),
                    ("am", "alerts", 10.0))) -> ClusterState:
    return ClusterState(ClusterSettings(name="site"), list(sources), wall=lambda: 1000.0)


def _ok(source: str, kind: str, rid: int, t: float, *updates) -> PollResult:
    return PollResult(source=source, kind=kind, request_id=rid, started_at=t, fetched_at=t,
                      latency_s=0.1, updates=tuple(updates))


def _telemetry(t: float, gpus: dict[str, int], models: dict[str, str] | None = None,
               down: Sequence[str] = (), tensor: float = 0.5) -> TelemetryUpdate:
    """An exporter scrape: each node reports ``gpus[node]`` columns (the rest NaN)."""
    nodes = tuple(gpus)
    width = max(gpus.values())
    metrics = {k: np.full((len(nodes), width), np.nan, np.float32) for k in TELEMETRY_METRICS}
    for i, n in enumerate(nodes):
        if n in down:
            continue
        for k in metrics:
            metrics[k][i, : gpus[n]] = 0.0
        metrics["tensor"][i, : gpus[n]] = tensor
        metrics["sm_clock"][i, : gpus[n]] = 1980.0
        metrics["util"][i, : gpus[n]] = 90.0
        metrics["temp"][i, : gpus[n]] = 50.0
    up = np.array([n not in down for n in nodes])
    node_model = tuple((models or {}).get(n, "") for n in nodes)
    return TelemetryUpdate(time=t, nodes=nodes, gpus_per_node=width, metrics=metrics, node_up=up,
                           node_model=node_model)


def _scheduler(t: float, gres: dict[str, tuple[int, str]], jobs: JobTable | None = None) -> SchedulerUpdate:
    """A Slurm node table: node -> (GPUs in its gres, gres type); (0, "") is a CPU node."""
    names = tuple(gres)
    nodes = NodeTable(
        names=names, state=np.full(len(names), NodeState.IDLE, np.int8),
        responding=np.ones(len(names), bool), reason=("",) * len(names),
        gpus=np.array([g for g, _ in gres.values()], np.int16),
        gpus_alloc=np.zeros(len(names), np.int16), partitions=(("p",),) * len(names),
        gpu_types=tuple(ty for _, ty in gres.values()))
    return SchedulerUpdate(time=t, nodes=nodes, jobs=jobs if jobs is not None else JobTable.empty(),
                           api_version="v0.0.38")


def _detail(frame, name: str) -> str:
    return next(s for s in frame.sources if s.name == name).detail


# ---------------------------------------------------------------------------------- inventory


def test_a_cpu_node_has_no_gpus_and_still_counts_as_a_node() -> None:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(995.0, {"g1": 8, "g2": 8})))
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(
        996.0, {"g1": (8, ""), "g2": (8, ""), "login1": (0, "")})))
    f = s.build_frame(now=1000.0)
    k = f.kpis
    assert k.gpus_total == 16  # not 24: the login node has no gres and no exporter
    assert k.installed_pf == pytest.approx(16 * H800 / 1000)
    assert k.nodes_total == 3 and k.nodes_by_state == {"IDLE": 3}
    assert k.gpus_by_health["no_data"] == 0  # a CPU node adds no "no data" GPUs
    assert sum(k.gpus_by_health.values()) == 16
    login = f.topology.node_index()["login1"]
    assert f.topology.node_gpu_count[login] == 0 and f.topology.node_model[login] == ""


def test_four_and_eight_gpu_nodes_and_two_models_sum_per_gpu() -> None:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(
        995.0, {"a1": 4, "h1": 8, "h2": 8},
        models={"a1": "NVIDIA A100-SXM4-80GB", "h1": "NVIDIA H100 80GB HBM3",
                "h2": "NVIDIA H100 80GB HBM3"}, tensor=0.5)))
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(
        996.0, {"a1": (4, "a100"), "h1": (8, "h100"), "h2": (8, "h100")})))
    k = s.build_frame(now=1000.0).kpis
    assert k.gpus_total == 20
    assert k.installed_pf == pytest.approx((4 * A100 + 16 * H100) / 1000)
    assert k.delivered_pf == pytest.approx(0.5 * (4 * A100 + 16 * H100) / 1000, rel=1e-6)
    assert k.gpus_healthy == 20


def test_the_exporter_counts_only_the_columns_it_reports() -> None:
    # No Slurm: a 4-GPU node in a scrape whose widest node has 8 has 4 GPUs, not 8.
    s = _state([("prom", "telemetry", 10.0)])
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(995.0, {"a": 4, "b": 8})))
    f = s.build_frame(now=1000.0)
    assert list(f.topology.node_gpu_count) == [4, 8]
    assert f.kpis.gpus_total == 12
    # A GPU that stops reporting still exists (shown as no data), it does not vanish.
    s.apply(_ok("prom", "telemetry", 2, 1001.0, _telemetry(1001.0, {"a": 3, "b": 8})))
    f = s.build_frame(now=1002.0)
    assert f.kpis.gpus_total == 12 and f.kpis.gpus_by_health["no_data"] == 1


@pytest.mark.parametrize("slurm_first", [True, False])
def test_slurm_gres_wins_whichever_source_answers_first(slurm_first: bool) -> None:
    s = _state()
    tel = _ok("prom", "telemetry", 1, 995.0, _telemetry(995.0, {"g1": 8, "exp_only": 2}))
    sch = _ok("slurm", "scheduler", 1, 996.0, _scheduler(
        996.0, {"g1": (4, ""), "cpu1": (0, ""), "dead1": (8, "")}))
    for r in ((sch, tel) if slurm_first else (tel, sch)):
        s.apply(r)
    f = s.build_frame(now=1000.0)
    counts = dict(zip(f.topology.node_names, f.topology.node_gpu_count.tolist()))
    # gres says 4 on g1 (the exporter's 8 columns are not GPUs Slurm schedules); a node only
    # the exporter knows keeps its reported 2; a Slurm node with gres but no exporter has 8.
    assert counts == {"cpu1": 0, "dead1": 8, "exp_only": 2, "g1": 4}
    k = f.kpis
    assert k.gpus_total == 14 and k.nodes_total == 4
    assert k.gpus_by_health["no_data"] == 8  # dead1's GPUs exist, unseen


def test_gres_gpus_whose_exporter_is_down_exist_as_no_data() -> None:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(995.0, {"g1": 8, "g2": 8}, down=("g2",))))
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(996.0, {"g1": (8, ""), "g2": (8, "")})))
    k = s.build_frame(now=1000.0).kpis
    assert k.gpus_total == 16 and k.gpus_by_health["no_data"] == 8 and k.gpus_healthy == 8
    assert k.installed_pf == pytest.approx(16 * H800 / 1000)
    assert k.delivered_pf == pytest.approx(8 * 0.5 * H800 / 1000, rel=1e-6)


# ---------------------------------------------------------------------------------- GPU model


def test_gres_type_names_the_model_when_no_exporter_does() -> None:
    s = _state([("slurm", "scheduler", 10.0)])
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(
        996.0, {"h1": (8, "h100"), "h2": (8, "h100"), "m1": (8, "mi300x"), "x1": (8, "")})))
    f = s.build_frame(now=1000.0)
    models = dict(zip(f.topology.node_names, f.topology.node_model))
    assert models["h1"] == models["h2"] == "NVIDIA H100 80GB HBM3"  # not the config's H800
    assert "MI300X" in models["m1"]
    assert models["x1"] == ClusterSettings(name="x").gpu_model  # no type: the config's
    assert f.kpis.installed_pf == pytest.approx((16 * H100 + 8 * MI300X + 8 * H800) / 1000)
    detail = _detail(f, "slurm")
    assert "Slurm REST API v0.0.38" in detail
    assert "GPU model from Slurm gres for 3 nodes (h100, mi300x)" in detail
    assert "GPU model from the config for 1 node (NVIDIA H800 80GB HBM3)" in detail


def test_the_exporter_model_wins_and_the_notes_say_where_others_came_from() -> None:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(
        995.0, {"e1": 8}, models={"e1": "NVIDIA H200"})))
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(
        996.0, {"e1": (8, "h100"), "g1": (8, "h100"), "u1": (4, "tesla")})))
    f = s.build_frame(now=1000.0)
    models = dict(zip(f.topology.node_names, f.topology.node_model))
    assert models == {"e1": "NVIDIA H200", "g1": "NVIDIA H100 80GB HBM3",
                      "u1": "NVIDIA H800 80GB HBM3"}
    assert _detail(f, "slurm") == "Slurm REST API v0.0.38; GPU model from Slurm gres for 1 node (h100)"
    assert _detail(f, "prom") == ("GPU model from the config for 1 node "
                                  "(NVIDIA H800 80GB HBM3; gres type tesla not known)")
    assert _detail(f, "am") == ""


def test_all_models_from_the_exporter_need_no_note() -> None:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(
        995.0, {"e1": 8}, models={"e1": "NVIDIA H100 80GB HBM3"})))
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(996.0, {"e1": (8, "h100"), "c1": (0, "")})))
    f = s.build_frame(now=1000.0)
    assert _detail(f, "prom") == "" and _detail(f, "slurm") == "Slurm REST API v0.0.38"


# ---------------------------------------------------------------------------------- unknown


def test_a_source_that_never_answered_leaves_its_figures_unknown_not_zero() -> None:
    # Prometheus has never answered; Slurm and Alertmanager have.
    s = _state()
    s.apply(_ok("slurm", "scheduler", 1, 996.0, _scheduler(996.0, {"g1": (8, ""), "g2": (8, "")})))
    s.apply(_ok("am", "alerts", 1, 997.0, AlertsUpdate(time=997.0, alerts=())))
    f = s.build_frame(now=1000.0)
    k = f.kpis
    assert k.delivered_pf is None and k.busy_pf is None and k.gpus_busy is None
    assert k.gpus_healthy is None and k.gpus_by_health is None
    # The inventory comes from Slurm; scheduler and alert figures are known, even when 0.
    assert k.gpus_total == 16 and k.installed_pf == pytest.approx(16 * H800 / 1000)
    assert k.jobs_running == 0 and k.gpus_allocated == 0 and k.allocated_pf == 0.0
    assert k.available_pf == pytest.approx(16 * H800 / 1000)
    assert k.alerts_firing == 0 and k.alerts_by_severity == {"critical": 0, "warning": 0, "info": 0}
    # The history holds a gap (NaN) for delivered, never 0; known series are numbers.
    h = f.history.series
    assert math.isnan(h["delivered_pf"][-1]) and math.isnan(h["busy_pf"][-1])
    assert h["installed_pf"][-1] == pytest.approx(16 * H800 / 1000, rel=1e-6)
    assert h["jobs_running"][-1] == 0.0


def test_no_scheduler_leaves_jobs_and_allocation_unknown() -> None:
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 995.0, _telemetry(995.0, {"g1": 8})))
    f = s.build_frame(now=1000.0)
    k = f.kpis
    assert k.gpus_total == 8 and k.nodes_total == 1 and k.delivered_pf is not None
    for name in ("available_pf", "allocated_pf", "busy_pf", "gpus_available", "gpus_allocated",
                 "gpus_busy", "jobs_running", "jobs_pending", "gpus_pending", "nodes_by_state",
                 "alerts_firing", "alerts_by_severity"):
        assert getattr(k, name) is None, name
    assert np.isnan(f.history.tenant_gpus[-1]).all()


def test_figures_turn_unknown_past_the_stale_limit_on_the_wall_clock() -> None:
    clock = [1000.0]
    s = ClusterState(ClusterSettings(name="site"), [("slurm", "scheduler", 10.0)],
                     wall=lambda: clock[0])
    s.apply(_ok("slurm", "scheduler", 1, 1000.0, _scheduler(1000.0, {"g1": (8, "")})))
    f = s.build_frame()  # no `now`: the state's wall clock
    assert f.kpis.jobs_running == 0 and f.age_s("scheduler") == 0.0
    clock[0] = 1029.0  # nothing arrives; the data keeps ageing
    f = s.build_frame()
    assert f.age_s("scheduler") == pytest.approx(29.0) and f.kpis.jobs_running == 0
    clock[0] = 1031.0  # past three intervals: stale, and its figures unknown
    f = s.build_frame()
    assert f.age_s("scheduler") == pytest.approx(31.0) and f.is_stale("scheduler")
    assert f.sources[0].age_s(f.time) == pytest.approx(31.0)
    assert f.kpis.jobs_running is None and f.kpis.gpus_total is None


def test_a_silent_source_leaves_gaps_in_the_history_while_others_go_on() -> None:
    s = _state()
    s.apply(_ok("slurm", "scheduler", 1, 1000.0, _scheduler(1000.0, {"g1": (8, "")})))
    for i, t in enumerate((1000.0, 1020.0, 1040.0)):  # telemetry answers; Slurm went silent
        s.apply(_ok("prom", "telemetry", i + 1, t, _telemetry(t, {"g1": 8})))
        f = s.build_frame(now=t + 1.0)
    h, raw = f.history.series, np.isin(f.history.t, (1000.0, 1020.0, 1040.0))
    assert list(f.history.t[raw]) == [1000.0, 1020.0, 1040.0]
    assert list(np.isnan(h["jobs_running"][raw])) == [False, False, True]
    assert list(np.isnan(h["allocated_pf"][raw])) == [False, False, True]
    assert not np.isnan(h["delivered_pf"]).any() and not np.isnan(h["installed_pf"]).any()
    assert f.kpis.delivered_pf == pytest.approx(8 * 0.5 * H800 / 1000, rel=1e-6)


def test_an_exporter_without_tensor_activity_leaves_delivered_unknown_not_zero() -> None:
    # The site's dcgm-exporter does not export DCGM_FI_PROF_PIPE_TENSOR_ACTIVE: every other
    # metric arrives, so health is known, but delivered compute is not.
    s = _state()
    s.apply(_ok("prom", "telemetry", 1, 996.0,
                _telemetry(996.0, {"g1": 8, "g2": 8}, tensor=float("nan"))))
    k = s.build_frame(now=1000.0).kpis
    assert k.delivered_pf is None
    assert k.gpus_healthy == 16 and k.gpus_total == 16
    # Once the exporter reports tensor activity, the figure is a number again.
    s.apply(_ok("prom", "telemetry", 2, 998.0, _telemetry(998.0, {"g1": 8, "g2": 8}, tensor=0.5)))
    assert s.build_frame(now=1000.0).kpis.delivered_pf == pytest.approx(16 * 0.5 * H800 / 1000, rel=1e-5)
