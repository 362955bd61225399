"""Find anything on screen by part of its name: the command palette's index, built from a Frame.

Why Qt-free and here: what can be found (nodes, GPUs, jobs, tenants, racks, alerts, anomalies,
panels) and how matches rank are the console's knowledge, not the widget's; the palette only
shows the ranked entries and opens the one chosen. Building the index is linear in the frame
(about 0.1 s for 50,000 jobs) and is done when the palette opens, not on every frame.

Ranking, best first: every word of the query must occur in the entry's name or one of its
other terms (a tenant's account, a job's user). A name that starts with the whole query beats
one that contains it, which beats matches word by word ("n0001 gpu" finds that node's GPUs
before an alert that names n0001 and a GPU). Then a word that equals a term beats one that
starts it, which beats one that starts a later word of it ("hong" in "The University of Hong
Kong"), which beats one found anywhere inside. Ties go to the kind ("n01" finds the node
before its GPUs), then to the shorter name, then to natural order (n2 before n10).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from console.model import Frame, JobState

#: Kinds in the order ties are broken: what an operator most often means first.
KIND_ORDER = ("panel", "node", "tenant", "job", "alert", "rack", "gpu")
_KIND_RANK = {k: i for i, k in enumerate(KIND_ORDER)}
#: How a word of the query met a term: lower is better.
EXACT, PREFIX, WORD_PREFIX, INSIDE = range(4)
_DIGITS = re.compile(r"(\d+)")
_WORD_START = re.compile(r"[\s/_.:\-(]+")


@dataclass(frozen=True)
class Entry:
    """One thing the palette can open.

    ``key`` says what to open: ("n0001",) for a node, ("n0001", 3) for a GPU, (4812,) for a
    job, ("hku",) for a tenant, ("R07",) for a rack, (row key,) for an alert ("am:<fp>",
    "console:<id>"), (panel key,) for a panel.
    """

    kind: str
    key: tuple[str | int, ...]
    label: str
    detail: str = ""
    terms: tuple[str, ...] = ()  # lower-case strings searched besides the label

    def searchable(self) -> tuple[str, ...]:
        return (self.label.lower(), *self.terms)


def _natural(text: str) -> tuple[object, ...]:
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(text.lower()))


def _match(word: str, term: str) -> int | None:
    """How well ``word`` meets ``term`` (both lower case): EXACT..INSIDE, or None."""
    if term == word:
        return EXACT
    if term.startswith(word):
        return PREFIX
    at = term.find(word)
    if at < 0:
        return None
    while at >= 0:
        if at > 0 and _WORD_START.match(term[at - 1]):
            return WORD_PREFIX
        at = term.find(word, at + 1)
    return INSIDE


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: tuple[object, ...]


class SearchIndex:
    """Entries and a ranked `search`; immutable once built."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries: tuple[Entry, ...] = tuple(entries)
        self._terms = [e.searchable() for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def search(self, query: str, limit: int = 50) -> list[Entry]:
        """The entries matching every word of ``query``, best first (at most ``limit``).

        An empty query finds nothing: the palette then shows its hint, not 50,000 jobs.
        """
        words = query.lower().split()
        if not words:
            return []
        phrase = " ".join(words)
        hits: list[Hit] = []
        for entry, terms in zip(self.entries, self._terms):
            total = 0
            for word in words:
                best = None
                for term in terms:
                    m = _match(word, term)
                    if m is not None and (best is None or m < best):
                        best = m
                        if m == EXACT:
                            break
                if best is None:
                    break
                total += best
            else:
                label = terms[0]
                whole = 0 if label.startswith(phrase) else 1 if phrase in label else 2
                hits.append(Hit(entry, (whole, total, _KIND_RANK.get(entry.kind, len(KIND_ORDER)),
                                        len(entry.label), _natural(entry.label))))
        hits.sort(key=lambda h: h.score)
        return [h.entry for h in hits[:limit]]


def build_index(frame: Frame | None, panels: Sequence[tuple[str, str]] = ()) -> SearchIndex:
    """Everything in ``frame`` an operator can open, plus ``panels`` as (key, title).

    Without a frame only the panels can be found.
    """
    entries: list[Entry] = [Entry("panel", (key, ), title, "panel", (key.lower(),))
                            for key, title in panels]
    if frame is None:
        return SearchIndex(entries)
    topo = frame.topology
    racks = topo.rack_names
    for i, name in enumerate(topo.node_names):
        r = int(topo.node_rack[i]) if i < len(topo.node_rack) else -1
        rack = racks[r] if 0 <= r < len(racks) else ""
        n_gpus = int(topo.node_gpu_count[i]) if i < len(topo.node_gpu_count) else 0
        where = f"rack {rack}" if rack else "no rack"
        entries.append(Entry("node", (name,), name,
                             f"node \u00b7 {where} \u00b7 {n_gpus} GPUs" if n_gpus
                             else f"node \u00b7 {where} \u00b7 no GPUs"))
        for g in range(n_gpus):
            entries.append(Entry("gpu", (name, g), f"{name} GPU {g}", f"GPU \u00b7 {where}",
                                 (f"{name}/{g}".lower(), f"gpu{g}")))
    for rack in racks:
        entries.append(Entry("rack", (rack,), f"rack {rack}", "rack", (rack.lower(),)))
    t = frame.tenants
    for i, account in enumerate(t.account):
        display = t.display[i] if i < len(t.display) else account
        kind = t.kind[i] if i < len(t.kind) else ""
        label = display if display and display != account else account
        entries.append(Entry("tenant", (account,), label,
                             f"tenant {account}" + (f" \u00b7 {kind}" if kind else ""),
                             (account.lower(),)))
    jobs = frame.jobs
    if len(jobs):
        ids = jobs.job_id.tolist()
        names = jobs.name.tolist()
        users = jobs.user.tolist()
        accounts = jobs.account.tolist()
        states = jobs.state.tolist()
        for jid, name, user, acct, state in zip(ids, names, users, accounts, states):
            account = jobs.accounts[acct] if 0 <= acct < len(jobs.accounts) else ""
            try:
                words = JobState(state).name.lower()
            except ValueError:
                words = "job"
            entries.append(Entry("job", (int(jid),), f"job {jid} {name}".rstrip(),
                                 f"{words} \u00b7 {account} \u00b7 {user}",
                                 (str(jid), str(name).lower(), str(user).lower())))
    seen: set[str] = set()
    for a in frame.alerts:
        if a.fingerprint in seen or a.state == "resolved":
            continue
        seen.add(a.fingerprint)
        where = a.node or a.rack or a.tenant or (f"job {a.job_id}" if a.job_id is not None else "")
        entries.append(Entry("alert", (f"am:{a.fingerprint}",), a.name,
                             f"alert \u00b7 {a.severity.name.lower()}"
                             + (f" \u00b7 {where}" if where else ""),
                             tuple(v.lower() for v in (where, a.summary) if v)))
    for an in frame.anomalies:
        if an.ended_at is not None:
            continue
        subject = f"{an.subject.level} {an.subject.key}"
        entries.append(Entry("alert", (f"console:{an.id}",), an.kind.replace("_", " "),
                             f"anomaly \u00b7 {an.severity.name.lower()} \u00b7 {subject}",
                             (subject.lower(), an.subject.key.lower())))
    return SearchIndex(entries)
