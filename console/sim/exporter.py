"""Serve the simulated cluster as dcgm-exporter ``/metrics``, for integration tests.

A real Prometheus scrapes this exactly as it would scrape dcgm-exporter (metric names and
labels as FACTS 1.1/1.2), so the Prometheus source is tested end to end against the same
cluster the console shows in demo mode. Standard library only; Nagle is off so keep-alive
scrapes do not stall 40 ms each (PERF.md).

Run it standalone: ``python -m console.sim.exporter --port 9400 --nodes 4
--node-names gpu01,gpu02,gpu03,gpu04 --advance scrape``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import threading
import time as _time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from console.sim.cluster import SimCluster
from console.sim.config import FAULT_MODES, SimConfig

#: (metric, type, help, telemetry key)
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", "sm_clock"),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", "temp"),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", "power"),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", "util"),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", "fb_used"),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", "xid"),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors.", "ecc_dbe"),
    ("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", "counter",
     "Total number of NVLink flow-control CRC errors.", "nvlink_total"),
    ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "gauge", "Current clock event reasons (bitmask).", "throttle"),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.", "tensor"),
    ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "gauge", "Current enforced power limit (in W).", "power_limit"),
)
_PCI_BUS = ("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB", "1B", "2B", "3B", "5E", "9B", "AC", "BB", "DC")
DRIVER_VERSION = "550.127.08"


def gpu_uuid(node: str, gpu: int) -> str:
    """A stable GPU UUID per simulated GPU (the same across runs and restarts)."""
    h = hashlib.sha1(f"{node}/{gpu}".encode()).hexdigest()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


#: The stale job id a duplicated series carries: a fixed offset from nothing the simulator
#: allocates, so a test can tell the duplicate from the current job.
STALE_JOB_BASE = 9_000_000


def render_metrics(cluster: SimCluster, *, node_filter: Sequence[str] | None = None,
                   node_names: Mapping[str, str] | None = None, hpc_job: bool = False,
                   hostname_label: str = "Hostname", node_gpus: Mapping[str, int] | None = None,
                   node_models: Mapping[str, str] | None = None,
                   hpc_job_duplicates: bool = False) -> str | None:
    """The exposition text for the selected nodes; None when all of them have no exporter.

    A lost GPU (XID 79) drops out of every series but XID, as it does from a real exporter;
    a node whose exporter is down is absent (and alone, answers 503 so ``up`` becomes 0).

    Real sites are not uniform, so the served shape can differ per node (keys are the names
    as served): ``node_gpus`` serves only the first N of a node's simulated GPUs (a 4-GPU node
    in an 8-GPU simulation) and ``node_models`` sets its ``modelName`` (two GPU models in one
    cluster). ``hpc_job_duplicates`` repeats every allocated GPU's series with a second, stale
    ``hpc_job`` label and the same value, as dcgm-exporter does when its job-mapping folder
    still lists a finished job for that GPU: a consumer that sums instead of collapsing
    counts those GPUs twice.
    """
    rename = dict(node_names or {})
    sizes = dict(node_gpus or {})
    models = dict(node_models or {})
    with cluster._lock:
        tel = cluster.telemetry_update()
        nvl = cluster.phys.nvlink_total.copy()
        gpu_job = cluster.workload.gpu_job.copy()
        job_ids = cluster.workload.store.c["job_id"].copy()
    idx = cluster.node_names
    wanted = list(range(len(idx))) if node_filter is None else [idx.index(n) for n in node_filter]
    wanted = [i for i in wanted if tel.node_up[i]]
    if not wanted:
        return None
    gpn = tel.gpus_per_node
    lines: list[str] = []
    labels: dict[tuple[int, int], str] = {}
    served: dict[int, range] = {}
    for n in wanted:
        host = rename.get(idx[n], idx[n])
        model = models.get(host, cluster.config.gpu_model)
        served[n] = range(min(gpn, sizes.get(host, gpn)))
        for g in served[n]:
            labels[(n, g)] = (f'gpu="{g}",UUID="{gpu_uuid(idx[n], g)}",pci_bus_id="00000000:{_PCI_BUS[g % 16]}:00.0",'
                              f'device="nvidia{g}",modelName="{model}",{hostname_label}="{host}",'
                              f'DCGM_FI_DRIVER_VERSION="{DRIVER_VERSION}"')
    for metric, mtype, help_text, key in METRICS:
        lines.append(f"# HELP {metric} {help_text}")
        lines.append(f"# TYPE {metric} {mtype}")
        arr = nvl if key == "nvlink_total" else tel.metrics[key]
        dead = ~np.isfinite(tel.metrics["util"])
        for n in wanted:
            for g in served[n]:
                if key == "nvlink_total" and dead[n, g]:
                    continue
                v = float(arr[n, g])
                if math.isnan(v):
                    continue
                extra = ""
                if key == "xid" and v:
                    extra = f',err_code="{int(v)}"'
                text = str(int(v)) if v == int(v) else f"{v:.6g}"
                if hpc_job and gpu_job[n, g] >= 0:
                    if hpc_job_duplicates:
                        stale = STALE_JOB_BASE + n * 16 + g
                        lines.append(f'{metric}{{{labels[(n, g)]}{extra},hpc_job="{stale}"}} {text}')
                    extra += f',hpc_job="{int(job_ids[gpu_job[n, g]])}"'
                lines.append(f"{metric}{{{labels[(n, g)]}{extra}}} {text}")
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: "SimExporterServer"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path = self.path.split("?", 1)[0]
        if path not in ("/metrics", "/"):
            self._send(404, b"not found\n")
            return
        srv = self.server
        if path == "/":
            self._send(200, b"<html><body><a href='/metrics'>Metrics</a></body></html>\n", "text/html")
            return
        if srv.advance == "scrape":
            srv.cluster.step(srv.cluster.config.tick_s * srv.cluster.config.speed)
        body = render_metrics(srv.cluster, node_filter=srv.node_filter, node_names=srv.node_names,
                              hpc_job=srv.hpc_job, hostname_label=srv.hostname_label,
                              node_gpus=srv.node_gpus, node_models=srv.node_models,
                              hpc_job_duplicates=srv.hpc_job_duplicates)
        if body is None:
            self._send(503, b"exporter unavailable\n")
            return
        self._send(200, body.encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: a scrape every few seconds would flood a test's output."""


class SimExporterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], cluster: SimCluster, *, node_filter: Sequence[str] | None,
                 node_names: Mapping[str, str] | None, hpc_job: bool, advance: str,
                 advance_interval_s: float, hostname_label: str,
                 node_gpus: Mapping[str, int] | None = None, node_models: Mapping[str, str] | None = None,
                 hpc_job_duplicates: bool = False) -> None:
        super().__init__(address, _Handler)
        self.node_gpus = dict(node_gpus or {})
        self.node_models = dict(node_models or {})
        self.hpc_job_duplicates = hpc_job_duplicates
        self.cluster = cluster
        self.node_filter = list(node_filter) if node_filter is not None else None
        self.node_names = dict(node_names or {})
        self.hpc_job = hpc_job
        self.advance = advance
        self.hostname_label = hostname_label
        self.stop_event = threading.Event()
        self.ticker: threading.Thread | None = None
        if advance == "timer":
            self.ticker = threading.Thread(target=self._tick, args=(advance_interval_s,),
                                           name="sim-exporter-ticker", daemon=True)
            self.ticker.start()

    def _tick(self, interval: float) -> None:
        """Advance the simulation on wall time (one tick per interval) until shut down."""
        cfg = self.cluster.config
        while not self.stop_event.wait(interval):
            self.cluster.step(cfg.tick_s * cfg.speed)

    def shutdown(self) -> None:
        self.stop_event.set()
        super().shutdown()

    def server_close(self) -> None:
        self.stop_event.set()
        super().server_close()


def serve_exporter(cluster_or_source: object, host: str = "127.0.0.1", port: int = 0,
                   node_filter: Sequence[str] | None = None, *,
                   node_names: Mapping[str, str] | None = None, hpc_job: bool = False,
                   advance: str = "none", advance_interval_s: float = 2.0,
                   hostname_label: str = "Hostname", node_gpus: Mapping[str, int] | None = None,
                   node_models: Mapping[str, str] | None = None,
                   hpc_job_duplicates: bool = False) -> tuple[SimExporterServer, threading.Thread]:
    """Start serving in a daemon thread; returns the server (``server_address`` has the
    port) and its thread. Stop with ``server.shutdown(); server.server_close()``.

    ``node_filter`` selects simulated nodes by their simulated names; ``node_names`` renames
    them on the way out (e.g. ``{"n0001": "gpu01"}``) so the exporter matches the node names
    of a real Slurm in the integration stack. ``advance``: "none" (someone else steps the
    cluster), "scrape" (one tick per scrape) or "timer" (one tick per ``advance_interval_s``).
    ``node_gpus``, ``node_models`` and ``hpc_job_duplicates``: see `render_metrics`.
    """
    if advance not in ("none", "scrape", "timer"):
        raise ValueError("advance must be none, scrape or timer")
    cluster = getattr(cluster_or_source, "cluster", cluster_or_source)
    if not isinstance(cluster, SimCluster):
        raise TypeError("serve_exporter needs a SimCluster or a SimulatedSource")
    if node_filter is not None:
        unknown = [n for n in node_filter if n not in cluster.node_names]
        if unknown:
            raise ValueError(f"unknown nodes: {', '.join(unknown)}")
    server = SimExporterServer((host, port), cluster, node_filter=node_filter, node_names=node_names,
                               hpc_job=hpc_job, advance=advance, advance_interval_s=advance_interval_s,
                               hostname_label=hostname_label, node_gpus=node_gpus, node_models=node_models,
                               hpc_job_duplicates=hpc_job_duplicates)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="sim-exporter", daemon=True)
    thread.start()
    return server, thread


def _pairs(text: str) -> dict[str, str]:
    """``"a=1,b=2"`` as a dict; a model name may hold spaces but no comma."""
    out: dict[str, str] = {}
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m console.sim.exporter",
                                 description="Serve the simulated cluster as dcgm-exporter metrics.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9400)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--faults", choices=FAULT_MODES, default="default")
    ap.add_argument("--node-names", default="",
                    help="comma-separated names to serve instead of n0001.. (e.g. gpu01,gpu02)")
    ap.add_argument("--gpus-per-node", type=int, default=8, help="simulated GPUs per node (the largest node)")
    ap.add_argument("--node-gpus", default="",
                    help="comma-separated NAME=N: serve only N GPUs of that node (e.g. gpu05=4)")
    ap.add_argument("--node-models", default="",
                    help="comma-separated NAME=MODEL: the node's modelName (e.g. 'gpu03=NVIDIA H100 80GB HBM3')")
    ap.add_argument("--hpc-job", action="store_true", help="add hpc_job labels for allocated GPUs")
    ap.add_argument("--hpc-job-duplicates", action="store_true",
                    help="repeat allocated GPUs' series with a stale hpc_job label (needs --hpc-job)")
    ap.add_argument("--advance", choices=("none", "scrape", "timer"), default="timer")
    ap.add_argument("--interval", type=float, default=5.0, help="wall seconds per tick with --advance timer")
    ap.add_argument("--hostname-label", default="Hostname", choices=("Hostname", "hostname"))
    args = ap.parse_args(list(argv) if argv is not None else None)
    try:
        node_gpus = {k: int(v) for k, v in _pairs(args.node_gpus).items()}
        node_models = _pairs(args.node_models)
    except ValueError as exc:
        ap.error(f"--node-gpus takes NAME=N and --node-models NAME=MODEL pairs ({exc})")
    cfg = SimConfig(seed=args.seed, nodes=args.nodes, speed=args.speed, faults=args.faults,
                    gpus_per_node=args.gpus_per_node)
    cluster = SimCluster(cfg, t0=_time.time())
    names = [x.strip() for x in args.node_names.split(",") if x.strip()]
    if names and len(names) > cfg.nodes:
        ap.error("more --node-names than --nodes")
    mapping = dict(zip(cluster.node_names, names))
    server, thread = serve_exporter(cluster, args.host, args.port, node_names=mapping,
                                    node_filter=list(mapping) if mapping else None,
                                    hpc_job=args.hpc_job, advance=args.advance,
                                    advance_interval_s=args.interval, hostname_label=args.hostname_label,
                                    node_gpus=node_gpus, node_models=node_models,
                                    hpc_job_duplicates=args.hpc_job_duplicates)
    print(f"serving {len(mapping) or cfg.nodes} simulated nodes on http://{args.host}:{server.server_address[1]}/metrics",
          flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
