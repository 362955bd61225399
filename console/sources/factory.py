"""Build the sources of one configured cluster: the simulator, or the live endpoints.

The only place that turns settings + secrets into source objects, so the engine, the headless
commands and the tests all get identical sources for identical settings. It is also where an
endpoint's transport settings (deadline, answer size limit, TLS) become `HttpClient` options,
and where the standing warnings of a risky transport (a secret over plain http:// to another
machine, TLS verification off) are attached to the source that runs over it, so the operator
sees them with its status for as long as the configuration stays that way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from console.config import ClusterSettings, EndpointSettings
from console.model import Update
from console.sources.base import Source

#: What the operator calls each endpoint's server, for messages ("slurmrestd redirected to ...").
SERVER_NAMES = {"prometheus": "Prometheus", "alertmanager": "Alertmanager", "slurm": "slurmrestd"}


def http_options(endpoint: str, ep: EndpointSettings) -> dict[str, Any]:
    """The `HttpClient` keyword arguments of one configured endpoint, all but its auth.

    ``timeout_s`` bounds each socket operation and one whole request (connecting at most
    3.05 s of it: a SYN lost once is retried after 3 s).
    """
    return dict(timeout=(min(3.05, ep.timeout_s), ep.timeout_s),
                verify=ep.ca_bundle or ep.verify, cert=client_cert(ep),
                max_answer_bytes=int(ep.max_answer_mb * 1e6),
                name=SERVER_NAMES.get(endpoint, endpoint))


def client_cert(ep: EndpointSettings) -> str | tuple[str, str] | None:
    """The client certificate as requests takes it: one PEM path, or (certificate, key)."""
    if not ep.client_cert:
        return None
    if ep.client_key:
        return ep.client_cert, ep.client_key
    if ":" in ep.client_cert:  # the older "cert.pem:key.pem" spelling
        cert, key = ep.client_cert.split(":", 1)
        return cert, key
    return ep.client_cert


def _with_warnings(update: Update, warnings: tuple[str, ...]) -> Update:
    """``update`` with ``warnings`` first among its own (kept first: the status shows three)."""
    own = getattr(update, "warnings", None)
    if own is None or not dataclasses.is_dataclass(update):
        return update
    return dataclasses.replace(update, warnings=tuple(dict.fromkeys((*warnings, *own))))


def transport_warnings_of(source: Source) -> tuple[str, ...]:
    """The standing warnings of every HTTP client a live source polls through."""
    from console.sources.http import HttpClient

    clients = [getattr(source, "client", None), *getattr(source, "clients", ())]
    out: list[str] = []
    for c in clients:
        http = getattr(c, "http", None)
        if isinstance(http, HttpClient):
            out.extend(http.warnings)
    return tuple(dict.fromkeys(out))


def with_transport_warnings(sources: list[Source]) -> list[Source]:
    """The same sources; each whose transport has standing warnings now adds them to its updates.

    The source's ``fetch`` is wrapped on the instance rather than the source wrapped in another
    object, so that its type, its ``client`` (operator actions) and everything else stay its own.
    """
    for s in sources:
        warnings = transport_warnings_of(s)
        if warnings:
            s.fetch = _warned_fetch(s.fetch, warnings)  # type: ignore[method-assign]
            s.standing_warnings = warnings  # type: ignore[attr-defined]
    return sources


def _warned_fetch(fetch: Callable[[], list[Update]],
                  warnings: tuple[str, ...]) -> Callable[[], list[Update]]:
    def warned() -> list[Update]:
        return [_with_warnings(u, warnings) for u in fetch()]
    return warned


def build_sources(cluster: ClusterSettings, *, secrets: object | None = None) -> list[Source]:
    sources: list[Source] = []
    if cluster.sim is not None:
        from console.sim.config import SimConfig
        from console.sim.source import SimulatedSource

        sim = cluster.sim
        # One poll advances the simulation by interval x speed, so speed 1 is real time.
        config = SimConfig(seed=sim.seed, nodes=sim.nodes, speed=sim.speed, faults=sim.faults,
                           tick_s=sim.interval_s, gpu_model=cluster.gpu_model,
                           cluster_name=cluster.name)
        sources.append(SimulatedSource(config, interval_s=sim.interval_s))
    if cluster.prometheus or cluster.alertmanager or cluster.slurm:
        from console.sources.live import build_live_sources

        live = build_live_sources(cluster, secrets=secrets)
        configure_backfill(cluster, live)
        sources.extend(live)
    if cluster.prometheus is not None and cluster.prometheus.alerts:
        sources.append(build_prometheus_alerts_source(cluster, secrets=secrets))
    return with_transport_warnings(sources)


def build_prometheus_alerts_source(cluster: ClusterSettings, *,
                                   secrets: object | None = None) -> Source:
    """Prometheus' pending alerts, with firing ones too only when no Alertmanager is configured
    (otherwise Alertmanager lists them, with their silences, and they would appear twice).

    Its own HTTP client: sources poll from separate worker threads and a client is not
    thread-safe. Same URL, TLS, auth and keyring entry as the telemetry source.
    """
    from console.sources.live import _http
    from console.sources.prometheus import PrometheusClient
    from console.sources.prometheus_alerts import PrometheusAlertsSource

    p = cluster.prometheus
    if p is None:
        raise ValueError(f"cluster {cluster.name!r} has no Prometheus configured")
    return PrometheusAlertsSource(
        PrometheusClient(_http(cluster, "prometheus", p, p.url, secrets)),
        interval_s=p.interval_s, include_firing=cluster.alertmanager is None)


def configure_backfill(cluster: ClusterSettings, sources: list[Source]) -> None:
    """Give the Prometheus telemetry source the cluster's history backfill settings, with the
    precision, peaks and default model that make its figures match the state's own."""
    p = cluster.prometheus
    if p is None or p.backfill_hours <= 0:
        return
    from console.sources.prometheus import PrometheusTelemetrySource

    for s in sources:
        if isinstance(s, PrometheusTelemetrySource):
            s.configure_backfill(p.backfill_hours, precision=cluster.precision,
                                 peaks=cluster.peaks, default_model=cluster.gpu_model)
