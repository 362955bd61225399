"""``[presentation]`` in the config: the playlist of scenes, the milestones, the title.

A centre shows the console at public events and on the wall of its lobby: what is shown, for
how long, and against which goals is the centre's choice, not the code's. Defaults follow a
3,000 PF-class centre that opened with 1,300 PF. No Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Every scene the presentation window can draw, in the default playlist's order.
SCENE_NAMES: tuple[str, ...] = ("headline", "health", "delivered", "tenants", "jobs")


@dataclass(frozen=True)
class SceneSpec:
    name: str  # one of SCENE_NAMES
    duration_s: float


@dataclass(frozen=True)
class Milestone:
    label: str  # "at opening", "after expansion"
    pf: float


@dataclass(frozen=True)
class PresentationSettings:
    #: Shown on every scene; "" = the cluster's name.
    title: str = ""
    scenes: tuple[SceneSpec, ...] = (
        SceneSpec("headline", 20.0), SceneSpec("health", 15.0), SceneSpec("delivered", 15.0),
        SceneSpec("tenants", 12.0), SceneSpec("jobs", 12.0))
    milestones: tuple[Milestone, ...] = (Milestone("at opening", 1300.0),
                                         Milestone("after expansion", 3000.0))
    #: The cross-fade between two scenes; short enough not to be a show of its own.
    transition_ms: int = 800


def _err(msg: str) -> Exception:
    from console.config import ConfigError

    return ConfigError(msg)


def _table(raw: Any, path: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _err(f"{path}: expected a table")
    extra = set(raw) - keys
    if extra:
        raise _err(f"{path}: unknown key(s): {', '.join(sorted(extra))}")
    return raw


def _number(raw: dict[str, Any], key: str, path: str, default: float | None = None) -> float:
    v = raw.get(key, default)
    if v is None:
        raise _err(f"{path}.{key}: required")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise _err(f"{path}.{key}: a number above 0, got {v!r}")
    return float(v)


def parse_presentation(raw: Any, path: str = "presentation") -> PresentationSettings:
    """``[presentation]`` from TOML; raises ``console.config.ConfigError`` when wrong."""
    r = _table(raw, path, {"title", "scenes", "milestones", "transition_ms"})
    d = PresentationSettings()
    title = r.get("title", "")
    if not isinstance(title, str):
        raise _err(f"{path}.title: expected a string")
    scenes = d.scenes
    if "scenes" in r:
        if not isinstance(r["scenes"], list) or not r["scenes"]:
            raise _err(f"{path}.scenes: a non-empty list of {{name, duration_s}}")
        out = []
        for i, s in enumerate(r["scenes"]):
            where = f"{path}.scenes[{i}]"
            t = _table(s, where, {"name", "duration_s"})
            name = t.get("name")
            if name not in SCENE_NAMES:
                raise _err(f"{where}.name: one of {', '.join(SCENE_NAMES)}, got {name!r}")
            out.append(SceneSpec(str(name), _number(t, "duration_s", where, 15.0)))
        scenes = tuple(out)
    milestones = d.milestones
    if "milestones" in r:
        if not isinstance(r["milestones"], list):
            raise _err(f"{path}.milestones: a list of {{label, pf}}")
        ms = []
        for i, m in enumerate(r["milestones"]):
            where = f"{path}.milestones[{i}]"
            t = _table(m, where, {"label", "pf"})
            label = t.get("label")
            if not isinstance(label, str) or not label.strip():
                raise _err(f"{where}.label: required, a few words")
            ms.append(Milestone(label.strip(), _number(t, "pf", where)))
        milestones = tuple(ms)
    transition = r.get("transition_ms", d.transition_ms)
    if isinstance(transition, bool) or not isinstance(transition, int) or not 0 <= transition <= 5000:
        raise _err(f"{path}.transition_ms: 0 to 5000 (milliseconds)")
    return PresentationSettings(title=title.strip(), scenes=scenes, milestones=milestones,
                                transition_ms=transition)


#: The defaults, shared (frozen): what a config without ``[presentation]`` gets.
DEFAULT_PRESENTATION = PresentationSettings()
