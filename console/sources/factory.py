"""Build the sources of one configured cluster: the simulator, or the live endpoints.

The only place that turns settings + secrets into source objects, so the engine, the headless
commands and the tests all get identical sources for identical settings.
"""

from __future__ import annotations

from console.config import ClusterSettings
from console.sources.base import Source


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
    return sources


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
