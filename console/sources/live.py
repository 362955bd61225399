"""Live sources of one cluster from its settings: Prometheus, Alertmanager(s), slurmrestd.

Secrets are looked up per request through a callable, so `aisc-console login` takes effect
without a restart and no secret is held in a settings object or printed in a repr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from console.config import ClusterSettings, EndpointSettings
from console.sources.base import Source
from console.sources.http import Auth, HttpClient


def _secret_getter(resolver: object | None, cluster: str, endpoint: str,
                   entry: str | None) -> Callable[[], str | None]:
    def get() -> str | None:
        if resolver is None:
            return None
        s = resolver.lookup(cluster, endpoint, entry)  # type: ignore[attr-defined]
        return None if s is None else s.reveal()
    return get


def _http(cluster: ClusterSettings, endpoint: str, ep: EndpointSettings, url: str,
          secrets: object | None) -> HttpClient:
    from console.sources.factory import http_options

    auth = Auth(kind=ep.auth, user=ep.user or "",
                secret=_secret_getter(secrets, cluster.name, endpoint, ep.secret))
    return HttpClient(url, auth=auth, **http_options(endpoint, ep))


def build_live_sources(cluster: ClusterSettings, *, secrets: object | None = None) -> list[Source]:
    out: list[Source] = []
    if cluster.prometheus is not None:
        from console.hostlist import expand
        from console.sources.prometheus import MetricMap, PrometheusClient, PrometheusTelemetrySource

        p = cluster.prometheus
        # Only the labels the console reads: a fifth of the bytes, duplicates collapsed on the
        # server (MetricMap.query_expr)
        mm = MetricMap(reduce_labels=True)
        overrides = {k: v for k, v in p.metrics.items() if hasattr(mm, k)}
        mm = replace(mm, **overrides, gpu_label=p.gpu_label)
        if p.node_label != "auto":
            mm = replace(mm, host_labels=(p.node_label,))
        if p.rack_label:
            mm = replace(mm, rack_label=p.rack_label)
        if p.exporter_job:
            mm = replace(mm, up=f'up{{job="{p.exporter_job}"}}')
        racks = {n: rack for rack, expr in cluster.racks.items() for n in expand(expr)}
        out.append(PrometheusTelemetrySource(
            PrometheusClient(_http(cluster, "prometheus", p, p.url, secrets)),
            interval_s=p.interval_s, metrics=mm, node_rack=racks))
    if cluster.alertmanager is not None:
        from console.sources.alertmanager import (AlertmanagerClient, AlertmanagerSource,
                                                  MultiAlertmanagerSource)

        a = cluster.alertmanager
        clients = [AlertmanagerClient(_http(cluster, "alertmanager", a, u, secrets)) for u in a.urls]
        out.append(AlertmanagerSource(clients[0], interval_s=a.interval_s) if len(clients) == 1
                   else MultiAlertmanagerSource(clients, interval_s=a.interval_s))
    if cluster.slurm is not None:
        from console.sources.slurm import SlurmClient, SlurmSchedulerSource

        s = cluster.slurm
        out.append(SlurmSchedulerSource(
            SlurmClient(_http(cluster, "slurm", s, s.url, secrets), version=s.api_version),
            interval_s=s.interval_s))
    return out
