"""Alertmanager matcher semantics, shared by the simulator and by local silence previews.

Alertmanager treats a label that is absent as the empty string, and anchors regular
expressions at both ends (``^(?:re)$``); a console that previews "which alerts would this
silence hide" must agree with the server exactly, so the rule lives in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

from console.model import Matcher


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """Compile once per pattern; an invalid pattern matches nothing (Alertmanager rejects it)."""
    try:
        return re.compile(f"^(?:{pattern})$")
    except re.error:
        return None


def matcher_matches(m: Matcher, labels: Mapping[str, str]) -> bool:
    """One matcher against one label set (missing label == empty value, as in Alertmanager)."""
    value = labels.get(m.name, "")
    if m.is_regex:
        rx = _compiled(m.value)
        hit = rx is not None and rx.match(value) is not None
    else:
        hit = value == m.value
    return hit if m.is_equal else not hit


def matches(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches; an empty matcher list matches nothing.

    Alertmanager refuses a silence without matchers, so treating it as "matches nothing"
    keeps a malformed local silence from hiding every alert on the screen.
    """
    ms = tuple(matchers)
    return bool(ms) and all(matcher_matches(m, labels) for m in ms)


def is_valid_regex(pattern: str) -> bool:
    return _compiled(pattern) is not None
