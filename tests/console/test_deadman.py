"""The dead-man's switch: blind when the Watchdog vanishes or every source is stale."""

from __future__ import annotations

import dataclasses

import pytest

from console.config import ConfigError, parse_settings
from console.deadman import BLIND_SUFFIX, DeadmanSettings, assess
from console.model import Alert, Frame, Severity, SourceState
from console.testing import frame_from_sim


@pytest.fixture(scope="module")
def sim() -> Frame:
    return frame_from_sim(nodes=8, polls=2)


def without_watchdog(frame: Frame) -> Frame:
    return dataclasses.replace(frame, alerts=tuple(a for a in frame.alerts if a.name != "Watchdog"))


def test_the_simulator_fires_a_watchdog_so_it_is_not_blind(sim: Frame) -> None:
    dog = [a for a in sim.alerts if a.name == "Watchdog"]
    assert len(dog) == 1 and dog[0].state == "firing" and dog[0].severity == Severity.INFO
    assert dog[0].node is None and dog[0].tenant is None  # about the pipeline, not a machine
    verdict = assess(sim)
    assert not verdict.blind and verdict.text == ""


def test_blind_when_the_watchdog_vanishes_and_seeing_when_it_returns(sim: Frame) -> None:
    verdict = assess(without_watchdog(sim))
    assert verdict.blind
    assert verdict.text == ("BLIND: the always-firing Watchdog alert is missing, so alert delivery "
                            f"is broken and new alerts may not arrive \u2014 {BLIND_SUFFIX}")
    assert not assess(sim).blind


def test_a_silenced_watchdog_still_counts(sim: Frame) -> None:
    silenced = tuple(dataclasses.replace(a, state="silenced") if a.name == "Watchdog" else a
                     for a in sim.alerts)
    assert not assess(dataclasses.replace(sim, alerts=silenced)).blind


def test_the_watchdog_name_comes_from_the_config(sim: Frame) -> None:
    other = Alert("fp", "DeadMansSwitch", Severity.INFO, "firing", sim.time)
    frame = dataclasses.replace(without_watchdog(sim), alerts=(other,))
    assert not assess(frame, DeadmanSettings(watchdog="DeadMansSwitch")).blind
    assert assess(frame).blind  # the default name, Watchdog, is missing
    assert not assess(without_watchdog(sim), DeadmanSettings(watchdog="")).blind  # check off


def test_blind_when_every_source_is_stale(sim: Frame) -> None:
    late = dataclasses.replace(sim, time=sim.time + 300.0)  # 5 min without new data; limits 6 s
    verdict = assess(late)
    assert verdict.blind
    assert verdict.reasons == ("every data source is stale (newest data 5 min old)",)


def test_not_blind_while_one_kind_of_data_is_fresh(sim: Frame) -> None:
    data_time = dict(sim.data_time)
    data_time["telemetry"] = sim.time + 299.0
    late = dataclasses.replace(sim, time=sim.time + 300.0, data_time=data_time)
    assert not assess(late).blind


def test_stale_alert_data_is_not_read_as_a_missing_watchdog(sim: Frame) -> None:
    """Old alert data says nothing about the Watchdog; the staleness check speaks instead."""
    data_time = dict(sim.data_time)
    data_time["alerts"] = sim.time - 100.0
    frame = dataclasses.replace(without_watchdog(sim), data_time=data_time)
    assert not assess(frame).blind


def test_never_answered_sources_that_fail_are_blind(sim: Frame) -> None:
    failing = tuple(dataclasses.replace(s, state=SourceState.FAILING) for s in sim.sources)
    frame = dataclasses.replace(sim, sources=failing,
                                data_time={k: None for k in sim.data_time})
    assert assess(frame).reasons == ("no data source has answered",)
    waiting = tuple(dataclasses.replace(s, state=SourceState.WAITING) for s in sim.sources)
    starting = dataclasses.replace(frame, sources=waiting)
    assert not assess(starting).blind  # the console is starting: nothing to conclude yet
    assert not assess(None).blind


def test_deadman_config() -> None:
    base = {"clusters": [{"name": "c", "sim": {}}]}
    assert parse_settings(base).deadman == DeadmanSettings(watchdog="Watchdog")
    s = parse_settings({**base, "deadman": {"watchdog": "DeadMansSwitch"}})
    assert s.deadman.watchdog == "DeadMansSwitch"
    with pytest.raises(ConfigError, match=r"deadman: unknown key\(s\): name"):
        parse_settings({**base, "deadman": {"name": "x"}})
    with pytest.raises(ConfigError, match="deadman.watchdog: expected str"):
        parse_settings({**base, "deadman": {"watchdog": 1}})
