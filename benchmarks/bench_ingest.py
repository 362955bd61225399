"""Ingest at scale: what one poll of a 4,096-node x 8-GPU centre costs, and what it does to the GUI.

    python benchmarks/bench_ingest.py [--nodes 4096] [--jobs 50000] [--repeat 3] [--stall-s 8]

A local stdlib HTTP server (in its own process, so serving never competes with the measured
process for the GIL) answers with synthetic but realistically shaped bodies: dcgm-exporter
series as Prometheus instant vectors (the labels dcgm-exporter 3.x/4.x attaches), and slurmrestd
v0.0.38 ``/nodes`` and ``/jobs`` (running jobs carry ``job_resources`` with per-core maps, as
real ones do). Prints medians of ``--repeat`` runs; asserts nothing.

Sections:
1. Prometheus: one 32,768-series query (HTTP, JSON, conversion), one whole telemetry poll,
   and the alternative of one query for all plain metrics (``{__name__=~"A|B|..."}``).
   The floor: the same bytes of one poll (fetched once) decoded by the fastest decoder at hand
   (``json``, ``orjson``, ``msgspec``, and msgspec with typed structs of only the fields the
   console reads), and the ratio of the console's whole poll to it; also with the transfer
   (a bare GET of each answer) added to the floor, since the poll includes it.
2. slurmrestd: ``/jobs`` with 50,000 jobs received, decoded and tabulated as it arrives (with
   the helper process where there are two cores: ``console/sources/job_stream.py``), a whole
   scheduler poll, and its floor (``/nodes`` + ``/jobs``) measured the same way; then the
   same poll with the helper turned off (``AISC_CONSOLE_DECODE_HELPER=0``), as on one core;
   and ``--soak-polls`` polls in a row with both processes' memory and the descriptors.
3. GUI stall: the worst gap of a 60 Hz loop in this process's main thread while an engine
   polls both endpoints, with the engine in a thread and in a worker process.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# ---------------------------------------------------------------------------------------------
# Synthetic bodies
# ---------------------------------------------------------------------------------------------

#: dcgm-exporter metric -> (typical value, spread); the names MetricMap asks for by default.
METRICS: dict[str, tuple[float, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": (80, 20), "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": (0.45, 0.2),
    "DCGM_FI_DEV_SM_CLOCK": (1755, 150), "DCGM_FI_DEV_GPU_TEMP": (62, 8),
    "DCGM_FI_DEV_POWER_USAGE": (520, 120), "DCGM_FI_DEV_FB_USED": (61000, 15000),
    "DCGM_FI_DEV_XID_ERRORS": (0, 0), "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": (0, 0),
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL": (0, 0),
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": (0, 0), "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": (700, 0),
}


def node_name(i: int) -> str:
    return f"gpu{i + 1:04d}"


def prom_series(metric: str, nodes: int, gpn: int, t: float, rng: random.Random) -> list[dict]:
    mean, spread = METRICS[metric]
    out = []
    for n in range(nodes):
        host = node_name(n)
        for g in range(gpn):
            v = max(0.0, rng.gauss(mean, spread)) if spread else mean
            out.append({"metric": {
                "__name__": metric, "DCGM_FI_DRIVER_VERSION": "550.54.15", "Hostname": host,
                "UUID": f"GPU-{rng.getrandbits(32):08x}-{n:04x}-{g:04x}-6df9-43c0e0e68b33",
                "device": f"nvidia{g}", "gpu": str(g), "instance": f"10.{n // 250}.{n % 250}.10:9400",
                "job": "dcgm", "modelName": "NVIDIA H800 80GB HBM3", "pci_bus_id": f"00000000:{g + 0x18:02X}:00.0",
                "rack": f"r{n // 32:03d}"},
                "value": [t, f"{v:.6g}"]})
    return out


def prom_body(result: list[dict]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}},
                      separators=(",", ":")).encode()


def prom_bodies(nodes: int, gpn: int, seed: int = 1) -> dict[str, bytes]:
    """Answers keyed by the PromQL the telemetry source sends, plus ``__combined__``."""
    from console.sources.prometheus import MetricMap

    mm = MetricMap()
    rng = random.Random(seed)
    t = 1795935494.863
    by_metric = {m: prom_series(m, nodes, gpn, t, rng) for m in METRICS}
    out: dict[str, bytes] = {}
    for key in mm.metric_keys():
        expr = mm.expr(key)
        metric = next(m for m in METRICS if m in expr)
        out[expr] = prom_body(by_metric[metric])
    up = [{"metric": {"__name__": "up", "instance": f"10.{n // 250}.{n % 250}.10:9400",
                      "job": "dcgm", "Hostname": node_name(n), "rack": f"r{n // 32:03d}"},
           "value": [t, "1"]} for n in range(nodes)]
    out[mm.expr("up")] = prom_body(up)
    reduced = MetricMap(reduce_labels=True)
    for i, key in enumerate(reduced.metric_keys()):
        expr = reduced.query_expr(key, first=i == 0)
        keep = {*reduced.host_labels, reduced.gpu_label}
        if i == 0:
            keep |= {*reduced.model_labels, reduced.rack_label, "instance"}
        metric = next(m for m in METRICS if m in expr)
        out[expr] = prom_body([{"metric": {k: v for k, v in s["metric"].items() if k in keep},
                                "value": s["value"]} for s in by_metric[metric]])
    out["__combined__"] = prom_body([s for m in METRICS for s in by_metric[m]])
    return out


_PENDING_JOB = json.loads(
    '{"account":"acme-ai","accrue_time":1795935401,"admin_comment":"","array_job_id":0,'
    '"array_task_id":null,"array_max_tasks":0,"array_task_string":"","association_id":0,'
    '"batch_features":"","batch_flag":true,"batch_host":"","flags":["JOB_CPUS_SET"],'
    '"burst_buffer":"","burst_buffer_state":"","cluster":"lab","cluster_features":"","command":"",'
    '"comment":"","container":"","contiguous":false,"core_spec":null,"thread_spec":null,'
    '"cores_per_socket":null,"billable_tres":null,"cpus_per_task":null,'
    '"cpu_frequency_minimum":null,"cpu_frequency_maximum":null,"cpu_frequency_governor":null,'
    '"cpus_per_tres":"","deadline":0,"delay_boot":0,"dependency":"","derived_exit_code":0,'
    '"eligible_time":1795935401,"end_time":1795993002,"excluded_nodes":"","exit_code":0,'
    '"features":"","federation_origin":"","federation_siblings_active":"",'
    '"federation_siblings_viable":"","gres_detail":[],"group_id":0,"group_name":"root","job_id":8,'
    '"job_state":"PENDING","last_sched_evaluation":1795935489,"licenses":"","max_cpus":0,'
    '"max_nodes":1,"mcs_label":"","memory_per_tres":"","name":"llm-eval","nodes":"","nice":null,'
    '"tasks_per_core":null,"tasks_per_node":0,"tasks_per_socket":null,"tasks_per_board":0,'
    '"cpus":32,"node_count":1,"tasks":1,"het_job_id":0,"het_job_id_set":"","het_job_offset":0,'
    '"partition":"gpu","prefer":"","memory_per_node":null,"memory_per_cpu":1000,'
    '"minimum_cpus_per_node":32,"minimum_tmp_disk_per_node":0,"preempt_time":0,"pre_sus_time":0,'
    '"priority":4294901752,"profile":null,"qos":"","reboot":false,"required_nodes":"",'
    '"requeue":true,"resize_time":0,"restart_cnt":0,"resv_name":"","shared":null,'
    '"show_flags":["SHOW_ALL","SHOW_DETAIL","SHOW_LOCAL"],"sockets_per_board":0,'
    '"sockets_per_node":null,"start_time":1795978602,"state_description":"",'
    '"state_reason":"Resources","standard_error":"","standard_input":"/dev/null",'
    '"standard_output":"/srv/lab/var/jobs/%j.out","submit_time":1795935401,"suspend_time":0,'
    '"system_comment":"","time_limit":240,"time_minimum":0,"threads_per_core":null,"tres_bind":"",'
    '"tres_freq":"","tres_per_job":"","tres_per_node":"gres:gpu:8","tres_per_socket":"",'
    '"tres_per_task":"","tres_req_str":"cpu=32,mem=32000M,node=1,billing=32","tres_alloc_str":"",'
    '"user_id":0,"user_name":"root","wckey":"","current_working_directory":"/srv/lab"}')

ACCOUNTS = [f"{w}-{k}" for w in ("acme", "bio", "chem", "climate", "nlp", "vision", "robot", "fin")
            for k in ("ai", "lab", "prod", "dev", "edu")]
REASONS = ["Resources", "Priority", "Dependency", "JobHeldUser", "QOSMaxGRESPerUser",
           "ReqNodeNotAvail", "AssocGrpGRES", "BeginTime", "JobArrayTaskLimit"]
PARTITIONS = ["gpu", "gpu-long", "debug", "interactive"]


def _cores(n: int) -> dict[str, str]:
    return {str(c): "allocated" for c in range(n)}


def _slurm_json(answer: dict[str, Any], pretty: bool) -> bytes:
    """An answer as slurmrestd writes it: pretty-printed, two spaces a level (every release
    recorded: 22.05, 24.11, 26.05); ``pretty=False`` for compact JSON (a proxy that
    re-serialises answers; the console then decodes the whole body at the end)."""
    if pretty:
        return json.dumps(answer, indent=2).encode()
    return json.dumps(answer, separators=(",", ":")).encode()


def slurm_jobs_body(nodes: int, n_jobs: int, gpn: int = 8, seed: int = 2, pretty: bool = True) -> bytes:
    """``GET /slurm/v0.0.38/jobs``: running jobs packed onto the nodes, the rest pending/finished."""
    rng = random.Random(seed)
    t = 1795935400
    jobs: list[dict[str, Any]] = []
    node = 0
    jid = 100000
    while node < nodes and len(jobs) < n_jobs:  # running: whole nodes, 1..16 per job
        size = min(rng.choice((1, 1, 1, 1, 2, 2, 4, 8, 16)), nodes - node)
        hosts = [node_name(node + k) for k in range(size)]
        expr = hosts[0] if size == 1 else f"gpu[{node + 1:04d}-{node + size:04d}]"
        node += size
        j = dict(_PENDING_JOB)
        j.update(job_id=jid, name=f"train-{jid}", account=rng.choice(ACCOUNTS),
                 user_name=f"user{rng.randrange(400)}", user_id=1000 + rng.randrange(400),
                 job_state="RUNNING", state_reason="None", nodes=expr, node_count=size,
                 batch_host=hosts[0], partition=rng.choice(PARTITIONS[:2]),
                 submit_time=t - rng.randrange(86400), start_time=t - rng.randrange(3600),
                 end_time=t + rng.randrange(86400), time_limit=rng.choice((240, 1440, 2880)),
                 tres_alloc_str=f"cpu={64 * size},mem={800 * size}G,node={size},billing={64 * size}",
                 gres_detail=[f"gpu:h800:{gpn}(IDX:0-{gpn - 1})"] * size,
                 job_resources={"nodes": expr, "allocated_cores": 64 * size, "allocated_hosts": size,
                                "allocated_nodes": [
                                    {"sockets": {"0": {"cores": _cores(32)}, "1": {"cores": _cores(32)}},
                                     "nodename": h, "cpus_used": 0, "memory_used": 0,
                                     "memory_allocated": 819200} for h in hosts]})
        jobs.append(j)
        jid += 1
    while len(jobs) < n_jobs:
        j = dict(_PENDING_JOB)
        r = rng.random()
        state = "PENDING" if r < 0.9 else rng.choice(("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"))
        arr = rng.random() < 0.3
        j.update(job_id=jid, name=f"sweep-{jid % 977}", account=rng.choice(ACCOUNTS),
                 user_name=f"user{rng.randrange(400)}", user_id=1000 + rng.randrange(400),
                 job_state=state, state_reason=rng.choice(REASONS) if state == "PENDING" else "None",
                 partition=rng.choice(PARTITIONS), submit_time=t - rng.randrange(7 * 86400),
                 tres_per_node=f"gres:gpu:{rng.choice((1, 2, 4, 8))}",
                 node_count=rng.choice((1, 1, 2, 4)), time_limit=rng.choice((60, 240, 1440)),
                 array_job_id=jid - jid % 100 if arr else 0, array_task_id=jid % 100 if arr else None)
        jobs.append(j)
        jid += 1
    meta = {"plugin": {"type": "openapi/v0.0.38", "name": "Slurm OpenAPI v0.0.38"},
            "Slurm": {"version": {"major": 22, "micro": 8, "minor": 5}, "release": "22.05.8"}}
    return _slurm_json({"meta": meta, "errors": [], "jobs": jobs}, pretty)


def slurm_nodes_body(nodes: int, gpn: int = 8, pretty: bool = True) -> bytes:
    out = []
    for n in range(nodes):
        out.append({"architecture": "x86_64", "burstbuffer_network_address": "", "boards": 1,
                    "boot_time": 1795900000, "cores": 32, "cpu_binding": 0, "cpu_load": 6400,
                    "free_memory": 100000, "cpus": 64, "features": "h800", "active_features": "h800",
                    "gres": f"gpu:h800:{gpn}(S:0-1)", "gres_drained": "N/A",
                    "gres_used": f"gpu:h800:{gpn}(IDX:0-{gpn - 1})", "mcs_label": "",
                    "name": node_name(n), "next_state_after_reboot": "invalid",
                    "address": node_name(n), "hostname": node_name(n), "state": "allocated",
                    "state_flags": [], "next_state_after_reboot_flags": [], "operating_system": "Linux",
                    "owner": None, "partitions": ["gpu", "gpu-long"], "port": 6818,
                    "real_memory": 1000000, "reason": "", "reason_changed_at": 0,
                    "reason_set_by_user": None, "slurmd_start_time": 1795900000, "sockets": 2,
                    "threads": 1, "temporary_disk": 0, "weight": 1, "tres": "cpu=64,mem=1000000M",
                    "slurmd_version": "22.05.8", "alloc_memory": 819200, "alloc_cpus": 64,
                    "idle_cpus": 0, "tres_used": "cpu=64,mem=800G", "tres_weighted": 64.0})
    return _slurm_json({"meta": {}, "errors": [], "nodes": out}, pretty)


# ---------------------------------------------------------------------------------------------
# The server (its own process)
# ---------------------------------------------------------------------------------------------


def _serve(port_out: Any, nodes: int, gpn: int, n_jobs: int, pretty: bool = True) -> None:
    prom = prom_bodies(nodes, gpn)
    slurm = {"nodes": slurm_nodes_body(nodes, gpn, pretty=pretty),
             "jobs": slurm_jobs_body(nodes, n_jobs, gpn, pretty=pretty)}
    combined_prefix = "{__name__=~"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else keep-alive requests stall 44 ms (PERF.md)

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _query(self, q: str) -> None:
            if q.startswith(combined_prefix):
                return self._reply(prom["__combined__"])
            body = prom.get(q)
            if body is None:
                return self._reply(b'{"status":"error","errorType":"bad_data","error":"unknown"}', 400)
            self._reply(body)

        def do_GET(self) -> None:
            u = urlsplit(self.path)
            qs = parse_qs(u.query)
            if u.path == "/api/v1/query":
                return self._query(qs.get("query", [""])[0])
            if u.path.startswith("/slurm/v0.0.38/"):
                tail = u.path.rsplit("/", 1)[-1]
                if tail in slurm:
                    return self._reply(slurm[tail])
            if u.path == "/sizes":
                return self._reply(json.dumps({"prom_metric": len(prom["DCGM_FI_DEV_GPU_UTIL"]),
                                               "prom_combined": len(prom["__combined__"]),
                                               "jobs": len(slurm["jobs"]),
                                               "nodes": len(slurm["nodes"])}).encode())
            self._reply(b'{"error":"not found"}', 404)

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(n).decode())
            self._query(form.get("query", [""])[0])

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    port_out.send(srv.server_address[1])
    srv.serve_forever()


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def median_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def ms(s: float) -> str:
    return f"{s * 1000:8.0f} ms"


def decoders(typed: Any) -> dict[str, Callable[[bytes], Any]]:
    """The JSON decoders to race: the standard library, orjson and msgspec when installed, and
    msgspec decoding into ``typed`` (structs of only the fields the console reads)."""
    out: dict[str, Callable[[bytes], Any]] = {"json": json.loads}
    try:
        import orjson

        out["orjson"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        out["msgspec"] = msgspec.json.decode
        out["msgspec typed"] = msgspec.json.Decoder(typed).decode
    except ImportError:
        pass
    return out


def fetch_bytes(base: str, requests_: list[tuple[str, dict[str, str]]]) -> tuple[list[bytes], float]:
    """The raw answers of one poll's GETs and the time of a bare transfer of them all."""
    import requests

    with requests.Session() as s:
        s.get(base + "/sizes", timeout=10)  # connect first: the poll reuses its connection
        t0 = time.perf_counter()
        # (read in 1 MB pieces: ``.content`` reads 10 kB at a time, which costs more than the
        # transfer itself and would flatter every ratio to "floor + transfer")
        bodies = [b"".join(s.get(base + path, params=params, timeout=120, stream=True)
                           .iter_content(1 << 20)) for path, params in requests_]
        return bodies, time.perf_counter() - t0


def floor(label: str, bodies: list[bytes], typed: Any, repeat: int, transfer_s: float,
          poll: Callable[[], Any]) -> tuple[float, float]:
    """Print each decoder's time over ``bodies`` (GC paused, as the console does), the best
    (the floor), and the console's whole ``poll`` against it, with and without the transfer.

    Poll and decoders are run in turn, ``repeat`` rounds, and the ratio is taken within each
    round, then its median and range printed: on a shared machine the load changes within
    seconds (the floor itself moves by half between runs minutes apart), and a ratio of
    figures taken far apart measures the neighbours.
    """
    race = decoders(typed)
    times: dict[str, list[float]] = {name: [] for name in race}
    polls: list[float] = []
    gc_was = gc.isenabled()
    for _ in range(repeat):
        t0 = time.perf_counter()
        poll()
        polls.append(time.perf_counter() - t0)
        gc.disable()
        try:
            for name, fn in race.items():
                t0 = time.perf_counter()
                for b in bodies:
                    fn(b)
                times[name].append(time.perf_counter() - t0)
        finally:
            if gc_was:
                gc.enable()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    best = min(med, key=med.__getitem__)
    poll_s = statistics.median(polls)
    ratios = [p / f for p, f in zip(polls, times[best])]
    mb = sum(map(len, bodies)) / 1e6
    print(f"  {label}: console poll {ms(poll_s).strip()}; floor ({len(bodies)} answers, {mb:.1f} MB, "
          "decode only): " + ", ".join(f"{n} {t * 1000:.0f} ms" for n, t in med.items()))
    print(f"    ratio to the floor ({best}), per round: median {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}x over {len(ratios)} rounds); to floor + "
          f"bare transfer ({ms(transfer_s).strip()}): {poll_s / (med[best] + transfer_s):.2f}x")
    return poll_s, med[best]


def labels_read(mm: Any) -> tuple[str, ...]:
    """The labels the telemetry source reads (host, GPU, model, rack, instance)."""
    return tuple(dict.fromkeys((*mm.host_labels, mm.gpu_label, *mm.model_labels,
                                *([mm.rack_label] if mm.rack_label else []), "instance")))


def prom_typed(labels: tuple[str, ...]) -> Any:
    """msgspec types of an instant vector answer keeping only ``labels`` (the floor's decoder)."""
    import msgspec

    fields_ = [(f"l{i}", str, "") for i in range(len(labels))]
    lab = msgspec.defstruct("Labels", fields_, rename={f"l{i}": n for i, n in enumerate(labels)})
    sample = msgspec.defstruct("Sample", [("metric", lab), ("value", tuple[float, str])])
    data = msgspec.defstruct("Data", [("resultType", str), ("result", list[sample])])
    return msgspec.defstruct("Answer", [("status", str), ("data", data)])


def slurm_typed() -> Any:
    """msgspec types of ``/nodes`` and ``/jobs`` answers keeping only the keys the console reads
    (a union: one decoder for both; values of any JSON type, as they differ by API version)."""
    import msgspec

    from console.sources.slurm_parse import _JOB_KEYS

    node_keys = ("name", "hostname", "state", "state_flags", "reason", "gres", "gres_used",
                 "partitions")
    job = msgspec.defstruct("Job", [(k, Any, None) for k in _JOB_KEYS])
    node = msgspec.defstruct("Node", [(k, Any, None) for k in node_keys])
    return msgspec.defstruct("Answer", [("meta", Any, None), ("errors", Any, None),
                                        ("warnings", Any, None), ("last_update", Any, None),
                                        ("jobs", list[job], []), ("nodes", list[node], [])])


def bench_prometheus(base: str, repeat: int, sizes: dict[str, int]) -> None:
    from console.sources.prometheus import MetricMap, PrometheusClient, PrometheusTelemetrySource

    client = PrometheusClient.from_url(base, timeout=(3.05, 60.0))
    src = PrometheusTelemetrySource(client, metrics=MetricMap())
    expr = MetricMap().expr("util")
    print(f"\nPrometheus, {sizes['series']:,} series per metric "
          f"({sizes['prom_metric'] / 1e6:.1f} MB per query answer)")
    t_q, r = median_of(lambda: client.query(expr), repeat)
    http_s = client.http.last_latency_s or 0.0
    t_c, _ = median_of(lambda: src._collect(r.result, {}, {}), repeat)
    print(f"  one query: HTTP {ms(http_s)}, JSON {ms(t_q - http_s)}, to columns {ms(t_c)}")
    if hasattr(client, "query_series"):  # typed decoding of only the labels read
        labels = labels_read(src.metrics)
        t_q, r = median_of(lambda: client.query_series(expr, None, labels), repeat)
        http_s = client.http.last_latency_s or 0.0
        t_c, _ = median_of(lambda: src._collect(r.result, {}, {}), repeat)
        print(f"  the same, typed (query_series): HTTP {ms(http_s)}, JSON {ms(t_q - http_s)}, "
              f"to columns {ms(t_c)}")
    t_poll, ups = median_of(src.fetch, repeat)
    u = ups[0]
    print(f"  one poll ({len(MetricMap().metric_keys())} metric queries + up), whole fetch: "
          f"{ms(t_poll)}  -> {len(u.nodes)} nodes x {u.gpus_per_node} GPUs")
    typed = prom_typed(labels_read(src.metrics))
    asked = [("/api/v1/query", {"query": src.metrics.query_expr(k, first=i == 0)})
             for i, k in enumerate(src.metrics.metric_keys())] + \
        [("/api/v1/query", {"query": src.metrics.expr("up")})]
    full_bodies, full_transfer_s = fetch_bytes(base, asked)
    floor("one poll, all labels", full_bodies, typed, repeat, full_transfer_s, src.fetch)
    small = PrometheusTelemetrySource(client, metrics=MetricMap(reduce_labels=True))
    expr_small = small.metrics.query_expr("temp")
    t_q, r = median_of(lambda: client.query(expr_small), repeat)
    http_s = client.http.last_latency_s or 0.0
    t_c, _ = median_of(lambda: small._collect(r.result, {}, {}), repeat)
    print(f"  with reduce_labels (max by host, gpu; {client.http.last_bytes / 1e6:.1f} MB): one query: "
          f"HTTP {ms(http_s)}, JSON {ms(t_q - http_s)}, to columns {ms(t_c)}")
    t_poll, ups = median_of(small.fetch, repeat)
    print(f"  with reduce_labels, one poll, whole fetch: {ms(t_poll)}")
    asked = [("/api/v1/query", {"query": small.metrics.query_expr(k, first=i == 0)})
             for i, k in enumerate(small.metrics.metric_keys())] + \
        [("/api/v1/query", {"query": small.metrics.expr("up")})]
    bodies, transfer_s = fetch_bytes(base, asked)
    floor("one poll, reduce_labels (the live default)", bodies, typed, repeat, transfer_s,
          small.fetch)
    del bodies
    floor("the live default against the floor of all labels (today's answers)", full_bodies,
          typed, repeat, full_transfer_s, small.fetch)
    del full_bodies
    combined = "{__name__=~\"" + "|".join(METRICS) + "\"}"
    t_all, r_all = median_of(lambda: client.query(combined), max(1, repeat - 1))
    http_all = client.http.last_latency_s or 0.0
    print(f"  alternative, one query for all {len(METRICS)} metrics "
          f"({sizes['prom_combined'] / 1e6:.0f} MB, {len(r_all.result):,} series): "
          f"HTTP {ms(http_all)}, JSON {ms(t_all - http_all)}")
    client.close()


def bench_slurm(base: str, repeat: int, sizes: dict[str, int], polls: int = 0) -> None:
    import requests

    from console.sources import decode_helper, job_stream, slurm_parse
    from console.sources.slurm import SlurmClient, SlurmSchedulerSource

    client = SlurmClient.from_url(base, version="v0.0.38", timeout=(3.05, 120.0))
    src = SlurmSchedulerSource(client, use_update_time=False)
    print(f"\nslurmrestd v0.0.38, {sizes['jobs'] // 1_000_000} MB of /jobs")
    raw = b"".join(requests.get(base + "/slurm/v0.0.38/jobs", stream=True, timeout=120)
                   .iter_content(1 << 20))
    decode = slurm_parse.listing_decoder("jobs")
    assert decode is not None
    jobs = decode(raw)["jobs"]
    del raw
    gc_was = gc.isenabled()
    gc.disable()
    t_tab, table = median_of(lambda: slurm_parse.parse_jobs(jobs), repeat)
    if gc_was:
        gc.enable()
    del jobs
    running = int((table.state == 1).sum())
    print(f"  {len(table):,} jobs, {running:,} running, {len(table.alloc_job):,} GPU allocations; "
          f"the table of all of them built at once from decoded jobs: {ms(t_tab).strip()} (GC paused)")
    if slurm_parse.listing_stream("jobs") is None:
        print("  /jobs read whole, then decoded (--whole)")
    helper = "on" if decode_helper.available() else "off (one core, or no memfd)"
    made: list[Any] = []
    real = job_stream.JobTableStream.__init__

    def spy(self: Any, *a: Any, **k: Any) -> None:
        real(self, *a, **k)
        made.append(self)

    job_stream.JobTableStream.__init__ = spy  # type: ignore[method-assign]
    try:
        src.fetch()  # the helper process starts with the first large answer
        time.sleep(2)
        t_get, _ = median_of(lambda: client.jobs(), repeat)
    finally:
        job_stream.JobTableStream.__init__ = real  # type: ignore[method-assign]
    shared = (f"; the helper process took {made[-1].sent} of {made[-1].runs} runs"
              if made and not made[-1].failed else "")
    print(f"  /jobs received, decoded and tabulated while it arrives (helper process {helper}): "
          f"{ms(t_get).strip()}{shared}")
    t_poll, _ = median_of(src.fetch, repeat)
    print(f"  one poll (/nodes {sizes['nodes'] / 1e6:.1f} MB + /jobs): {ms(t_poll)}")
    bodies, transfer_s = fetch_bytes(base, [("/slurm/v0.0.38/nodes", {}), ("/slurm/v0.0.38/jobs", {})])
    floor("one poll", bodies, slurm_typed(), repeat, transfer_s, src.fetch)
    was = os.environ.get("AISC_CONSOLE_DECODE_HELPER")
    os.environ["AISC_CONSOLE_DECODE_HELPER"] = "0"
    try:
        floor("one poll on one core (AISC_CONSOLE_DECODE_HELPER=0)", bodies, slurm_typed(), repeat,
              transfer_s, src.fetch)
    finally:
        if was is None:
            del os.environ["AISC_CONSOLE_DECODE_HELPER"]
        else:
            os.environ["AISC_CONSOLE_DECODE_HELPER"] = was
    del bodies
    soak(src, polls)
    client.close()
    decode_helper.shutdown()
    peak_memory(base)


def _rss_mib(pid: int | str) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def soak(src: Any, polls: int) -> None:
    """RSS of this process and of the decoding helper, and this process's open descriptors,
    over ``polls`` polls in a row (they must stay flat: the console polls all day)."""
    from console.sources import decode_helper

    if polls <= 0:
        return
    marks = []
    for i in range(1, polls + 1):
        src.fetch()
        if i == 1 or i % max(1, polls // 4) == 0 or i == polls:
            h = decode_helper._HELPER
            helper = f"{_rss_mib(h.pid):.0f}" if h is not None and h.alive else "-"
            marks.append(f"{i}: {_rss_mib('self'):.0f}/{helper} MiB, "
                         f"{len(os.listdir('/proc/self/fd'))} fds")
    print(f"  {polls} polls in a row (this process / helper RSS, descriptors): " + "; ".join(marks))


def _peak_child(base: str, whole: bool, out: Any) -> None:
    """In a fresh process: peak RSS growth (MiB) over one ``GET /jobs`` read and decoded.

    VmHWM (this process' own peak), not ``ru_maxrss``, which Linux carries over from the
    parent across ``exec``."""

    def hwm_kib() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    from console.sources import slurm_parse
    from console.sources.slurm import SlurmClient

    if whole:
        slurm_parse.listing_stream = lambda key: None  # type: ignore[assignment]
    from console.sources import decode_helper

    client = SlurmClient.from_url(base, version="v0.0.38", timeout=(3.05, 120.0))
    helper = decode_helper.acquire()  # started and ready first: its start-up is no poll's cost
    if helper is not None:
        helper.wait_ready(60)
        decode_helper.release(helper)
    before = hwm_kib()
    body = client.jobs()
    after = hwm_kib()
    helper_mib = 0.0
    if helper is not None and helper.alive:
        with open(f"/proc/{helper.pid}/status") as f:
            helper_mib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    decode_helper.shutdown()
    out.send(((after - before) / 1024, len(body["jobs"]), helper_mib))


def peak_memory(base: str) -> None:
    """Peak memory of one jobs poll, decoded as it arrives and read whole (fresh processes)."""
    ctx = mp.get_context("spawn")
    for whole in (False, True):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_peak_child, args=(base, whole, send))
        p.start()
        if not recv.poll(300):
            p.terminate()
            print("  peak memory: the measuring process did not answer")
            return
        mib, n, helper_mib = recv.recv()
        p.join(60)
        how = "read whole, then decoded" if whole else "decoded while it arrives"
        extra = f"; the helper process's own peak {helper_mib:.0f} MiB" if helper_mib else ""
        print(f"  peak memory of one /jobs poll ({n:,} jobs), {how}: +{mib:.0f} MiB{extra}")


def stall(seconds: float) -> tuple[float, float, int, int]:
    """Worst and 99th-percentile gap of a 60 Hz wait loop on this (main) thread, late ticks."""
    period = 1 / 60
    ev = threading.Event()
    gaps = []
    end = time.perf_counter() + seconds
    last = time.perf_counter()
    while last < end:
        ev.wait(period)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    gaps.sort()
    late = sum(1 for g in gaps if g > 2 * period)
    return gaps[-1], gaps[int(0.99 * (len(gaps) - 1))], late, len(gaps)


def bench_stall(prom_url: str, slurm_url: str, seconds: float) -> None:
    from console.config import ClusterSettings, PrometheusSettings, Settings, SlurmSettings
    from console.engine import Engine
    from console.engine_process import ProcessEngine

    cluster = ClusterSettings(
        name="bench",
        prometheus=PrometheusSettings(url=prom_url, interval_s=2.0, timeout_s=60.0),
        slurm=SlurmSettings(url=slurm_url, interval_s=5.0, timeout_s=120.0, api_version="v0.0.38"))
    settings = Settings(clusters=(cluster,))
    print(f"\nGUI-thread stall: worst gap of a 60 Hz loop over {seconds:.0f} s "
          "(Prometheus every 2 s, slurmrestd every 5 s)")
    worst, p99, late, n = stall(min(seconds, 3.0))
    print(f"  idle:            worst {ms(worst)}, p99 {ms(p99)}, {late} of {n} ticks late")
    for label, make in (("engine thread", lambda: Engine(settings)),
                        ("engine process", lambda: ProcessEngine(settings))):
        engine = make()
        engine.start()
        try:
            first = engine.wait_ready(timeout=120)
            frames0 = first.seq
            worst, p99, late, n = stall(seconds)
            f = engine.latest_frame()
            built = (f.seq if f else 0) - frames0
            extra = (f", unpickling a frame {ms(engine.last_receive_s).strip()}"
                     if isinstance(engine, ProcessEngine) else "")
            print(f"  {label + ':':<16} worst {ms(worst)}, p99 {ms(p99)}, {late} of {n} ticks late "
                  f"({built} frames{extra})")
        finally:
            engine.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=4096)
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=50000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stall-s", type=float, default=8.0)
    ap.add_argument("--skip-stall", action="store_true")
    ap.add_argument("--skip-prometheus", action="store_true")
    ap.add_argument("--soak-polls", type=int, default=20,
                    help="slurmrestd polls in a row, memory and descriptors sampled (0: none)")
    ap.add_argument("--whole", action="store_true",
                    help="read slurmrestd's answers whole before decoding them (the console "
                         "before it decoded them while they arrive), for comparison")
    ap.add_argument("--compact-slurm", action="store_true",
                    help="serve slurmrestd's answers as compact JSON (slurmrestd itself "
                         "pretty-prints; compact is what a re-serialising proxy would send)")
    args = ap.parse_args(argv)

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    server = ctx.Process(target=_serve, args=(send, args.nodes, args.gpus_per_node, args.jobs,
                                                 not args.compact_slurm),
                         daemon=True, name="bench-server")
    server.start()
    try:
        if not recv.poll(600):
            print("the benchmark server did not start")
            return 1
        port = recv.recv()
        base = f"http://127.0.0.1:{port}"
        import requests

        sizes = requests.get(base + "/sizes", timeout=10).json()
        sizes["series"] = args.nodes * args.gpus_per_node
        print(f"{args.nodes:,} nodes x {args.gpus_per_node} GPUs, {args.jobs:,} jobs; "
              f"bodies generated in {time.perf_counter() - t0:.1f} s; medians of {args.repeat}")
        if not args.skip_prometheus:
            bench_prometheus(base, args.repeat, sizes)
        if args.whole:
            from console.sources import slurm_parse

            slurm_parse.listing_stream = lambda key: None  # type: ignore[assignment]
        bench_slurm(base, args.repeat, sizes, args.soak_polls)
        if not args.skip_stall:
            bench_stall(base, base, args.stall_s)
    finally:
        server.terminate()
        server.join(5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
