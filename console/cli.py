"""The ``aisc-console`` command: the GUI, and the headless ``status``, ``snapshot`` and ``login``.

Qt is imported only by the GUI and snapshot paths, so ``status`` runs on a server with no display
and no Qt libraries loaded. Exit codes: 0 fine, 1 a source is failing (``status``), 2 bad usage
or configuration, 3 a secret could not be stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from console.config import (UI_THEMES, ConfigError, Settings, demo_settings, find_config,
                            load_settings, read_only_settings)
from console.model import Frame, SourceState

EXIT_OK, EXIT_SOURCE_FAILING, EXIT_USAGE, EXIT_SECRET = 0, 1, 2, 3
#: How long status and snapshot wait for every source's first answer, unless an endpoint's own
#: deadline is longer (see `ready_timeout`).
READY_TIMEOUT_S = 30.0


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("data")
    g.add_argument("--config", metavar="FILE", help="settings file (TOML); default: "
                   "$AISC_CONSOLE_CONFIG, then ~/.config/aisc-console/config.toml, "
                   "else the simulated cluster")
    g.add_argument("--cluster", metavar="NAME", help="which configured cluster to show")
    g.add_argument("--demo", action="store_true", help="use the simulated cluster even when a config exists")
    g.add_argument("--seed", type=int, help="simulator seed (default 7)")
    g.add_argument("--nodes", type=int, help="simulated nodes of 8 GPUs (default 384; up to 4096)")
    g.add_argument("--speed", type=float, help="simulator time warp, e.g. 60 = an hour a minute")
    g.add_argument("--faults", choices=("default", "none", "all"), help="simulated faults")
    g.add_argument("--engine", choices=("auto", "thread", "process"),
                   help="where the engine runs: a worker process (default for live endpoints and "
                        "over 1,024 simulated nodes) or a thread")
    g.add_argument("--read-only", action="store_true",
                   help="send no changes (silences, drains, cancellations): every action is "
                        "refused; always on in presentation mode")
    g.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    p = argparse.ArgumentParser(prog="aisc-console", parents=[common],
                                description="Operations console for AI supercomputing centres.")
    p.add_argument("--font-scale", type=float, default=None, help="text size factor for wall screens")
    p.add_argument("--fullscreen", action="store_true", help="start full screen")
    p.add_argument("--presentation", action="store_true",
                   help="public-safe full-screen presentation mode (no tenant or user names)")
    sub = p.add_subparsers(dest="command")
    st = sub.add_parser("status", parents=[common], help="print the headline figures and exit")
    st.add_argument("--json", action="store_true", help="machine-readable output (a stable contract)")
    st.add_argument("--timeout", type=float, default=None,
                    help=f"seconds to wait for every source (default {READY_TIMEOUT_S:g}, or the "
                         "longest endpoint timeout_s plus 5 when that is longer)")
    st.add_argument("--after", type=float, default=0.0, metavar="SECONDS",
                    help="keep polling this long after every source has answered once, then "
                         "print the steady state (the first answer alone can mislead a check)")
    st.add_argument("--at", metavar="TIME", default=None,
                    help="the figures as they were at TIME, from the journal (ISO 8601 or -2h)")
    tl = sub.add_parser("timeline", parents=[common], help="print what happened, from the journal")
    tl.add_argument("--since", required=True, metavar="TIME", help="ISO 8601, or relative: -2h")
    tl.add_argument("--until", default=None, metavar="TIME", help="default: now")
    tl.add_argument("--format", choices=("text", "json", "csv"), default="text")
    sn = sub.add_parser("snapshot", parents=[common], help="render the dashboard to a PNG, off-screen")
    sn.add_argument("--out", metavar="FILE.png", help="the PNG to write (required unless --scene list)")
    sn.add_argument("--after", type=float, default=0.0, metavar="SECONDS",
                    help="let the console run this long before rendering")
    sn.add_argument("--size", default="1920x1080", metavar="WxH")
    sn.add_argument("--font-scale", type=float, default=None)
    # SUPPRESS: given after "snapshot" it counts, and "--presentation snapshot" is not undone.
    sn.add_argument("--presentation", action="store_true", default=argparse.SUPPRESS,
                    help="render the public-safe presentation mode")
    sn.add_argument("--scene", metavar="NAME", default=None,
                    help="the presentation scene to render (implies --presentation); "
                         "\"list\" prints the scene names")
    sn.add_argument("--timeout", type=float, default=None,
                    help="seconds to wait for every source (as for status)")
    sn.add_argument("--layout", metavar="NAME", default=None,
                    help='the dock layout: "NOC wall" (default), triage or capacity')
    sn.add_argument("--theme", default=None, choices=UI_THEMES,
                    help="the colour theme (default: the config's [ui] theme, else dark)")
    sn.add_argument("--colour-blind", action="store_true", default=None,
                    help="the health map in colour-blind-safe colours")
    lg = sub.add_parser("login", help="store an endpoint's token or password in the OS keyring")
    lg.add_argument("cluster")
    lg.add_argument("endpoint", choices=("prometheus", "alertmanager", "slurm"))
    lg.add_argument("--stdin", action="store_true", help="read the secret from standard input")
    from console.accounting import commands as accounting_commands  # statement, statements

    accounting_commands.add_parsers(sub, common)
    return p


def resolve_settings(args: argparse.Namespace) -> Settings:
    """The settings a command runs with: a config file, or the simulated cluster."""
    sim_opts = {k: getattr(args, k) for k in ("seed", "nodes", "speed", "faults") if hasattr(args, k)}
    path = None if getattr(args, "demo", False) else find_config(getattr(args, "config", None))
    if path is None:
        nodes = sim_opts.get("nodes", 384)
        if not 1 <= nodes <= 4096:
            raise ConfigError("--nodes must be between 1 and 4096")
        if sim_opts.get("speed", 1.0) <= 0:
            raise ConfigError("--speed must be positive")
        return demo_settings(**sim_opts)
    settings = load_settings(path)
    if sim_opts:  # simulator options apply to simulated clusters of a config too
        clusters = tuple(
            replace(c, sim=replace(c.sim, **sim_opts)) if c.sim is not None else c
            for c in settings.clusters)
        settings = replace(settings, clusters=clusters)
    return settings


def status_dict(frame: Frame) -> dict[str, Any]:
    """The documented JSON contract of ``aisc-console status --json`` (see README)."""
    k = frame.kpis

    def num(x: float | None) -> float | None:
        """Unknown (None, NaN) stays null: a script must never read it as 0."""
        return None if x is None or not math.isfinite(x) else round(float(x), 3)

    def counts(x: Any) -> dict[str, int] | None:
        return None if x is None else dict(x)

    return {
        "schema": 1,
        "cluster": frame.cluster,
        "simulated": frame.simulated,
        "time": round(frame.time, 3),
        "installed_pf": num(k.installed_pf),
        "available_pf": num(k.available_pf),
        "allocated_pf": num(k.allocated_pf),
        "busy_pf": num(k.busy_pf),
        "delivered_pf": num(k.delivered_pf),
        "precision": k.precision,
        "gpus_total": k.gpus_total,
        "gpus_available": k.gpus_available,
        "gpus_healthy": k.gpus_healthy,
        "gpus_allocated": k.gpus_allocated,
        "gpus_busy": k.gpus_busy,
        "gpus_by_health": counts(k.gpus_by_health),
        "nodes_total": k.nodes_total,
        "nodes_by_state": counts(k.nodes_by_state),
        "jobs_running": k.jobs_running,
        "jobs_pending": k.jobs_pending,
        "gpus_pending": k.gpus_pending,
        "alerts_firing": k.alerts_firing,
        "alerts_by_severity": counts(k.alerts_by_severity),
        "anomalies_open": k.anomalies_open,
        "sources": [
            {"name": s.name, "kind": s.kind, "state": s.state.value,
             "age_s": None if s.age_s(frame.time) is None else round(s.age_s(frame.time), 1),
             "latency_s": None if s.latency_s is None else round(s.latency_s, 3),
             "error": s.error, "error_kind": s.error_kind, "detail": s.detail}
            for s in frame.sources
        ],
    }


def failing_sources(frame: Frame) -> list[str]:
    bad = {SourceState.FAILING, SourceState.STALE, SourceState.WAITING}
    return [s.name for s in frame.sources if s.state in bad]


NO_DATA = "no data"


def _n(x: float | int | None, unit: str = "") -> str:
    """A figure with thousands separators and its unit, or "no data" (never 0) when unknown."""
    if x is None or not math.isfinite(x):
        return NO_DATA
    return f"{x:,.0f}{unit}"


def format_status(frame: Frame) -> str:
    k = frame.kpis
    delivered, installed = k.delivered_pf, k.installed_pf
    share = (f", {100.0 * delivered / installed:.0f} %"
             if delivered is not None and installed and math.isfinite(delivered) else "")
    sev = k.alerts_by_severity
    alerts = (f"{NO_DATA} on alerts" if sev is None else
              f"{sev.get('critical', 0)} critical, {sev.get('warning', 0)} warning, "
              f"{sev.get('info', 0)} info firing")
    lines = [
        f"{frame.cluster}" + ("  [SIMULATED CLUSTER]" if frame.simulated else ""),
        f"  Delivered   {_n(k.delivered_pf, ' PF')} of {_n(k.installed_pf, ' PF')} installed "
        f"({k.precision}){share}" if k.installed_pf is not None else
        f"  Delivered   {_n(k.delivered_pf, ' PF')}; installed: {NO_DATA} ({k.precision})",
        f"  Capacity    available {_n(k.available_pf, ' PF')}, allocated {_n(k.allocated_pf, ' PF')}, "
        f"busy {_n(k.busy_pf, ' PF')}",
        f"  GPUs        {_n(k.gpus_healthy)} healthy, {_n(k.gpus_allocated)} in use, "
        f"{_n(k.gpus_total)} total",
        f"  Jobs        {_n(k.jobs_running)} running, {_n(k.jobs_pending)} pending "
        f"({_n(k.gpus_pending)} GPUs waiting)",
        f"  Alerts      {alerts}; {_n(k.anomalies_open)} anomalies open",
        "  Sources",
    ]
    for s in frame.sources:
        age = s.age_s(frame.time)
        age_txt = "no data yet" if age is None else f"data {age:.0f} s old"
        err = f": {s.error}" if s.error else ""
        lines.append(f"    {s.name:<14} {s.state.value:<8} {age_txt}{err}")
    return "\n".join(lines)


def _engine(settings: Settings, args: argparse.Namespace):
    """The engine in a worker process for live endpoints and big simulations (parsing there
    cannot stall the GUI through the GIL), in-process otherwise; ``--engine`` overrides."""
    from console.engine_process import make_engine
    from console.secrets import default_resolver

    return make_engine(settings, cluster=getattr(args, "cluster", None), secrets=default_resolver(),
                       mode=getattr(args, "engine", "auto"))


def _wants_fleet(settings: Settings, args: argparse.Namespace) -> bool:
    """Several configured clusters and no ``--cluster``: every cluster, side by side."""
    return len(settings.clusters) > 1 and getattr(args, "cluster", None) is None


def _fleet(settings: Settings, args: argparse.Namespace):
    from console.fleet import Fleet
    from console.secrets import default_resolver

    return Fleet(settings, secrets=default_resolver(), mode=getattr(args, "engine", "auto"))


def no_frame_dict(name: str, simulated: bool, timeout: float) -> dict[str, Any]:
    """The JSON object of a cluster whose engine produced no frame at all (it counts as failing)."""
    return {"schema": 1, "cluster": name, "simulated": simulated,
            "error": f"no data within {timeout:.0f} s", "sources": []}


def _settle(engine: Any, frame: Frame, after_s: float) -> Frame:
    """Keep the engine polling for ``after_s`` seconds and return its newest frame, so a
    script sees the steady state (a source that fails from its second poll on, figures that
    need two scrapes) rather than the first answer."""
    end = time.monotonic() + max(0.0, after_s)
    while (left := end - time.monotonic()) > 0:
        try:
            frame = engine.wait_frames(1, timeout=left)
        except TimeoutError:
            break  # no new frame in the time left: the newest one we have is the answer
    return engine.latest_frame() or frame


def ready_timeout(settings: Settings, given: float | None) -> float:
    """Seconds to wait for every source's first answer: ``given`` (``--timeout``), else
    `READY_TIMEOUT_S`, or an endpoint's deadline plus 5 s when that is longer.

    Why: slurmrestd builds its whole answer before sending it (seconds at 10,000 jobs), so its
    default deadline is 60 s; giving up on it at 30 s would print "never answered" for a poll
    that is still within its deadline and will succeed."""
    if given is not None:
        return given
    deadlines = [ep.timeout_s for c in settings.clusters
                 for ep in (c.prometheus, c.alertmanager, c.slurm) if ep is not None]
    return max([READY_TIMEOUT_S, *(d + 5.0 for d in deadlines)])


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    args.timeout = ready_timeout(settings, args.timeout)
    if args.after < 0 or not math.isfinite(args.after):
        raise ConfigError("--after must be a number of seconds, 0 or more")
    if _wants_fleet(settings, args):
        return _status_fleet(args, settings)
    engine = _engine(settings, args)
    with engine:
        frame = engine.wait_ready(timeout=args.timeout)
        frame = _settle(engine, frame, args.after)
    if args.json:
        print(json.dumps(status_dict(frame), indent=2))
    else:
        print(format_status(frame))
    return EXIT_SOURCE_FAILING if failing_sources(frame) else EXIT_OK


def _status_fleet(args: argparse.Namespace, settings: Settings) -> int:
    """Every cluster: one block each (human) or ``{"schema": 1, "clusters": [...]}`` (JSON);
    exit 1 when any source of any cluster fails, or a cluster produced no data at all."""
    fleet = _fleet(settings, args)
    with fleet:
        frames = fleet.wait_ready(timeout=args.timeout)
        if args.after > 0:
            time.sleep(args.after)  # each engine polls on its own; then take the newest frames
            frames = {n: fleet.latest(n) or f for n, f in frames.items()}
    failing = False
    objects: list[dict[str, Any]] = []
    blocks: list[str] = []
    for c in settings.clusters:
        frame = frames.get(c.name)
        if frame is None:
            failing = True
            objects.append(no_frame_dict(c.name, c.simulated, args.timeout))
            blocks.append(f"{c.name}" + ("  [SIMULATED CLUSTER]" if c.simulated else "")
                          + f"\n  No data within {args.timeout:.0f} s")
            continue
        failing = failing or bool(failing_sources(frame))
        objects.append(status_dict(frame))
        blocks.append(format_status(frame))
    if args.json:
        print(json.dumps({"schema": 1, "clusters": objects}, indent=2))
    else:
        print("\n\n".join(blocks))
    return EXIT_SOURCE_FAILING if failing else EXIT_OK


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must look like 1920x1080, not {text!r}") from None
    if not (320 <= w <= 7680 and 240 <= h <= 4320):
        raise ConfigError("--size must be between 320x240 and 7680x4320")
    return w, h


def cmd_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    from console.presentation_settings import SCENE_NAMES

    if args.scene == "list":
        print("\n".join(SCENE_NAMES))
        return EXIT_OK
    if args.scene is not None and args.scene not in SCENE_NAMES:
        raise ConfigError(f"--scene: one of {', '.join(SCENE_NAMES)} (or list), not {args.scene!r}")
    if not args.out:
        raise ConfigError("snapshot needs --out FILE.png")
    args.timeout = ready_timeout(settings, args.timeout)
    if args.layout is not None:
        from widgets.layouts import layout_named

        try:
            layout_named(args.layout)
        except ValueError as exc:
            raise ConfigError(f"--layout: {exc}") from None
    size = _parse_size(args.size)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    engine = _engine(settings, args)
    with engine:
        frame = engine.wait_ready(timeout=args.timeout)
        end = time.monotonic() + max(0.0, args.after)
        while time.monotonic() < end:
            frame = engine.wait_frames(1, timeout=max(1.0, end - time.monotonic() + 5))
    if args.scene is not None or args.presentation:  # the presentation window's scenes
        from widgets.snapshot import render_presentation

        out = render_presentation(frame, args.out, scene=args.scene or settings.presentation.scenes[0].name,
                                  size=size, settings=settings.presentation, deadman=settings.deadman)
        print(f"wrote {out} ({size[0]}x{size[1]})")
        return EXIT_OK
    from widgets.snapshot import render_snapshot

    from widgets.app import screen_font_scale

    # As the console would look full screen on a display of that size: text grows with it.
    font_scale = screen_font_scale(size[1], args.font_scale or settings.ui.font_scale,
                                   presentation=args.presentation)
    _use_theme(settings, args)
    out = render_snapshot(frame, args.out, size=size, font_scale=font_scale,
                          presentation=args.presentation, deadman=settings.deadman,
                          layout=args.layout)
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return EXIT_OK


def cmd_login(args: argparse.Namespace) -> int:
    from console.secrets import KeyringSecretStore, SecretError, entry_name, env_var_name

    secret = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass(
        f"Token or password for {args.cluster}/{args.endpoint}: ")
    if not secret:
        print("nothing stored: the secret was empty", file=sys.stderr)
        return EXIT_USAGE
    try:
        KeyringSecretStore().set(entry_name(args.cluster, args.endpoint), secret)
    except SecretError as e:
        print(f"could not store the secret: {e}.\nOn a headless server, set "
              f"{env_var_name(args.cluster, args.endpoint)} in the console's environment instead.",
              file=sys.stderr)
        return EXIT_SECRET
    print(f"stored in the OS keyring as {entry_name(args.cluster, args.endpoint)!r} "
          f"(service 'aisc-console')")
    return EXIT_OK


def _use_theme(settings: Settings, args: argparse.Namespace) -> None:
    """The configured theme (``--theme``/``--colour-blind`` over ``[ui]``), for the window."""
    from widgets import theme

    name = getattr(args, "theme", None) or settings.ui.theme
    blind = getattr(args, "colour_blind", None)
    theme.set_current(theme.theme_named(name, colour_blind=settings.ui.colour_blind if blind is None
                                        else bool(blind)))


def _write_statement_pdf(statement: Any, path: Any) -> int:
    """PDF statements are drawn with Qt's own PDF writer: loaded only when a PDF is asked for."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from widgets.statement_pdf import write_statement_pdf

    return write_statement_pdf(statement, path)


def cmd_gui(args: argparse.Namespace, settings: Settings) -> int:
    from widgets.app import run_gui

    _use_theme(settings, args)

    engine = _fleet(settings, args) if _wants_fleet(settings, args) else _engine(settings, args)
    return run_gui(engine, font_scale=args.font_scale or settings.ui.font_scale,
                   fullscreen=args.fullscreen or args.presentation, presentation=args.presentation,
                   settings_file=settings)


def main(argv: Sequence[str] | None = None) -> int:
    from console.journal_cli import join_relative_times

    args = build_parser().parse_args(join_relative_times(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "login":
        return cmd_login(args)
    try:
        settings = resolve_settings(args)
        if getattr(args, "read_only", False) or getattr(args, "presentation", False):
            settings = read_only_settings(settings)
        from console import journal_cli  # the local journal: on unless the config says no

        settings = journal_cli.with_journal(settings)
        if args.command == "timeline":
            return journal_cli.cmd_timeline(args, settings)
        if args.command == "status" and args.at is not None:
            return journal_cli.cmd_status_at(args, settings)
        if args.command == "status":
            return cmd_status(args, settings)
        if args.command == "snapshot":
            return cmd_snapshot(args, settings)
        if args.command == "statement":
            from console.accounting import commands as accounting_commands

            return accounting_commands.cmd_statement(args, settings, _write_statement_pdf)
        if args.command == "statements":
            from console.accounting import commands as accounting_commands

            return accounting_commands.cmd_statements(args, settings)
        return cmd_gui(args, settings)
    except ConfigError as e:
        print(f"aisc-console: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `aisc-console status | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except RuntimeError as e:  # the engine's worker process died: say so in words, exit failing
        from console.engine_process import EngineProcessError

        if not isinstance(e, EngineProcessError):
            raise
        print(f"aisc-console: console engine down: {e}", file=sys.stderr)
        return EXIT_SOURCE_FAILING


if __name__ == "__main__":
    sys.exit(main())
