"""Prometheus HTTP API v1 (also VictoriaMetrics): a thin client and the GPU telemetry source.

The telemetry source asks one instant query per metric and lays the answers out on a
[node, gpu] grid with numpy. Things real sites do that it has to survive:

* the host label is ``Hostname`` (dcgm-exporter up to 4.5.x) or ``hostname`` (later), and
  sites relabel; both are tried, in a configurable order;
* dcgm-exporter's HPC job mapping duplicates every sample once per job on the GPU (label
  ``hpc_job``): duplicates are collapsed per (host, gpu) with a max, never summed;
* an exporter that is down has no series at all: its node is reported with ``node_up`` False
  (and NaN data) so it shows as unreachable, not as idle. The node of a down target is known
  from the target's own labels, from series seen earlier, from a site mapping, or from one
  look-back query;
* VictoriaMetrics answers ``scalar()`` as a vector, parse errors as 422, and an empty
  buildinfo (STACK.md).

Both classes live in the poller's worker thread.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from operator import attrgetter, itemgetter
from types import GenericAlias
from typing import TYPE_CHECKING, Any, TypedDict

import msgspec
import numpy as np

from console.model import TELEMETRY_METRICS, TelemetryUpdate, Update
from console.sources.base import ErrorKind, SourceError
from console.sources.http import (NOT_MODIFIED, HttpClient, Reply, gc_paused, server_error_text,
                                  strip_port, typed_decoder)

if TYPE_CHECKING:
    from console.sources.prometheus_history import HistoryBackfill

# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryResult:
    """The ``data`` of a query answer plus the server's warnings (partial answers)."""

    result_type: str  # "vector" | "matrix" | "scalar" | "string"
    result: Any
    warnings: tuple[str, ...] = ()


def _prom_error_mapper(reply: Reply, host: str) -> SourceError | None:
    """Map the ``{status: error, errorType, error}`` envelope on 4xx/5xx to plain words."""
    body = reply.body
    if not isinstance(body, Mapping) or body.get("status") != "error":
        return None
    etype = str(body.get("errorType") or "")
    words = server_error_text({"error": body.get("error")}, "")
    if etype == "timeout":
        return SourceError(ErrorKind.TIMEOUT, f"query timed out on {host}: {words}",
                           status=reply.status)
    if etype in ("unavailable", "internal") or reply.status >= 500 and etype not in ("execution",):
        return SourceError(ErrorKind.HTTP, f"server error {reply.status} from {host}: {words}",
                           status=reply.status, retry_after_s=reply.retry_after_s)
    return SourceError(ErrorKind.QUERY, f"query rejected by {host} ({etype or reply.status}): "
                       f"{words}", status=reply.status)


def _duration(seconds: float) -> str:
    """A Prometheus duration in whole milliseconds: 2.x refuses fractions such as "1.25s"."""
    return f"{max(1, round(seconds * 1000))}ms"


class PrometheusClient:
    """Prometheus API v1 calls, each checking the ``status`` envelope.

    Raises `SourceError` (QUERY for ``status: error``, BAD_PAYLOAD for a wrong shape).
    """

    def __init__(self, http: HttpClient) -> None:
        http.error_mapper = http.error_mapper or _prom_error_mapper
        self.http = http

    @classmethod
    def from_url(cls, base_url: str, **http_kwargs: Any) -> "PrometheusClient":
        """Build with a new `HttpClient` (keyword arguments as for `HttpClient`)."""
        return cls(HttpClient(base_url, **http_kwargs))

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"PrometheusClient({self.http.base_url!r})"

    def _data(self, path: str, params: Any = None, *, method: str = "GET",
              decoder: Callable[[bytes], Any] | None = None) -> tuple[Any, tuple[str, ...]]:
        if method == "POST":  # long queries go as a form body (URL length limits of proxies)
            body = self.http.request("POST", path, data=params, decoder=decoder)
        elif decoder is not None:
            body = self.http.request("GET", path, params=params, decoder=decoder)
        else:
            body = self.http.get_json(path, params)
        if body is NOT_MODIFIED or not isinstance(body, Mapping) or "status" not in body:
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              "not a Prometheus API envelope {status, data}")
        warnings = _texts(body.get("warnings")) + _texts(body.get("infos"))
        if body.get("status") != "success":
            etype = body.get("errorType") or "error"
            raise SourceError(ErrorKind.QUERY, f"query rejected by {self.http.host} ({etype}): "
                              f"{server_error_text({'error': body.get('error')}, '')}")
        if "data" not in body:
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              "no 'data' in a successful answer")
        return body["data"], warnings

    def _query_data(self, path: str, params: dict[str, Any],
                    decoder: Callable[[bytes], Any] | None = None) -> QueryResult:
        method = "POST" if len(params.get("query", "")) > 1500 else "GET"
        data, warnings = self._data(path, params, method=method, decoder=decoder)
        if not isinstance(data, Mapping) or "resultType" not in data or "result" not in data:
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              "query data without resultType/result")
        rtype = str(data["resultType"])
        result = data["result"]
        if rtype in ("vector", "matrix") and not isinstance(result, list):
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {self.http.host}: "
                              f"{rtype} result is not a list")
        return QueryResult(rtype, result, warnings)

    def query(self, expr: str, time: float | None = None, timeout_s: float | None = None) -> QueryResult:
        """Instant query (``/api/v1/query``)."""
        params: dict[str, Any] = {"query": expr}
        if time is not None:
            params["time"] = f"{time:.3f}"
        if timeout_s is not None:
            params["timeout"] = _duration(timeout_s)
        return self._query_data("api/v1/query", params)

    def query_series(self, expr: str, time: float | None, labels: Sequence[str]) -> QueryResult:
        """Instant query whose series keep only ``labels`` (and their value), decoded straight
        into `VectorSample` structs; any other answer (not a vector of {metric, value}, a label
        that is not a string) decodes in full, as `query` gives it.

        Why: at 32,768 GPUs one answer is 11 MB of mostly labels the console never reads;
        building them as Python objects makes decoding it several times slower (PERF.md,
        benchmarks/bench_ingest.py).
        """
        params: dict[str, Any] = {"query": expr}
        if time is not None:
            params["time"] = f"{time:.3f}"
        return self._query_data("api/v1/query", params, _vector_decoder(tuple(dict.fromkeys(labels))))

    def query_range(self, expr: str, start: float, end: float, step: float,
                    timeout_s: float | None = None) -> QueryResult:
        """Range query (``/api/v1/query_range``); step in seconds. ``timeout_s`` also asks the
        server to give up, so an abandoned heavy query does not keep running there."""
        params: dict[str, Any] = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                  "step": f"{step:g}"}
        if timeout_s is not None:
            params["timeout"] = _duration(timeout_s)
        return self._query_data("api/v1/query_range", params)

    def alerts(self) -> tuple[Any, tuple[str, ...]]:
        """``/api/v1/alerts``: the data (``{"alerts": [...]}``) and the server's warnings."""
        return self._data("api/v1/alerts")

    def query_scalar(self, expr: str, time: float | None = None) -> float | None:
        """A single number, whether the server answers a scalar (Prometheus) or a one-element
        vector (VictoriaMetrics); None when the result is empty."""
        r = self.query(expr, time)
        if r.result_type == "scalar" and _pairs([r.result]):
            return _num(r.result[1])
        if r.result_type == "vector":
            if not r.result:
                return None
            first = r.result[0]
            if isinstance(first, Mapping) and _pairs([first.get("value")]):
                return _num(first["value"][1])
        raise SourceError(ErrorKind.BAD_PAYLOAD, f"expected a number from {self.http.host}, got "
                          f"a {r.result_type} of unexpected shape")

    def series(self, match: Sequence[str], start: float | None = None,
               end: float | None = None) -> list[dict[str, str]]:
        params: list[tuple[str, str]] = [("match[]", m) for m in match]
        if start is not None:
            params.append(("start", f"{start:.3f}"))
        if end is not None:
            params.append(("end", f"{end:.3f}"))
        data, _ = self._data("api/v1/series", params)
        return _list_of(data, dict, self.http.host)

    def labels(self) -> list[str]:
        data, _ = self._data("api/v1/labels")
        return _list_of(data, str, self.http.host)

    def label_values(self, name: str) -> list[str]:
        data, _ = self._data(f"api/v1/label/{name}/values")
        return _list_of(data, str, self.http.host)

    def targets(self, state: str = "active") -> list[dict[str, Any]]:
        """Scrape targets (``activeTargets``): each has ``labels``, ``health``, ``lastError``."""
        data, _ = self._data("api/v1/targets", {"state": state})
        if not isinstance(data, Mapping):
            raise SourceError(ErrorKind.BAD_PAYLOAD, "targets answer is not an object")
        return _list_of(data.get("activeTargets") or [], dict, self.http.host)

    def buildinfo(self) -> dict[str, Any]:
        """Server build information; VictoriaMetrics answers an empty object (no version)."""
        data, _ = self._data("api/v1/status/buildinfo")
        return dict(data) if isinstance(data, Mapping) else {}


class VectorSample(msgspec.Struct, gc=False):
    """One series of an instant vector as `PrometheusClient.query_series` decodes it:
    ``metric`` holds the asked labels as attributes (``""`` when absent), see `label_attrs`."""

    metric: Any
    value: tuple[Any, float]


@lru_cache(maxsize=16)
def _vector_decoder(labels: tuple[str, ...]) -> Callable[[bytes], Any]:
    """The typed decoder of an instant-vector answer keeping ``labels`` (one per label set).

    Label attributes are named ``l0, l1, ...`` (renamed to the label names on the wire), so
    any label name works; values must be strings, as Prometheus sends them.
    """
    attrs = [f"l{i}" for i in range(len(labels))]
    # gc=False: strings and a tuple hold no cycles; 32,768 of each per answer stay out of the
    # collector's lists (cheaper to build, to walk, and to free)
    labels_t = msgspec.defstruct("SeriesLabels", [(a, str, "") for a in attrs],
                                 rename=dict(zip(attrs, labels)), gc=False)
    sample_t = msgspec.defstruct("Sample", [("metric", labels_t), ("value", tuple[Any, float])],
                                 bases=(VectorSample,))
    typed_dict: Any = TypedDict  # built at run time: the label set is the site's
    data_t = typed_dict("VectorData", {"resultType": Any,
                                       "result": GenericAlias(list, (sample_t,))}, total=False)
    answer_t = typed_dict("VectorAnswer", {"status": Any, "data": data_t, "warnings": Any,
                                           "infos": Any, "error": Any, "errorType": Any},
                          total=False)
    # strict=False: sample values arrive as strings ("61", "NaN"); "+Inf", which msgspec does
    # not read, sends the whole answer down the plain path (to the same floats)
    return typed_decoder(answer_t, strict=False)


def label_attrs(labels: Sequence[str], asked: Sequence[str]) -> list[str]:
    """The attribute of each of ``labels`` on a `VectorSample`'s metric decoded for ``asked``."""
    pos = {name: i for i, name in enumerate(dict.fromkeys(asked))}
    return [f"l{pos[name]}" for name in labels]


def _list_of(data: Any, typ: type, host: str) -> list:
    if not isinstance(data, list) or not all(isinstance(x, typ) for x in data):
        raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from {host}: expected a "
                          f"list of {typ.__name__}")
    return list(data)


def _num(v: Any) -> float:
    try:
        return float(v)  # "NaN", "+Inf" parse too
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits
        return math.nan


def _texts(v: Any) -> tuple[str, ...]:
    """The server's ``warnings``/``infos``: a list of texts (anything else is no list of them)."""
    return tuple(str(w) for w in v) if isinstance(v, list) else ()


#: GPU labels above this are no GPU of a node: a corrupt label such as gpu="4000000000" would
#: otherwise size the [node, gpu] grid (gigabytes of NaN) from one series.
MAX_GPU_INDEX = 1023


def _gpu_index(g: Any) -> int:
    """A GPU label as a local index, -1 when it is not one (ASCII digits up to MAX_GPU_INDEX:
    str.isdigit() also accepts "²", which int() refuses)."""
    if type(g) is not str or not (g.isascii() and g.isdigit()) or len(g) > 4:
        return -1
    gi = int(g)
    return gi if gi <= MAX_GPU_INDEX else -1


def _pairs(pts: Any) -> bool:
    """True for a list of [time, value] pairs, the shape of a sample in every answer."""
    return isinstance(pts, list) and all(type(p) is list and len(p) == 2 for p in pts)


# ---------------------------------------------------------------------------------------------
# Telemetry source
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricMap:
    """PromQL for each telemetry key (a metric name, or any expression), and the label names.

    Bare metric names get ``selector`` (e.g. ``cluster="lab"``) added. ``up`` selects the
    exporters' scrape health.
    """

    util: str = "DCGM_FI_DEV_GPU_UTIL"
    tensor: str = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"
    sm_clock: str = "DCGM_FI_DEV_SM_CLOCK"
    temp: str = "DCGM_FI_DEV_GPU_TEMP"
    power: str = "DCGM_FI_DEV_POWER_USAGE"
    fb_used: str = "DCGM_FI_DEV_FB_USED"
    xid: str = "DCGM_FI_DEV_XID_ERRORS"
    ecc_dbe: str = "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
    nvlink_crc: str = "rate(DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL[2m])"
    throttle: str = "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"
    #: Optional: a site's dcgm-exporter counters file may leave it out (FACTS 4.4). It shows a
    #: cap on GPUs that draw less than the cap. Empty string = do not ask.
    power_limit: str = "DCGM_FI_DEV_ENFORCED_POWER_LIMIT"
    up: str = 'up{job=~".*dcgm.*"}'
    host_labels: tuple[str, ...] = ("Hostname", "hostname")
    gpu_label: str = "gpu"
    model_labels: tuple[str, ...] = ("modelName", "model_name")
    rack_label: str = "rack"
    selector: str = ""
    #: Ask the server for only the labels the console reads (``max by (host, gpu)``, plus
    #: model, rack and instance on the first metric). Answers shrink about five-fold and
    #: hpc_job duplicates are collapsed on the server; see `query_expr`.
    reduce_labels: bool = False

    def expr(self, key: str) -> str:
        """The PromQL of a telemetry key (or ``up``), with the selector applied."""
        e = getattr(self, key)
        if self.selector and re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
            return f"{e}{{{self.selector}}}"
        return e

    def query_expr(self, key: str, first: bool = False) -> str:
        """The PromQL actually sent for a telemetry key: `expr`, wrapped in ``max by`` when
        ``reduce_labels`` is set (``first``: also keep the model, rack and instance labels).

        Why: a dcgm-exporter series carries a dozen labels (UUID, driver, PCI bus, device...)
        that the console never reads; at 32,768 GPUs they are most of an 11 MB answer per
        metric, and parsing them dominates a poll (benchmarks/bench_ingest.py).
        """
        e = self.expr(key)
        if not self.reduce_labels or key == "up":
            return e
        labels = [*self.host_labels, self.gpu_label]
        if first:
            labels += [*self.model_labels, *([self.rack_label] if self.rack_label else []),
                       "instance"]
        return f"max by ({', '.join(dict.fromkeys(labels))}) ({e})"

    def metric_keys(self) -> tuple[str, ...]:
        names = {f.name for f in fields(self)}
        return tuple(k for k in TELEMETRY_METRICS if k in names and getattr(self, k))


#: Keys whose absence is worth no warning (dcgm-exporter's default counters omit them: FACTS 1.1).
OPTIONAL_KEYS = frozenset({"ecc_dbe", "nvlink_crc", "throttle", "xid", "tensor", "power_limit"})
#: The largest value a telemetry key can take, where there is one (a ratio, a percentage).
_UPPER_BOUND = {"tensor": 1.0, "util": 100.0}


def plausible(key: str, values: np.ndarray) -> tuple[np.ndarray, int]:
    """``values`` with every sample no GPU can report (+-Inf, negative, a ratio above 1, a
    percentage above 100) made NaN, "no data"; and how many there were.

    Why at the source: a broken exporter or a proxy in between must never become a figure. A
    negative tensor activity would subtract petaflops from the cluster's total, +Inf would make
    it infinite, and both would reach the detectors as if measured. NaN is no data already.
    """
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (values < 0)
        upper = _UPPER_BOUND.get(key)
        if upper is not None:
            bad |= values > upper * (1 + 1e-6)
    n = int(np.count_nonzero(bad))
    if not n:
        return values, 0
    out = values.copy()
    out[bad] = np.nan
    return out, n


@lru_cache(maxsize=1 << 16)  # the same few thousand names every poll: split once
def _node_sort_key(name: str) -> tuple:
    # Odd places are the digit runs (the split's group); int() of the first 4,000 digits only,
    # as it refuses longer ones, and never of "²", which isdigit() accepts but \d does not match.
    return tuple(int(p[:4000]) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", name)))


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return host in ("localhost", "")


def promql_string(s: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cluster_delivered_pf_query(peak_tflops: Mapping[str, float], metrics: MetricMap = MetricMap(),
                               boost_clock_mhz: Mapping[str, float] | None = None) -> str:
    """PromQL for the cluster's delivered PF, summed on the server (for history backfill).

    ``peak_tflops`` maps a model-name fragment ("H800") to its dense peak in TFLOPS; the clock
    correction (SM clock / boost clock, at most 1) applies where ``boost_clock_mhz`` names the model.
    Series duplicated by ``hpc_job`` are collapsed with ``max by (host, gpu)`` first.
    """
    if not peak_tflops:
        raise SourceError(ErrorKind.CONFIG, "no GPU model peaks configured for the PF query")
    by = ", ".join((*metrics.host_labels, metrics.gpu_label))
    model = metrics.model_labels[0]
    parts = []
    for frag, peak in peak_tflops.items():
        sel = f"{model}=~{promql_string('.*' + re.escape(frag) + '.*')}"
        if metrics.selector:
            sel = f"{metrics.selector},{sel}"
        tensor = f"max by ({by}) ({metrics.tensor}{{{sel}}})"
        clock = (boost_clock_mhz or {}).get(frag)
        if clock:
            # capped at 1 like the state's own figure: a clock above the table's boost clock
            # must not report more than the peak
            ratio = f"clamp_max(max by ({by}) ({metrics.sm_clock}{{{sel}}}) / {clock:g}, 1)"
            term = f"sum({tensor} * on({by}) {ratio})"
        else:
            term = f"sum({tensor})"
        parts.append(f"(({term} * {peak:g} / 1000) or vector(0))")
    return " + ".join(parts)


class _NeedLabels(Exception):
    """An answer decoded for fewer labels names a host whose model and rack are not known yet."""


class _GpuIndex(dict):
    """GPU label -> local GPU index (-1: not a GPU index), parsed once per distinct label."""

    def __missing__(self, g: Any) -> int:
        gi = self[g] = _gpu_index(g)
        return gi


@dataclass
class _Series:
    codes: np.ndarray  # int64 host code (index into the fetch's host table)
    gpus: np.ndarray  # int64 local GPU index
    values: np.ndarray  # float64


def _up_series(result: list[Any], host_attrs: list[str],
               inst_attr: str) -> list[tuple[str | None, str, bool]]:
    """(host label, instance, up) of each `VectorSample` of an ``up`` answer: the first host
    label that is set (None when none is), as `PrometheusTelemetrySource._host_of` reads it."""
    ms = list(map(attrgetter("metric"), result))
    hosts: list[str] = [""] * len(ms)
    for a in host_attrs:
        hosts = [h or x for h, x in zip(hosts, map(attrgetter(a), ms))]
    ups = [v[1] >= 1 for v in map(attrgetter("value"), result)]
    return [(h or None, i, u) for h, i, u in zip(hosts, map(attrgetter(inst_attr), ms), ups)]


def _known_series(result: list[Any], hc: Mapping[str, int], host_attr: str,
                  gpu_attr: str) -> _Series | None:
    """The columns of `VectorSample`s whose hosts all have a code already (every answer of a
    poll after the first, as a rule), or None when one does not, or its first host label is
    empty, or a GPU label is no GPU index: the general path in `_collect_typed` decides those.

    Why a path of its own: it reads each series three times, by C-level maps straight into
    numpy (dotted attrgetters, no intermediate lists), where the general one makes about nine
    passes. At 32,768 series the objects of a fresh answer are far out of the CPU cache, and
    each pass over them costs about as much as a tenth of decoding it (bench_ingest.py)."""
    n = len(result)
    try:
        codes = np.fromiter(map(hc.__getitem__, map(attrgetter(f"metric.{host_attr}"), result)),
                            np.int64, n)
    except KeyError:
        return None
    gis = np.fromiter(map(_GpuIndex().__getitem__, map(attrgetter(f"metric.{gpu_attr}"), result)),
                      np.int64, n)
    if n and int(gis.min()) < 0:
        return None
    values = np.fromiter(map(itemgetter(1), map(attrgetter("value"), result)), np.float64, n)
    return _Series(codes, gis, values)


def _floats(raw: list[Any]) -> np.ndarray:
    """Sample values (strings such as "61", "NaN", "+Inf") to float64, all at once."""
    if not raw:
        return np.zeros(0)
    try:
        return np.array(raw, dtype=np.str_).astype(np.float64)
    except (TypeError, ValueError):
        return np.array([_num(x) for x in raw], dtype=np.float64)


class PrometheusTelemetrySource:
    """Telemetry from dcgm-exporter metrics in Prometheus (kind "telemetry").

    ``node_rack`` maps node names to racks when no rack label exists; ``instance_map`` maps
    scrape instances ("10.0.0.5:9400") to node names for sites whose instances are addresses.
    """

    kind = "telemetry"

    def __init__(self, client: PrometheusClient, *, name: str = "prometheus",
                 interval_s: float = 10.0, metrics: MetricMap | None = None,
                 node_rack: Mapping[str, str] | None = None,
                 instance_map: Mapping[str, str] | None = None,
                 min_gpus_per_node: int = 0, lookback: str = "1h",
                 peak_tflops: Mapping[str, float] | None = None,
                 boost_clock_mhz: Mapping[str, float] | None = None) -> None:
        self.client = client
        self.name = name
        self.interval_s = float(interval_s)
        self.metrics = metrics or MetricMap()
        self.node_rack = dict(node_rack or {})
        self.min_gpus_per_node = int(min_gpus_per_node)
        self.lookback = lookback
        self.peak_tflops = dict(peak_tflops or {})
        self.boost_clock_mhz = dict(boost_clock_mhz or {})
        self._instance_host: dict[str, str] = dict(instance_map or {})
        self._looked_back: frozenset[str] = frozenset()
        #: History backfill (off until `configure_backfill`); models seen, for its peaks.
        self.backfill: HistoryBackfill | None = None
        self._models_seen: set[str] = set()
        self._precision = "bf16_dense"
        self._peak_overrides: dict[str, float] = {}
        self._default_model = ""

    def __repr__(self) -> str:
        return f"PrometheusTelemetrySource({self.name!r}, {self.client!r})"

    def close(self) -> None:
        self.client.close()

    # -----------------------------------------------------------------------------------------

    def _host_of(self, labels: Mapping[str, str]) -> str | None:
        for hl in self.metrics.host_labels:
            v = labels.get(hl)
            if v and type(v) is str:
                return v
        return None

    def _collect(self, result: list[dict], models: dict[str, str], racks: dict[str, str],
                 host_codes: dict[str, int] | None = None,
                 asked: Sequence[str] | None = None) -> _Series:
        """One answer's per-GPU samples as (host code, gpu, value) columns.

        Runs once per series (32,768 per metric at 4,096 nodes), so it is one flat loop:
        no calls per series, GPU labels parsed once per distinct value, values converted by
        numpy at the end. ``host_codes`` is shared by the metrics of one poll.
        """
        codes: list[int] = []
        gpus: list[int] = []
        raw: list[Any] = []
        host_labels = self.metrics.host_labels
        gl = self.metrics.gpu_label
        rack_label = self.metrics.rack_label
        hc = {} if host_codes is None else host_codes
        if result and isinstance(result[0], VectorSample):
            return self._collect_typed(result, models, racks, hc, asked or self.labels_read())
        gpu_of: dict[Any, int] = {}
        bad = SourceError(ErrorKind.BAD_PAYLOAD, "unexpected series shape in a query answer "
                          "(expected {metric, value})")
        for s in result:
            if type(s) is not dict:
                raise bad
            m = s.get("metric")
            v = s.get("value")
            if type(m) is not dict or type(v) is not list or len(v) != 2:
                raise bad
            host = None
            for hl in host_labels:
                host = m.get(hl)
                if host:
                    break
            g = m.get(gl)
            if not host or g is None:
                continue
            if type(host) is not str or type(g) is not str:  # label values are strings
                raise bad
            gi = gpu_of.get(g)
            if gi is None:
                gi = gpu_of[g] = _gpu_index(g)
            if gi < 0:
                continue
            code = hc.get(host)
            if code is None:
                code = hc[host] = len(hc)
            codes.append(code)
            gpus.append(gi)
            raw.append(v[1])
            if host not in models:
                models[host] = next((m[k] for k in self.metrics.model_labels
                                     if m.get(k) and type(m[k]) is str), "")
                inst = m.get("instance")
                if inst and type(inst) is str:
                    self._instance_host[inst] = host
            if rack_label and host not in racks and m.get(rack_label) \
                    and type(m[rack_label]) is str:
                racks[host] = m[rack_label]
        return _Series(np.array(codes, dtype=np.int64), np.array(gpus, dtype=np.int64),
                       _floats(raw))

    def labels_read(self) -> tuple[str, ...]:
        """Every label `_collect` reads: the host, GPU, model and rack labels and ``instance``."""
        m = self.metrics
        return tuple(dict.fromkeys((*m.host_labels, m.gpu_label, *m.model_labels,
                                    *([m.rack_label] if m.rack_label else []), "instance")))

    def narrow_labels(self, racks: Mapping[str, str], host_codes: Mapping[str, int]) -> tuple[str, ...]:
        """The labels to decode from the answers after a poll's first: the host and GPU labels,
        and the rack label while some host has no rack yet (not with ``reduce_labels``: those
        answers carry only host and GPU).

        Why: model, rack and instance are read once per host, from the first answer naming
        it (normally the first metric's); decoding them again for every other metric costs
        about a third of the decoding of each answer at 32,768 GPUs (bench_ingest.py).
        """
        m = self.metrics
        labels = [*m.host_labels, m.gpu_label]
        if m.rack_label and not m.reduce_labels and not racks.keys() >= host_codes.keys():
            labels.append(m.rack_label)
        return tuple(dict.fromkeys(labels))

    def _collect_typed(self, result: list[Any], models: dict[str, str],
                       racks: dict[str, str], hc: dict[str, int],
                       asked: Sequence[str]) -> _Series:
        """`_collect` of `VectorSample`s (from `PrometheusClient.query_series`, decoded for the
        labels ``asked``): the same rules, column by column (C-level passes over the 32,768
        series), the per-host bookkeeping once per host (from its first series, as `_collect`
        does). Raises `_NeedLabels` (before changing anything) when a host appears that has
        no model yet and ``asked`` lacks the model labels an answer with all labels carries."""
        host_attrs = label_attrs(self.metrics.host_labels, asked)
        gpu_attr = label_attrs((self.metrics.gpu_label,), asked)[0]
        have = set(asked)
        inst_attr = label_attrs(("instance",), asked)[0] if "instance" in have else None
        model_attrs = label_attrs([x for x in self.metrics.model_labels if x in have], asked)
        rack_label = self.metrics.rack_label if self.metrics.rack_label in have else ""
        if host_attrs and hc and models.keys() >= hc.keys() and (
                not rack_label or racks.keys() >= hc.keys()):  # nothing left to learn per host
            known_only = _known_series(result, hc, host_attrs[0], gpu_attr)
            if known_only is not None:
                return known_only
        ms = list(map(attrgetter("metric"), result))
        hosts = list(map(attrgetter(host_attrs[0]), ms)) if host_attrs else [""] * len(ms)
        complete = all(hosts)  # (one pass over 32,768 strings: not repeated without need)
        for a in host_attrs[1:] if not complete else ():  # the first host label that is set
            hosts = [h or x for h, x in zip(hosts, map(attrgetter(a), ms))]
            complete = all(hosts)
        gpu_of = _GpuIndex()
        gis = list(map(gpu_of.__getitem__, map(attrgetter(gpu_attr), ms)))
        if min(gpu_of.values(), default=0) < 0 or not complete:
            keep = [i for i, (h, gi) in enumerate(zip(hosts, gis)) if h and gi >= 0]
            hosts = [hosts[i] for i in keep]
            gis = [gis[i] for i in keep]
            ms = [ms[i] for i in keep]
            result = [result[i] for i in keep]
        try:  # every host already coded (by an earlier metric of the poll): the common case
            codes = list(map(hc.__getitem__, hosts))
            known = True
        except KeyError:
            if not self.metrics.reduce_labels and not have.issuperset(self.labels_read()):
                raise _NeedLabels from None  # a new host: its model and rack labels are needed
            setdefault = hc.setdefault
            codes = [setdefault(h, len(hc)) for h in hosts]
            known = False
        values = list(map(itemgetter(1), map(attrgetter("value"), result)))
        if not (known and models.keys() >= hc.keys()):  # some host has no model entry yet
            # host -> index of its first series; only those are read
            first = dict(zip(reversed(hosts), range(len(hosts) - 1, -1, -1)))
            new = sorted((h for h in first if h not in models), key=first.__getitem__)
            # (in order of appearance: a shared instance label ends with the last host)
            heads = [ms[first[h]] for h in new]
            names = list(map(attrgetter(model_attrs[0]), heads)) if model_attrs else [""] * len(new)
            for a in model_attrs[1:]:  # the first model label that is set
                names = [x or y for x, y in zip(names, map(attrgetter(a), heads))]
            models.update(zip(new, names))
            if inst_attr is not None:
                self._instance_host.update((i, h) for h, i in
                                           zip(new, map(attrgetter(inst_attr), heads)) if i)
        if rack_label and not (known and racks.keys() >= hc.keys()):
            rvals = list(map(attrgetter(label_attrs((rack_label,), asked)[0]), ms))
            if any(rvals):  # the first rack given for each host
                for h, r in zip(hosts, rvals):
                    if r and h not in racks:
                        racks[h] = r
        return _Series(np.array(codes, dtype=np.int64), np.array(gis, dtype=np.int64),
                       np.array(values, dtype=np.float64))

    def _down_nodes(self, warnings: list[str], now: float | None) -> tuple[set[str], set[str]]:
        """(hosts of down targets, hosts of up targets) from the ``up`` query."""
        typed = getattr(self.client, "query_series", None)  # None: a client without it
        asked = (*self.metrics.host_labels, "instance")
        r = typed(self.metrics.expr("up"), now, asked) if typed else \
            self.client.query(self.metrics.expr("up"), now)
        warnings.extend(r.warnings)
        if r.result_type != "vector":
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"'up' query gave a {r.result_type}")
        down: set[str] = set()
        up: set[str] = set()
        unmapped: list[str] = []
        if r.result and isinstance(r.result[0], VectorSample):
            series = _up_series(r.result, label_attrs(self.metrics.host_labels, asked),
                                label_attrs(("instance",), asked)[0])
        else:
            series = self._up_series_plain(r.result)
        for host, inst, is_up in series:
            host = host or self._instance_host.get(inst)
            if host is None and inst:
                h = strip_port(inst)
                if not _is_address(h):
                    host = h
            if host is None:
                if not is_up:
                    unmapped.append(inst)
                continue
            (up if is_up else down).add(host)
        if unmapped:
            if frozenset(unmapped) != self._looked_back:
                self._looked_back = frozenset(unmapped)
                self._learn_instances(unmapped, now)
            for inst in unmapped:
                host = self._instance_host.get(inst)
                if host:
                    down.add(host)
                else:
                    warnings.append(f"exporter {inst} is down and its node is unknown "
                                    "(map it with instance_map or a host label on the target)")
        return down - up, up

    def _up_series_plain(self, result: list[Any]) -> list[tuple[str | None, str, bool]]:
        """(host label, instance, up) of each series of a fully decoded ``up`` answer."""
        out: list[tuple[str | None, str, bool]] = []
        for s in result:
            m = s.get("metric", {}) if isinstance(s, Mapping) else None
            if not isinstance(m, Mapping) or not _pairs([s.get("value", [0, "0"])]):
                raise SourceError(ErrorKind.BAD_PAYLOAD, "unexpected series shape in the 'up' "
                                  "answer (expected {metric, value})")
            inst = m.get("instance", "")
            inst = inst if type(inst) is str else ""
            out.append((self._host_of(m), inst, _num(s.get("value", [0, "0"])[1]) >= 1))
        return out

    def _learn_instances(self, instances: Iterable[str], now: float | None) -> None:
        """One look-back query to find which node a now-down exporter used to report."""
        by = ", ".join(("instance", *self.metrics.host_labels))
        regex = "|".join(re.escape(i) for i in instances)
        metric = self.metrics.expr("temp")
        if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*(\{.*\})?", metric):
            return
        sel = f'instance=~{promql_string(regex)}'
        inner = metric[:-1] + "," + sel + "}" if metric.endswith("}") else metric + "{" + sel + "}"
        try:
            r = self.client.query(f"count by ({by}) (last_over_time({inner}[{self.lookback}]))", now)
        except SourceError:
            return
        for s in r.result if r.result_type == "vector" else ():
            m = s.get("metric") if isinstance(s, Mapping) else None
            if not isinstance(m, Mapping):
                continue
            host = self._host_of(m)
            if host and m.get("instance") and type(m["instance"]) is str:
                self._instance_host[m["instance"]] = host

    def fetch(self, now: float | None = None) -> list[Update]:
        """One instant query per metric plus ``up``; raises `SourceError` on failure or when
        Prometheus has no GPU series and no exporter targets at all. With a backfill
        configured, a successful poll may also carry a `HistorySeed` (after the live update)."""
        with gc_paused():  # ~360,000 series per poll at 4,096 nodes: no GC passes meanwhile
            updates = self._fetch(now)
        if self.backfill is None:
            return updates
        return self._with_backfill(updates)

    def _fetch(self, now: float | None) -> list[Update]:
        t = _time.time() if now is None else now
        warnings: list[str] = []
        models: dict[str, str] = {}
        racks: dict[str, str] = {}
        host_codes: dict[str, int] = {}
        collected: dict[str, _Series] = {}
        for i, key in enumerate(self.metrics.metric_keys()):
            expr = self.metrics.query_expr(key, first=i == 0)
            typed = getattr(self.client, "query_series", None)  # None: a client without it
            asked = self.labels_read() if i == 0 else self.narrow_labels(racks, host_codes)
            r = typed(expr, now, asked) if typed else self.client.query(expr, now)
            if r.result_type != "vector":
                raise SourceError(ErrorKind.BAD_PAYLOAD, f"query for {key} ({expr}) gave a "
                                  f"{r.result_type}, expected a vector of per-GPU series")
            try:
                collected[key] = self._collect(r.result, models, racks, host_codes, asked)
            except _NeedLabels:  # a host the first answer did not name: ask for all labels
                asked = self.labels_read()
                r = typed(expr, now, asked) if typed else self.client.query(expr, now)
                if r.result_type != "vector":
                    raise SourceError(ErrorKind.BAD_PAYLOAD, f"query for {key} ({expr}) gave a "
                                      f"{r.result_type}, expected a vector of per-GPU series") from None
                collected[key] = self._collect(r.result, models, racks, host_codes, asked)
            warnings.extend(f"{key}: {w}" for w in r.warnings)
            self._models_seen.update(models.values())
            del r  # free the parsed answer before the next one arrives
            if not collected[key].values.size and key not in OPTIONAL_KEYS:
                warnings.append(f"no series for {expr}")
        down, _up = self._down_nodes(warnings, now)
        seen = set(models)
        if not seen and not down:
            raise SourceError(ErrorKind.QUERY, f"Prometheus at {self.client.http.host} returned no "
                              f"GPU series for {self.metrics.expr('util')} and no exporter targets "
                              "(check metric names, the host label and the selector)")
        names = tuple(sorted(seen | down, key=_node_sort_key))
        row = {n: i for i, n in enumerate(names)}
        # host code (order of first appearance) -> row of the sorted node list
        code_row = np.array([row[h] for h in host_codes], dtype=np.int64)
        max_gpu = max((int(s.gpus.max()) for s in collected.values() if s.gpus.size), default=-1)
        gpn = max(max_gpu + 1, self.min_gpus_per_node, 1)
        n = len(names)
        arrays: dict[str, np.ndarray] = {}
        for key in TELEMETRY_METRICS:
            s = collected.get(key)
            if s is None or not s.values.size:
                arrays[key] = np.full((n, gpn), np.nan, dtype=np.float32)
                continue
            flat_idx = code_row[s.codes] * gpn + s.gpus
            flat = np.full(n * gpn, np.nan)
            values, bad = plausible(key, s.values)  # before the max: a +Inf must not win it
            if bad:
                warnings.append(f"{key}: {bad} sample{'s' if bad != 1 else ''} infinite, "
                                "negative or out of range (shown as no data)")
            once = np.zeros(n * gpn, dtype=bool)
            once[flat_idx] = True  # (a linear pass: np.unique sorts, 32,768 entries per metric)
            if np.count_nonzero(once) == flat_idx.size:
                flat[flat_idx] = values  # one sample per GPU: the common case
            else:
                # hpc_job duplicates: keep the max per (host, gpu); fmax ignores NaN samples
                np.fmax.at(flat, flat_idx, values)
            arrays[key] = flat.reshape(n, gpn).astype(np.float32)
        node_up = np.ones(n, dtype=bool)
        for h in down:  # a down exporter's last samples may linger: never show them as live
            node_up[row[h]] = False
            for a in arrays.values():
                a[row[h], :] = np.nan
        rack_of = {**racks, **self.node_rack}
        node_rack = tuple(rack_of.get(h, "") for h in names) if rack_of else ()
        return [TelemetryUpdate(
            time=t, nodes=names, gpus_per_node=gpn, metrics=arrays, node_up=node_up,
            node_model=tuple(models.get(h, "") for h in names), node_rack=node_rack,
            warnings=tuple(dict.fromkeys(warnings)))]

    # -----------------------------------------------------------------------------------------

    def history(self, start: float, end: float, step: float, expr: str | None = None,
                timeout_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cluster delivered PF (or ``expr``) over time, aggregated on the server.

        Returns (t float64 epoch seconds, values float32), NaN where the server had no point.
        """
        q = expr or cluster_delivered_pf_query(self.peak_tflops, self.metrics, self.boost_clock_mhz)
        r = self.client.query_range(q, start, end, step, timeout_s=timeout_s)
        n = int(math.floor((end - start) / step)) + 1 if end >= start else 0
        t = start + np.arange(n, dtype=np.float64) * step
        v = np.full(n, np.nan, dtype=np.float32)
        if r.result_type != "matrix":
            raise SourceError(ErrorKind.BAD_PAYLOAD, f"range query gave a {r.result_type}")
        if r.result:
            first = r.result[0]
            pts = (first.get("values") or []) if isinstance(first, Mapping) else None
            if not _pairs(pts):
                raise SourceError(ErrorKind.BAD_PAYLOAD, f"unexpected answer from "
                                  f"{self.client.http.host}: a range series without a list of "
                                  "[time, value] pairs")
            if pts:
                ts = np.array([_num(p[0]) for p in pts], dtype=np.float64)
                with np.errstate(over="ignore", invalid="ignore"):
                    vs = np.array([_num(p[1]) for p in pts], dtype=np.float64).astype(np.float32)
                    pos = (ts - start) / step
                    # a time off the grid (NaN, Inf, far away) has no place: never cast it
                    on = np.isfinite(pos) & (pos >= -0.5) & (pos < n - 0.5)
                idx = np.rint(pos[on]).astype(np.int64)
                vs = vs[on]
                vs[~np.isfinite(vs)] = np.nan  # +-Inf is no figure: no data, as a gap
                v[idx] = vs
        return t, v

    def configure_backfill(self, hours: float, *, precision: str = "bf16_dense",
                           peaks: Mapping[str, float] | None = None, default_model: str = "",
                           step_s: float = 60.0, chunk_points: int = 360) -> None:
        """Read back ``hours`` of cluster history on the first successful poll (and after an
        outage of more than five minutes); ``hours`` <= 0 switches it off.

        ``precision``, ``peaks`` (model substring -> TFLOPS) and ``default_model`` (for GPUs
        without a model label) are the cluster's settings, so the figures match the state's.
        """
        from console.sources.prometheus_history import HistoryBackfill

        if hours <= 0:
            self.backfill = None
            return
        self._precision = precision
        self._peak_overrides = dict(peaks or {})
        self._default_model = default_model
        # A poll must end within the poller's deadline (twice the interval): the live queries,
        # then chunks for at most half an interval, each query given up by the server after a
        # quarter (a chunk is two queries).
        self.backfill = HistoryBackfill(
            hours, step_s=step_s, chunk_points=chunk_points, budget_s=0.5 * self.interval_s,
            gap_s=max(300.0, 3.0 * self.interval_s),
            timeout_s=max(1.0, min(self.client.http.timeout[1], 0.25 * self.interval_s)))

    def _history_queries(self) -> dict[str, str]:
        from console.peaks import boost_clock_mhz, peak_tflops
        from console.sources.prometheus_history import cluster_history_queries

        if not self._models_seen:
            return {}
        models = {}
        for name in sorted(self._models_seen):
            model = name or self._default_model
            models[name] = (peak_tflops(model, self._precision, self._peak_overrides),
                            boost_clock_mhz(model))
        return cluster_history_queries(models, self.metrics)

    def _with_backfill(self, updates: list[Update]) -> list[Update]:
        assert self.backfill is not None
        tel = updates[0]
        assert isinstance(tel, TelemetryUpdate)
        self.backfill.note_success(tel.time)
        timeout = self.backfill.timeout_s
        seed, warnings = self.backfill.poll(
            self._history_queries,
            lambda q, lo, hi, step: self.history(lo, hi, step, expr=q, timeout_s=timeout))
        out: list[Update] = list(updates)
        if warnings:
            out[0] = replace(tel, warnings=tuple(dict.fromkeys((*tel.warnings, *warnings))))
        if seed is not None:
            out.append(seed)
        return out
