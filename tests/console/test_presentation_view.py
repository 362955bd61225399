"""The public view holds no names by construction; the playlist clock; the equivalence; the
``[presentation]`` config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from console.config import ConfigError, parse_settings
from console.deadman import assess
from console.model import Frame
from console.presentation import KIND_PLURALS, Playlist, PublicView, equivalence, public_view
from console.presentation_settings import Milestone, PresentationSettings, SceneSpec
from console.testing import frame_from_sim


@pytest.fixture(scope="module")
def sim() -> Frame:
    return frame_from_sim(nodes=32, polls=6, faults="all")


def strings_in(obj: object) -> set[str]:
    """Every string reachable from ``obj`` (fields, tuples, dict keys and values)."""
    out: set[str] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            out.add(o)
        elif isinstance(o, np.ndarray):
            assert o.dtype.kind in "biuf", f"an array of {o.dtype} could carry names"
        elif isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (tuple, list)):
            stack.extend(o)
        elif dataclasses.is_dataclass(o):
            stack.extend(getattr(o, f.name) for f in dataclasses.fields(o))
    return out


def test_the_public_view_carries_only_fixed_words_and_the_configured_texts(sim: Frame) -> None:
    settings = PresentationSettings(title="AI Lab Open Day")
    view = public_view(sim, settings, assess(sim))
    allowed = ({"AI Lab Open Day", sim.kpis.precision, "telemetry", "scheduler", "alerts",
                "ok", "degraded", "failed", "unavailable", "no_data"}
               | {m.label for m in settings.milestones} | set(KIND_PLURALS))
    assert strings_in(view) <= allowed
    names = (set(sim.tenants.account) | set(sim.tenants.display) | set(map(str, sim.jobs.user))
             | set(map(str, sim.jobs.name)) | set(sim.topology.node_names))
    assert names and not names & strings_in(view)


def test_the_view_counts_tenants_by_kind_and_lays_out_the_map(sim: Frame) -> None:
    view = public_view(sim)
    t = sim.tenants
    served = np.asarray(t.gpus_in_use) > 0
    served |= np.nan_to_num(sim.history.tenant_gpus).max(axis=0) > 0
    expected = {k: sum(1 for kind, s in zip(t.kind, served) if s and kind == k) for k in KIND_PLURALS}
    assert dict(view.tenants_by_kind or ()) == {k: v for k, v in expected.items() if v}
    assert view.tenants_served == int(served.sum())
    assert view.health.shape == (32, 8) and view.rack_of_row.tolist() == sorted(view.rack_of_row.tolist())
    assert view.title == sim.cluster  # no title configured: the cluster's name
    assert view.delivered_pf == pytest.approx(sim.kpis.delivered_pf)


def test_unknown_stays_unknown(sim: Frame) -> None:
    k = dataclasses.replace(sim.kpis, delivered_pf=None, installed_pf=None, jobs_running=None)
    view = public_view(dataclasses.replace(sim, kpis=k))
    assert (view.delivered_pf, view.installed_pf, view.jobs_running) == (None, None, None)
    assert equivalence(None, "BF16 dense") is None


def test_ages_and_staleness_per_scene(sim: Frame) -> None:
    late = dataclasses.replace(sim, time=sim.time + 60.0)
    view = public_view(late)
    age, stale = view.age_for("headline")
    assert age == pytest.approx(late.time - sim.data_time["telemetry"]) and stale
    assert public_view(sim).age_for("jobs")[1] is False


def test_the_equivalence_states_its_arithmetic() -> None:
    sentence, assumption = equivalence(1238.0, "BF16 dense")
    # 1,238e15 operations / 8.1e9 people = 1.53e8 s = 4.8 years
    assert sentence == ("What this machine computes in one second would take everyone on Earth "
                        "about 4.8 years by hand.")
    assert "8.1 billion people" in assumption and "BF16 dense" in assumption
    assert equivalence(3000.0, "FP8 dense")[0].endswith("about 12 years by hand.")
    assert equivalence(100.0, "BF16 dense")[0].endswith("about 143 days by hand.")


def test_the_playlist_advances_when_each_duration_has_passed() -> None:
    p = Playlist((SceneSpec("headline", 20.0), SceneSpec("health", 10.0)), now=100.0)
    assert not p.tick(119.9) and p.current.name == "headline"
    assert p.tick(120.0) and p.current.name == "health"
    assert not p.tick(129.0)
    assert p.tick(1000.0) and p.current.name == "headline"  # after a stall: one step, not many
    assert not p.tick(1019.0)
    assert p.show("health", 1019.0) and p.current.name == "health" and not p.show("jobs", 0.0)


def test_presentation_config() -> None:
    base = {"clusters": [{"name": "c", "sim": {}}]}
    d = parse_settings(base).presentation
    assert [s.name for s in d.scenes] == ["headline", "health", "delivered", "tenants", "jobs"]
    assert d.milestones == (Milestone("at opening", 1300.0), Milestone("after expansion", 3000.0))
    s = parse_settings({**base, "presentation": {
        "title": "Open Day", "transition_ms": 400,
        "scenes": [{"name": "health", "duration_s": 30}, {"name": "headline"}],
        "milestones": [{"label": "phase 1", "pf": 500}]}}).presentation
    assert s == PresentationSettings(title="Open Day", transition_ms=400,
                                     scenes=(SceneSpec("health", 30.0), SceneSpec("headline", 15.0)),
                                     milestones=(Milestone("phase 1", 500.0),))
    for bad, words in (({"scenes": [{"name": "tenant-names"}]}, "one of headline"),
                       ({"scenes": []}, "a non-empty list"),
                       ({"scenes": [{"name": "jobs", "duration_s": 0}]}, "a number above 0"),
                       ({"milestones": [{"pf": 10}]}, r"label: required"),
                       ({"transition_ms": 99999}, "0 to 5000"),
                       ({"font": "big"}, r"unknown key\(s\): font")):
        with pytest.raises(ConfigError, match=words):
            parse_settings({**base, "presentation": bad})


def test_public_view_is_a_dataclass_without_a_frame_field() -> None:
    kinds = {f.name: f.type for f in dataclasses.fields(PublicView)}
    assert not any("Frame" in str(t) or "Table" in str(t) for t in kinds.values())
