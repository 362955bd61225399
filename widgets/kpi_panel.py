"""KPI tiles: the row of large numbers that answers "is everything fine?" from three metres.

Each tile has a caption, one big number with its unit, a line of context in words and, where
the history makes it cheap, a trend. A tile greys itself (dashed border, dim number) when the
data it sums is stale, and the panel header carries the age of the oldest data shown. Colour is
never alone: alert severities are spelled out next to their colour and mark.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from console.model import Frame, History, Severity
from widgets import theme as _theme
from widgets.formatting import NO_DATA, fmt_age, fmt_duration, fmt_int, fmt_pct, fmt_pf
from widgets.panel import Panel, PanelContext
from widgets.theme import PanelHeader, SEVERITY_WORDS, set_state_property

#: Which kind of data each tile depends on (for its stale look).
TILE_KINDS: dict[str, tuple[str, ...]] = {
    "delivered": ("telemetry",),
    "capacity": ("scheduler",),
    "gpus": ("telemetry", "scheduler"),
    "jobs": ("scheduler",),
    "alerts": ("alerts",),
}

SEVERITY_MARKS: dict[Severity, str] = {
    Severity.CRITICAL: "\u2716",  # heavy X
    Severity.WARNING: "\u25b2",  # triangle
    Severity.INFO: "\u25cf",  # dot
}


class KpiTile(QFrame):
    """One tile: caption, big value, context line, trend (GUI thread)."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("KpiTile")
        self.setProperty("stale", "false")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 8, 14, 8)
        lay.setSpacing(2)
        self.caption = QLabel(caption.upper(), self)
        self.caption.setObjectName("KpiCaption")
        self.value = QLabel("\u2014", self)
        self.value.setObjectName("KpiValue")
        self.sub = QLabel("", self)
        self.sub.setObjectName("KpiSub")
        self.sub.setTextFormat(Qt.TextFormat.RichText)
        self.trend = QLabel("", self)
        self.trend.setObjectName("KpiTrend")
        for w in (self.caption, self.value, self.sub, self.trend):
            lay.addWidget(w)
        # Context lines wrap rather than force the whole window wider on a small screen.
        self.sub.setWordWrap(True)
        self.trend.setWordWrap(True)
        lay.addStretch(1)

    def set_texts(self, value: str, sub: str, trend: str = "") -> None:
        # setText on an unchanged label still triggers a relayout: compare first.
        for label, text in ((self.value, value), (self.sub, sub), (self.trend, trend)):
            if label.text() != text:
                label.setText(text)

    def set_stale(self, stale: bool) -> None:
        set_state_property(self, "stale", "true" if stale else "false")

    @property
    def stale(self) -> bool:
        return self.property("stale") == "true"


def delivered_trend(history: History, installed_pf: float, window_s: float = 600.0) -> str:
    """ "▲ 0.50 PF in 10 min" from the delivered series; "" when there is too little history.

    Compares the newest finite value with the one about `window_s` earlier; changes under 0.5 %
    of installed are reported as steady so the arrow does not flicker on noise.
    """
    t = history.t
    y = history.series.get("delivered_pf")
    if y is None or len(t) < 2:
        return ""
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return ""
    tf, yf = t[ok], y[ok]
    t_new, y_new = float(tf[-1]), float(yf[-1])
    i = int(np.searchsorted(tf, t_new - window_s))
    i = min(i, len(tf) - 2)
    t_old, y_old = float(tf[i]), float(yf[i])
    span = t_new - t_old
    if span <= 0:
        return ""
    delta = y_new - y_old
    if abs(delta) < 0.005 * max(installed_pf, 1e-9):
        return f"\u25b6 steady over {fmt_duration(span)}"
    arrow, sign = ("\u25b2", "+") if delta > 0 else ("\u25bc", "\u2212")
    return f"{arrow} {sign}{fmt_pf(abs(delta))} in {fmt_duration(span)}"


def _known(x: float | int | None) -> bool:
    """A figure the frame knows: not None (no data, or past its stale limit) and not NaN."""
    return x is not None and math.isfinite(x)


def pf_or_no_data(x: float | None) -> str:
    """"7.25 PF", or "no data" for an unknown figure: a tile never shows unknown as 0 or a dash."""
    return fmt_pf(x) if _known(x) else NO_DATA


def int_or_no_data(x: int | None) -> str:
    return fmt_int(x) if _known(x) else NO_DATA


class KpiPanel(Panel):
    """The headline figures of `frame.kpis` as tiles (GUI thread)."""

    title = "Overview"
    redraw_ms = 500

    def __init__(self, context: PanelContext | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context or PanelContext()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 2, 4, 4)
        outer.setSpacing(2)
        self.header = PanelHeader(self.title, self)
        outer.addWidget(self.header)
        row = QHBoxLayout()
        row.setSpacing(8)
        outer.addLayout(row, 1)
        self.tiles: dict[str, KpiTile] = {
            "delivered": KpiTile("Delivered compute", self),
            "capacity": KpiTile("Allocated capacity", self),
            "gpus": KpiTile("GPUs healthy", self),
            "jobs": KpiTile("Jobs running", self),
            "alerts": KpiTile("Alerts firing", self),
        }
        for key, tile in self.tiles.items():
            row.addWidget(tile, 3 if key == "delivered" else 2)
        # Never taller than its content: the tiles are a strip, the space below is the map's.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

    def render(self, frame: Frame) -> None:
        k = frame.kpis
        th = _theme.current()
        # A figure whose data is unknown (never arrived, or past its stale limit) reads
        # "no data", and nothing is derived from it: no share, no difference, no trend.
        installed = k.installed_pf if _known(k.installed_pf) else None
        delivered_sub = f"of {pf_or_no_data(installed)} ({k.precision})"
        if _known(k.delivered_pf) and installed:
            delivered_sub += f" \u00b7 {fmt_pct(k.delivered_pf / installed)} of installed"
        self.tiles["delivered"].set_texts(
            pf_or_no_data(k.delivered_pf), delivered_sub,
            delivered_trend(frame.history, installed or 0.0) if _known(k.delivered_pf) else "",
        )
        out_of_service = (pf_or_no_data(installed - k.available_pf)
                          if installed is not None and _known(k.available_pf) else NO_DATA)
        self.tiles["capacity"].set_texts(
            pf_or_no_data(k.allocated_pf),
            f"of {pf_or_no_data(k.available_pf)} available",
            f"{pf_or_no_data(k.busy_pf)} busy \u00b7 {out_of_service} out of service",
        )
        if _known(k.gpus_healthy) and _known(k.gpus_total):
            unhealthy = k.gpus_total - k.gpus_healthy  # type: ignore[operator]
            health = f"{fmt_int(unhealthy)} not healthy" if unhealthy else "all healthy"
        else:
            health = "health: no data"
        self.tiles["gpus"].set_texts(
            int_or_no_data(k.gpus_healthy),
            f"of {int_or_no_data(k.gpus_total)} \u00b7 {int_or_no_data(k.gpus_allocated)} in use",
            health,
        )
        self.tiles["jobs"].set_texts(
            int_or_no_data(k.jobs_running),
            f"{int_or_no_data(k.jobs_pending)} pending",
            f"{int_or_no_data(k.gpus_pending)} GPUs waiting",
        )
        by_sev = k.alerts_by_severity
        parts = []
        for sev in Severity if by_sev is not None else ():
            word = SEVERITY_WORDS[sev]
            n = int(by_sev.get(word, 0))
            colour = th.severity[sev] if n else th.text_dim
            # non-breaking inside an entry: "● 0 info" wraps as a whole, never after its mark
            parts.append(f'<span style="color:{colour}">{SEVERITY_MARKS[sev]}&nbsp;{n:,}&nbsp;{word}</span>')
        self.tiles["alerts"].set_texts(int_or_no_data(k.alerts_firing),
                                       " &nbsp; ".join(parts) if parts else f"alerts: {NO_DATA}",
                                       f"{int_or_no_data(k.anomalies_open)} anomalies open")
        # The big alert number takes the colour of the worst severity present (and the words
        # beside it say which), so a red tile is never the only sign of a critical alert.
        worst = (None if by_sev is None else
                 next((s for s in Severity if int(by_sev.get(SEVERITY_WORDS[s], 0))), None))
        self.tiles["alerts"].value.setStyleSheet(
            "" if worst is None or worst == Severity.INFO else f"color: {th.severity[worst]};")

        for key, tile in self.tiles.items():
            tile.set_stale(any(frame.is_stale(kind) for kind in TILE_KINDS[key]))
        self._render_age(frame)

    def _render_age(self, frame: Frame) -> None:
        """Header age = the oldest of the data the tiles show, stale if any of it is."""
        kinds = ("telemetry", "scheduler", "alerts")
        stale_kinds = [kd for kd in kinds if frame.is_stale(kd)]
        ages = [frame.age_s(kd) for kd in kinds]
        known = [a for a in ages if a is not None]
        oldest = max(known) if known and len(known) == len(ages) else None
        text = fmt_age(oldest)
        if stale_kinds:
            text = f"STALE ({', '.join(stale_kinds)}) \u00b7 {fmt_age(max(known) if known else None)}"
        label = self.header.age_label
        if label.text() != text:
            label.setText(text)
        set_state_property(label, "stale", "true" if stale_kinds else "false")
        self.header.stale = bool(stale_kinds)
