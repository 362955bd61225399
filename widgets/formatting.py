"""Number, age and unit formatting for the screen: pure functions, no Qt.

Kept apart from the panels so that every panel says "3 min ago" and "2,412 PF" the same way,
and so the wording can be tested without a display. Rules (UI.md): units always, thousands
separators, no more digits than the data supports, and "no data" spelled out, never shown as 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

NO_DATA = "no data"
DASH = "\u2014"


def _finite(x: float | None) -> bool:
    """True for a real, finite number (numpy scalars included)."""
    if x is None or isinstance(x, (str, bytes)):
        return False
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_int(n: float | int | None) -> str:
    """Whole number with thousands separators; None/NaN becomes a dash, not zero."""
    if not _finite(n):
        return DASH
    return f"{int(round(float(n))):,}"


def fmt_pf(pf: float | None) -> str:
    """Petaflops with as many digits as the figure supports: 2,412 PF, 37.5 PF, 0.42 PF."""
    if not _finite(pf):
        return DASH
    pf = float(pf)
    a = abs(pf)
    if a < 0.005:
        return "0 PF"
    if a >= 100:
        return f"{pf:,.0f} PF"
    if a >= 10:
        return f"{pf:,.1f} PF"
    return f"{pf:,.2f} PF"


def fmt_pct(fraction: float | None, digits: int = 0) -> str:
    """A 0..1 fraction as a percentage ("87 %")."""
    if not _finite(fraction):
        return DASH
    return f"{float(fraction) * 100:.{digits}f} %"


def fmt_duration(seconds: float | None) -> str:
    """A span in the largest units that keep it readable: 45 s, 3 min, 2 h 05 min, 3 d 4 h."""
    if not _finite(seconds):
        return DASH
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{int(s)} s"
    if s < 3600:
        return f"{int(s // 60)} min"
    if s < 86400:
        h, rem = divmod(int(s), 3600)
        return f"{h} h {rem // 60:02d} min"
    d, rem = divmod(int(s), 86400)
    return f"{d} d {rem // 3600} h"


def fmt_age(seconds: float | None) -> str:
    """How old data is, phrased for a label: "updated 3 s ago"; None means nothing arrived yet."""
    if seconds is None or not _finite(seconds):
        return "no data yet"
    if seconds < 1.0:
        return "updated just now"
    return f"updated {fmt_duration(seconds)} ago"


def fmt_latency(seconds: float | None) -> str:
    """Request latency: milliseconds below 10 s, seconds above."""
    if not _finite(seconds):
        return DASH
    s = float(seconds)
    if s < 10:
        return f"{s * 1000:,.0f} ms"
    return f"{s:,.1f} s"


#: Units and display rules for the per-GPU metrics shown on the health map and in tooltips.
_METRIC_FORMAT: Mapping[str, tuple[str, float, int]] = {
    # key: (unit, multiplier, decimals)
    "util": ("%", 1.0, 0),
    "tensor": ("%", 100.0, 0),
    "sm_clock": ("MHz", 1.0, 0),
    "temp": ("\u00b0C", 1.0, 0),
    "power": ("W", 1.0, 0),
    "fb_used": ("GiB", 1.0 / 1024.0, 1),
    "delivered_tflops": ("TFLOPS", 1.0, 0),
    "nvlink_crc": ("errors/s", 1.0, 1),
    "ecc_dbe": ("", 1.0, 0),
    "xid": ("", 1.0, 0),
}


def fmt_metric(key: str, value: float | None) -> str:
    """One per-GPU value with its unit ("87 %", "65 °C"); NaN reads "no data"."""
    if not _finite(value):
        return NO_DATA
    unit, mult, digits = _METRIC_FORMAT.get(key, ("", 1.0, 1))
    v = float(value) * mult
    text = f"{v:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    """ "1 job", "3 jobs" with the count formatted."""
    return f"{fmt_int(n)} {word if n == 1 else (plural_word or word + 's')}"


def utc_offset_label(offset_s: float) -> str:
    """ "UTC+08:00" for an offset in seconds east of UTC (what the time axis is drawn in)."""
    sign = "+" if offset_s >= 0 else "-"
    m = int(abs(offset_s)) // 60
    return f"UTC{sign}{m // 60:02d}:{m % 60:02d}"
