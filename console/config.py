"""Settings: typed, loaded from TOML over the shipped defaults, with a schema version.

Where the console looks: ``--config FILE``, else ``$AISC_CONSOLE_CONFIG``, else the user's config
folder (``$XDG_CONFIG_HOME/aisc-console/config.toml``), else the embedded simulated cluster. The
file never holds a secret: an endpoint names the keyring entry (or environment variable) its
token or password lives in (see console/secrets.py). Unknown keys are errors, reported with the
key's path, because a misspelt key silently ignored is an outage waiting to happen.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from console.hostlist import HostlistError, expand
from console.peaks import DEFAULT_MODEL, PRECISIONS
from console.sources.base import DEFAULT_MAX_ANSWER_MB, DEFAULT_TIMEOUT_S
from console.deadman import DeadmanSettings, parse_deadman
from console.journal_settings import JournalSettings, parse_journal
from console.notify import NotifySettings, parse_notify
from console.presentation_settings import PresentationSettings, parse_presentation

SCHEMA_VERSION = 1
AUTH_KINDS = ("none", "bearer", "basic", "slurm_jwt")
TENANT_KINDS = ("university", "research institute", "company", "other")


class ConfigError(ValueError):
    """A configuration problem, phrased for the person editing the file."""


@dataclass(frozen=True)
class EndpointSettings:
    url: str
    interval_s: float = 10.0
    #: per socket operation, and the deadline of one whole request
    timeout_s: float = DEFAULT_TIMEOUT_S["prometheus"]
    verify: bool | str = True  # True, False (explicit: shown as a standing warning), or a CA bundle path
    client_cert: str | None = None  # PEM path (cert + key, or cert with client_key) or "cert.pem:key.pem"
    auth: str = "none"
    user: str | None = None  # basic user, or the Slurm user name for JWT
    secret: str | None = None  # keyring entry name; default "<cluster>/<endpoint>"
    #: The largest answer accepted, in MB (10^6 bytes); a larger one is refused unread.
    max_answer_mb: float = DEFAULT_MAX_ANSWER_MB["prometheus"]
    ca_bundle: str | None = None  # PEM file of the CA(s) that signed the server's certificate
    client_key: str | None = None  # PEM private key of client_cert, when not in the same file


@dataclass(frozen=True)
class PrometheusSettings(EndpointSettings):
    node_label: str = "auto"  # "auto" accepts Hostname and hostname
    gpu_label: str = "gpu"
    rack_label: str | None = None
    job_label: str = "hpc_job"
    exporter_job: str | None = None  # the scrape job of dcgm-exporter, for `up`
    metrics: Mapping[str, str] = field(default_factory=dict)  # console key -> metric name
    #: Poll Prometheus' own alert states (/api/v1/alerts) for pending alerts, which
    #: Alertmanager never sees (and firing ones too when no Alertmanager is configured).
    alerts: bool = True
    #: Hours of cluster history (delivered and installed PF) read back from Prometheus at
    #: start-up and after an outage, so plots do not start empty; 0 = off. At most
    #: ``history_hours`` (larger values are cut to it).
    backfill_hours: float = 24.0


@dataclass(frozen=True)
class AlertmanagerSettings(EndpointSettings):
    urls: tuple[str, ...] = ()
    max_answer_mb: float = DEFAULT_MAX_ANSWER_MB["alertmanager"]


@dataclass(frozen=True)
class SlurmSettings(EndpointSettings):
    api_version: str | None = None  # None = detect
    max_answer_mb: float = DEFAULT_MAX_ANSWER_MB["slurm"]
    timeout_s: float = DEFAULT_TIMEOUT_S["slurm"]  # slurmrestd answers late at scale


@dataclass(frozen=True)
class TenantSettings:
    account: str
    display: str
    kind: str = "other"
    subsidy: float = 0.0
    price_per_gpu_hour: float = 0.0


@dataclass(frozen=True)
class SimSettings:
    seed: int = 7
    nodes: int = 384
    speed: float = 1.0
    faults: str = "default"
    interval_s: float = 2.0


@dataclass(frozen=True)
class SiteTopology:
    """Rows, PDUs and switches of one cluster, as the site names them (``[clusters.topology]``).

    They are failure domains above the node: a PDU that trips takes every node it feeds down at
    once, a leaf switch that fails makes its nodes unreachable, a row shares its cooling. Cause
    analysis ranks one hypothesis for such a group instead of one per node, so it must know the
    groups. Hostlists are expanded once here; a node may belong to several PDUs (A/B feeds).
    """

    rows: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # row -> rack names
    pdus: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # PDU -> node names it feeds
    switches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # switch -> node names behind it

    def __bool__(self) -> bool:
        return bool(self.rows or self.pdus or self.switches)

    def topology_fields(self, node_names: tuple[str, ...], rack_names: tuple[str, ...]) -> dict[str, Any]:
        """The optional `Topology` fields for this node and rack layout ({} when nothing is named).

        Groups none of whose nodes are known yet are left out (live sources discover nodes as
        they report; the topology is rebuilt then).
        """
        if not self:
            return {}
        out: dict[str, Any] = {}
        if self.rows:
            row_names = tuple(self.rows)
            row_of = {rack: i for i, row in enumerate(row_names) for rack in self.rows[row]}
            out["row_names"] = row_names
            out["rack_row"] = np.array([row_of.get(r, -1) for r in rack_names], np.int32)
        idx = {n: i for i, n in enumerate(node_names)}
        kinds: list[str] = []
        names: list[str] = []
        offsets = [0]
        members: list[int] = []
        for kind, table in (("pdu", self.pdus), ("switch", self.switches)):
            for name, nodes in table.items():
                m = sorted({idx[n] for n in nodes if n in idx})
                if not m:
                    continue
                kinds.append(kind)
                names.append(name)
                members.extend(m)
                offsets.append(len(members))
        out.update(group_kinds=tuple(kinds), group_names=tuple(names),
                   group_offsets=np.array(offsets, np.int32), group_nodes=np.array(members, np.int32))
        return out


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    precision: str = "bf16_dense"
    gpu_model: str = DEFAULT_MODEL
    peaks: Mapping[str, float] = field(default_factory=dict)  # model substring -> TFLOPS override
    racks: Mapping[str, str] = field(default_factory=dict)  # rack -> hostlist expression
    nominal_pf: float | None = None
    busy_threshold_pct: float = 5.0
    default_price_per_gpu_hour: float = 0.0
    tenants: tuple[TenantSettings, ...] = ()
    prometheus: PrometheusSettings | None = None
    alertmanager: AlertmanagerSettings | None = None
    slurm: SlurmSettings | None = None
    sim: SimSettings | None = None
    topology: SiteTopology = SiteTopology()
    #: No write request (silence, expiry, drain, resume, cancel) leaves the console for this
    #: cluster: a wall display or a shared screen must not be one click from changing the
    #: machine. Set per cluster, for every cluster by the top-level key, by ``--read-only``,
    #: and always in presentation mode.
    read_only: bool = False
    #: Accounting (console/accounting/): the currency of every amount, list prices per
    #: partition (a tenant's own price wins), and how often accounting is read.
    currency: str = "HKD"
    partition_prices: Mapping[str, float] = field(default_factory=dict)
    accounting_interval_s: float = 300.0

    @property
    def simulated(self) -> bool:
        return self.sim is not None


@dataclass(frozen=True)
class UiSettings:
    font_scale: float = 1.0
    theme: str = "dark"  # one of UI_THEMES
    colour_blind: bool = False  # the health map in a colour-blind-safe palette


#: The themes the GUI offers (widgets/theme.py defines their colours).
UI_THEMES = ("dark", "light", "high-contrast")


@dataclass(frozen=True)
class Settings:
    clusters: tuple[ClusterSettings, ...]
    ui: UiSettings = UiSettings()
    history_hours: float = 168.0
    source_path: str | None = None
    # Presentation scenes, desktop notifications, the dead-man's switch (their own modules).
    presentation: PresentationSettings = PresentationSettings()
    notifications: NotifySettings = NotifySettings()
    deadman: DeadmanSettings = DeadmanSettings()
    #: The local journal (console/journal_settings.py); None = none (the command line's
    #: default turns it on).
    journal: JournalSettings | None = None

    def cluster(self, name: str | None = None) -> ClusterSettings:
        if name is None:
            return self.clusters[0]
        for c in self.clusters:
            if c.name == name:
                return c
        raise ConfigError(f"no cluster named {name!r}; configured: "
                          + ", ".join(c.name for c in self.clusters))


def demo_settings(seed: int = 7, nodes: int = 384, speed: float = 1.0,
                  faults: str = "default") -> Settings:
    """The embedded default: one simulated 3,000 PF-class centre."""
    return Settings(clusters=(ClusterSettings(
        name="Simulated AISC", sim=SimSettings(seed=seed, nodes=nodes, speed=speed, faults=faults)),))


def read_only_settings(settings: Settings) -> Settings:
    """``settings`` with every cluster read-only (``--read-only`` and presentation mode)."""
    return replace(settings, clusters=tuple(replace(c, read_only=True) for c in settings.clusters))


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aisc-console" / "config.toml"


def find_config(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("AISC_CONSOLE_CONFIG")
    if env:
        return Path(env)
    p = default_config_path()
    return p if p.exists() else None


def load_settings(path: str | Path) -> Settings:
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start}); TOML files are UTF-8") from None
    except OSError as e:  # a directory, no permission
        raise ConfigError(f"cannot read config file {p}: {e.strerror or type(e).__name__}") from None
    return replace(parse_settings(raw), source_path=str(p))


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    r = _Reader(raw, "")
    version = r.get("schema_version", int, SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ConfigError(f"schema_version {version} is not supported (this console reads "
                          f"{SCHEMA_VERSION})")
    clusters = tuple(_cluster(_Reader(c, f"clusters[{i}]"))
                     for i, c in enumerate(r.get("clusters", list, [])))
    ui_raw = r.get("ui", dict, {})
    ui_r = _Reader(ui_raw, "ui")
    ui = UiSettings(font_scale=ui_r.positive("font_scale", float, 1.0),
                    theme=ui_r.get("theme", str, "dark"),
                    colour_blind=ui_r.get("colour_blind", bool, False))
    if ui.theme not in UI_THEMES:
        raise ConfigError(f"ui.theme: one of {', '.join(UI_THEMES)}, got {ui.theme!r}")
    ui_r.done()
    presentation = parse_presentation(r.get("presentation", dict, {}))
    notifications = parse_notify(r.get("notifications", dict, {}))
    deadman = parse_deadman(r.get("deadman", dict, {}))
    journal = parse_journal(r.get("journal", dict, None))
    history_hours = r.get("history_hours", float, 168.0)
    if history_hours < 0:
        raise ConfigError(f"history_hours: 0 or more, got {history_hours}")
    if r.get("read_only", bool, False):  # the top-level key makes every cluster read-only
        clusters = tuple(replace(c, read_only=True) for c in clusters)
    clusters = tuple(  # no use reading back more history than the console keeps
        replace(c, prometheus=replace(c.prometheus, backfill_hours=history_hours))
        if c.prometheus is not None and c.prometheus.backfill_hours > history_hours else c
        for c in clusters)
    r.done()
    if not clusters:
        raise ConfigError("no [[clusters]] configured")
    names = [c.name for c in clusters]
    if len(set(names)) != len(names):
        raise ConfigError("cluster names must be unique")
    return Settings(clusters=clusters, ui=ui, history_hours=history_hours,
                    presentation=presentation, notifications=notifications, deadman=deadman,
                    journal=journal)


class _Reader:
    """Typed access to one TOML table that remembers which keys were used."""

    def __init__(self, table: Any, path: str) -> None:
        if not isinstance(table, Mapping):
            raise ConfigError(f"{path or 'top level'}: expected a table")
        self.table = table
        self.path = path
        self.used: set[str] = set()

    def get(self, key: str, typ: type, default: Any = ...) -> Any:
        self.used.add(key)
        where = f"{self.path}.{key}" if self.path else key
        if key not in self.table:
            if default is ...:
                raise ConfigError(f"{where}: required")
            return default
        v = self.table[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v) if abs(v) < 2**1000 else math.inf  # float() overflows beyond
        if not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
            raise ConfigError(f"{where}: expected {typ.__name__}, got {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):  # TOML has nan and inf; no setting takes them
            raise ConfigError(f"{where}: expected a finite number, got {v}")
        return v

    def positive(self, key: str, typ: type, default: Any) -> Any:
        """`get` of a number that must be above zero (an interval, a speed, a count)."""
        v = self.get(key, typ, default)
        if not v > 0:
            where = f"{self.path}.{key}" if self.path else key
            raise ConfigError(f"{where}: must be above 0, got {v}")
        return v

    def done(self) -> None:
        extra = set(self.table) - self.used
        if extra:
            where = self.path or "top level"
            raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(extra))}")


def _endpoint_common(r: _Reader, endpoint: str, url_required: bool = True) -> dict[str, Any]:
    verify: Any = r.table.get("verify", True)
    r.used.add("verify")
    if not isinstance(verify, (bool, str)):
        raise ConfigError(f"{r.path}.verify: true, false or a CA bundle path")
    tls = _tls_settings(r, verify)
    auth = r.get("auth", str, "none")
    if auth not in AUTH_KINDS:
        raise ConfigError(f"{r.path}.auth: one of {', '.join(AUTH_KINDS)}")
    out = dict(
        url=r.get("url", str) if url_required else r.get("url", str, ""),
        interval_s=r.get("interval_s", float, 10.0),
        timeout_s=r.get("timeout_s", float, DEFAULT_TIMEOUT_S[endpoint]),
        verify=verify,
        auth=auth,
        user=r.get("user", str, None),
        secret=r.get("secret", str, None),
        max_answer_mb=r.get("max_answer_mb", float, DEFAULT_MAX_ANSWER_MB[endpoint]),
        **tls,
    )
    if not 0 < out["max_answer_mb"] < float("inf"):
        raise ConfigError(f"{r.path}.max_answer_mb: a positive number of MB (10^6 bytes)")
    if out["url"] and not str(out["url"]).startswith(("http://", "https://")):
        raise ConfigError(f"{r.path}.url: must start with http:// or https://")
    if out["interval_s"] <= 0 or out["timeout_s"] <= 0:
        raise ConfigError(f"{r.path}: interval_s and timeout_s must be positive")
    if auth == "slurm_jwt" and not out["user"]:
        raise ConfigError(f"{r.path}.user: the Slurm user name is required with auth = \"slurm_jwt\"")
    if "token" in r.table or "password" in r.table:
        raise ConfigError(f"{r.path}: secrets do not belong in the config file; store them with "
                          "`aisc-console login CLUSTER ENDPOINT` (or an AISC_SECRET_* variable)")
    return out


def _tls_settings(r: _Reader, verify: bool | str) -> dict[str, Any]:
    """ca_bundle, client_cert and client_key, checked against each other and ``verify``.

    Verification can only be switched off by saying so (``verify = false``); a CA bundle is
    the way to trust a private CA, so asking for both is a contradiction worth an error.
    """
    ca_bundle = r.get("ca_bundle", str, None)
    client_cert = r.get("client_cert", str, None)
    client_key = r.get("client_key", str, None)
    if ca_bundle is not None and verify is False:
        raise ConfigError(f"{r.path}: ca_bundle and verify = false contradict each other "
                          "(the CA bundle is what the server's certificate is verified with)")
    if ca_bundle is not None and isinstance(verify, str):
        raise ConfigError(f"{r.path}: give the CA bundle once, as ca_bundle "
                          "(verify = \"PATH\" is the older spelling of the same setting)")
    if client_key is not None and client_cert is None:
        raise ConfigError(f"{r.path}.client_key: needs client_cert (the certificate of that key)")
    return dict(ca_bundle=ca_bundle, client_cert=client_cert, client_key=client_key)


def _cluster(r: _Reader) -> ClusterSettings:
    name = r.get("name", str)
    precision = r.get("precision", str, "bf16_dense")
    if precision not in PRECISIONS:
        raise ConfigError(f"{r.path}.precision: one of {', '.join(PRECISIONS)}")
    tenants = []
    for i, t in enumerate(r.get("tenants", list, [])):
        tr = _Reader(t, f"{r.path}.tenants[{i}]")
        kind = tr.get("kind", str, "other")
        if kind not in TENANT_KINDS:
            raise ConfigError(f"{tr.path}.kind: one of {', '.join(TENANT_KINDS)}")
        account = tr.get("account", str)
        subsidy = tr.get("subsidy", float, 0.0)
        if not 0.0 <= subsidy <= 0.7:
            raise ConfigError(f"{tr.path}.subsidy: tenant {account!r} has a subsidy rate of "
                              f"{subsidy:g}; the scheme pays between 0 and 0.7 (70 %)")
        tenants.append(TenantSettings(account=account, display=tr.get("display", str, account),
                                      kind=kind, subsidy=subsidy,
                                      price_per_gpu_hour=tr.get("price_per_gpu_hour", float, 0.0)))
        tr.done()
    prom = alert = slurm = sim = None
    if "prometheus" in r.table:
        pr = _Reader(r.get("prometheus", dict), f"{r.path}.prometheus")
        common = _endpoint_common(pr, "prometheus")
        metrics = pr.get("metrics", dict, {})
        prom = PrometheusSettings(**common, node_label=pr.get("node_label", str, "auto"),
                                  gpu_label=pr.get("gpu_label", str, "gpu"),
                                  rack_label=pr.get("rack_label", str, None),
                                  job_label=pr.get("job_label", str, "hpc_job"),
                                  exporter_job=pr.get("exporter_job", str, None),
                                  metrics={str(k): str(v) for k, v in metrics.items()},
                                  alerts=pr.get("alerts", bool, True),
                                  backfill_hours=pr.get("backfill_hours", float, 24.0))
        if prom.backfill_hours < 0:
            raise ConfigError(f"{pr.path}.backfill_hours: 0 (off) or more")
        pr.done()
    if "alertmanager" in r.table:
        ar = _Reader(r.get("alertmanager", dict), f"{r.path}.alertmanager")
        urls = tuple(ar.get("urls", list, []))
        common = _endpoint_common(ar, "alertmanager", url_required=not urls)
        if not urls:
            urls = (common["url"],)
        common["url"] = urls[0]
        alert = AlertmanagerSettings(**common, urls=urls)
        ar.done()
    if "slurm" in r.table:
        sr = _Reader(r.get("slurm", dict), f"{r.path}.slurm")
        common = _endpoint_common(sr, "slurm")
        slurm = SlurmSettings(**common, api_version=sr.get("api_version", str, None))
        sr.done()
    if "sim" in r.table:
        sr = _Reader(r.get("sim", dict), f"{r.path}.sim")
        sim = SimSettings(seed=sr.get("seed", int, 7), nodes=sr.positive("nodes", int, 384),
                          speed=sr.positive("speed", float, 1.0),
                          faults=sr.get("faults", str, "default"),
                          interval_s=sr.positive("interval_s", float, 2.0))
        sr.done()
    peaks_r = _Reader(r.get("peaks", dict, {}), f"{r.path}.peaks")
    peaks = {str(k): float(peaks_r.positive(k, float, ...)) for k in peaks_r.table}
    racks = {str(k): str(v) for k, v in r.get("racks", dict, {}).items()}
    topology = SiteTopology()
    if "topology" in r.table:
        topology = _site_topology(_Reader(r.get("topology", dict), f"{r.path}.topology"))
    cluster = ClusterSettings(
        topology=topology,
        name=name, precision=precision, gpu_model=r.get("gpu_model", str, DEFAULT_MODEL),
        peaks=peaks, racks=racks, nominal_pf=r.get("nominal_pf", float, None),
        busy_threshold_pct=r.get("busy_threshold_pct", float, 5.0),
        default_price_per_gpu_hour=r.get("default_price_per_gpu_hour", float, 0.0),
        tenants=tuple(tenants), prometheus=prom, alertmanager=alert, slurm=slurm, sim=sim,
        read_only=r.get("read_only", bool, False),
        currency=r.get("currency", str, "HKD"),
        partition_prices={str(k): float(_price(f"{r.path}.partition_prices.{k}", v))
                          for k, v in r.get("partition_prices", dict, {}).items()},
        accounting_interval_s=r.positive("accounting_interval_s", float, 300.0))
    r.done()
    if not (prom or alert or slurm or sim):
        raise ConfigError(f"{r.path} ({name}): configure at least one of prometheus, "
                          "alertmanager, slurm or sim")
    return cluster


def _price(where: str, value: Any) -> float:
    """A list price per GPU-hour: a finite number, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise ConfigError(f"{where}: a price per GPU-hour, 0 or more, got {value!r}")
    return float(value)


def _names(where: str, value: Any) -> tuple[str, ...]:
    """A hostlist expression, or a list of them, expanded (order kept, duplicates dropped)."""
    if isinstance(value, str):
        exprs = [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        exprs = value
    else:
        raise ConfigError(f"{where}: expected a hostlist string or a list of strings, "
                          f"got {type(value).__name__}")
    out: dict[str, None] = {}
    for e in exprs:
        try:
            out.update(dict.fromkeys(expand(e)))
        except HostlistError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if not out:
        raise ConfigError(f"{where}: names nothing")
    return tuple(out)


def _site_topology(r: _Reader) -> SiteTopology:
    rows = {str(k): _names(f"{r.path}.rows.{k}", v) for k, v in r.get("rows", dict, {}).items()}
    seen: dict[str, str] = {}
    for row, racks in rows.items():
        for rack in racks:
            if rack in seen:
                raise ConfigError(f"{r.path}.rows.{row}: rack {rack} is already in row {seen[rack]}")
            seen[rack] = row
    pdus = {str(k): _names(f"{r.path}.pdus.{k}", v) for k, v in r.get("pdus", dict, {}).items()}
    switches = {str(k): _names(f"{r.path}.switches.{k}", v)
                for k, v in r.get("switches", dict, {}).items()}
    r.done()
    return SiteTopology(rows=rows, pdus=pdus, switches=switches)
