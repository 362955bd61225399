"""Actions: targets found by duck typing, capabilities in words, every attempt journalled."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from console.actions import (
    ActionResult, Actions, ack_matchers, alert_matches, format_matchers, matched_alerts,
    validate_silence,
)
from console.journal import Journal
from console.model import Alert, Matcher, Severity
from console.sources.base import ErrorKind, SourceError

T0 = 1_800_000_000.0


class FakeAlertmanager:
    def __init__(self, fail: Exception | None = None) -> None:
        self.silences: dict[str, tuple] = {}
        self.expired: list[str] = []
        self.fail = fail

    def create_silence(self, matchers, starts_at, ends_at, created_by, comment) -> str:
        if self.fail:
            raise self.fail
        sid = f"s{len(self.silences) + 1}"
        self.silences[sid] = (tuple(matchers), starts_at, ends_at, created_by, comment)
        return sid

    def expire_silence(self, silence_id: str) -> None:
        if silence_id not in self.silences:
            raise SourceError(ErrorKind.HTTP, "silence not found", status=500)
        self.expired.append(silence_id)


class FakeSlurm:
    def __init__(self, version: str = "v0.0.40") -> None:
        self.api_version = version
        self.calls: list[tuple[Any, ...]] = []

    @property
    def supports_node_update(self) -> bool | None:
        if not self.api_version:
            return None
        return tuple(int(x) for x in self.api_version[1:].split(".")) >= (0, 0, 39)

    def drain_node(self, name: str, reason: str) -> None:
        self.calls.append(("drain", name, reason))

    def resume_node(self, name: str) -> None:
        self.calls.append(("resume", name))

    def cancel_job(self, job_id: int) -> None:
        if job_id == 99999:
            raise SourceError(ErrorKind.HTTP, "job 99999 not found (Slurm said: Invalid job id)")
        self.calls.append(("cancel", job_id))


def src(name: str, **kw: Any) -> SimpleNamespace:
    return SimpleNamespace(name=name, kind="x", interval_s=1.0, **kw)


def xid_alert(**over: Any) -> Alert:
    labels = {"alertname": "GpuXidError", "Hostname": "gpu04", "gpu": "2", "instance": "127.0.0.1:9404",
              "job": "dcgm", "rack": "r1", "severity": "warning", "UUID": "GPU-d3e7"}
    kw = dict(fingerprint="da244becb16c47bf", name="GpuXidError", severity=Severity.WARNING,
              state="firing", starts_at=T0 - 60, labels=labels, source="am")
    kw.update(over)
    return Alert(**kw)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl")


def make(sources: list, journal: Journal) -> Actions:
    return Actions(sources, journal, operator="alice", clock=lambda: T0)


def test_ack_matchers_are_alert_identity() -> None:
    assert ack_matchers(xid_alert()) == (
        Matcher("alertname", "GpuXidError"), Matcher("Hostname", "gpu04"),
        Matcher("instance", "127.0.0.1:9404"), Matcher("gpu", "2"), Matcher("job", "dcgm"))
    bare = Alert("f", "ExporterDown", Severity.WARNING, "firing", T0, labels={"instance": "h:9400"})
    assert ack_matchers(bare) == (Matcher("alertname", "ExporterDown"), Matcher("instance", "h:9400"))


def test_acknowledge_creates_ack_silence_and_journals(journal: Journal) -> None:
    am = FakeAlertmanager()
    actions = make([src("am", client=am)], journal)
    result = actions.acknowledge(xid_alert(), "looking at it", duration_s=1800).result(timeout=10)
    assert result.ok and result.ids == ("s1",)
    matchers, starts, ends, author, comment = am.silences["s1"]
    assert comment == "ACK! looking at it"
    assert author == "alice" and starts == T0 and ends == T0 + 1800
    assert matchers == ack_matchers(xid_alert())
    recs = journal.records()
    assert [r["event"] for r in recs] == ["attempt", "outcome"]
    assert recs[0]["action"] == "acknowledge" and recs[0]["operator"] == "alice"
    assert recs[0]["comment"] == "ACK! looking at it"
    assert recs[0]["target"] == format_matchers(matchers)
    assert recs[1]["ok"] is True and recs[1]["ids"] == ["s1"]
    actions.close()


def test_acknowledge_keeps_existing_prefix_and_fills_empty_comment(journal: Journal) -> None:
    am = FakeAlertmanager()
    actions = make([src("am", client=am)], journal)
    actions.acknowledge(xid_alert(), "ACK! already").result(timeout=10)
    actions.acknowledge(xid_alert(), "  ", author="bob").result(timeout=10)
    assert am.silences["s1"][4] == "ACK! already"
    assert am.silences["s2"][4] == "ACK! acknowledged by bob"
    assert am.silences["s2"][2] - am.silences["s2"][1] == 3600
    actions.close()


def test_acknowledge_console_anomaly_is_refused_in_words(journal: Journal) -> None:
    am = FakeAlertmanager()
    actions = make([src("am", client=am)], journal)
    result = actions.acknowledge(xid_alert(source="console"), "x").result(timeout=10)
    assert not result.ok and "detected by the console" in result.message
    assert am.silences == {}
    assert journal.records()[-1]["ok"] is False
    actions.close()


def test_acknowledge_goes_to_the_alerts_own_alertmanager(journal: Journal) -> None:
    am1, am2 = FakeAlertmanager(), FakeAlertmanager()
    actions = make([src("am", client=am1), src("am-b", client=am2)], journal)
    actions.acknowledge(xid_alert(source="am-b"), "x").result(timeout=10)
    assert am1.silences == {} and list(am2.silences) == ["s1"]
    # a silence made in the editor goes to every Alertmanager
    actions.create_silence([Matcher("rack", "r1")], 600, "alice", "maintenance").result(timeout=10)
    assert list(am1.silences) == ["s1"] and list(am2.silences) == ["s1", "s2"]
    actions.close()


def test_create_silence_failure_in_words_without_secret(journal: Journal) -> None:
    am = FakeAlertmanager(fail=RuntimeError("POST http://u:pw9@am/api/v2/silences?token=tk77 failed"))
    actions = make([src("am", client=am)], journal)
    result = actions.create_silence([Matcher("alertname", "X")], 600, "alice", "c").result(timeout=10)
    assert not result.ok
    assert result.message.startswith("could not create the silence: am: RuntimeError: POST")
    assert "pw9" not in result.message and "tk77" not in result.message
    assert "tk77" not in journal.path.read_text() and "pw9" not in journal.path.read_text()
    actions.close()


def test_create_silence_validated_before_sending(journal: Journal) -> None:
    am = FakeAlertmanager()
    actions = make([src("am", client=am)], journal)
    r = actions.create_silence([Matcher("alertname", ".*", is_regex=True)], 600, "a", "c").result(timeout=10)
    assert not r.ok and "silence everything" in r.message
    r = actions.create_silence([Matcher("alertname", "X")], 600, "a", "").result(timeout=10)
    assert not r.ok and r.message == "a comment is required"
    assert am.silences == {}
    assert [x["event"] for x in journal.records()] == ["attempt", "outcome"] * 2
    actions.close()


def test_expire_silence(journal: Journal) -> None:
    am = FakeAlertmanager()
    am.silences["abc"] = ()
    actions = make([src("am", client=am)], journal)
    assert actions.expire_silence("abc").result(timeout=10).ok
    assert am.expired == ["abc"]
    bad = actions.expire_silence("nope").result(timeout=10)
    assert not bad.ok and bad.message == "could not expire silence: am: silence not found"
    actions.close()


def test_capabilities_with_nothing_configured(journal: Journal) -> None:
    caps = make([], journal).capabilities()
    assert caps == {
        "acknowledge": "no Alertmanager is configured",
        "create_silence": "no Alertmanager is configured",
        "expire_silence": "no Alertmanager is configured",
        "cancel_job": "no Slurm REST API is configured",
        "drain_node": "no Slurm REST API is configured",
        "resume_node": "no Slurm REST API is configured",
    }


def test_capabilities_old_slurm_cannot_drain(journal: Journal) -> None:
    actions = make([src("slurm", client=FakeSlurm("v0.0.38"))], journal)
    caps = actions.capabilities()
    assert caps["cancel_job"] is None
    assert caps["drain_node"] == ("draining needs Slurm REST API v0.0.39 or newer; "
                                  "this server offers v0.0.38")
    r = actions.drain_node("gpu01", "bad GPU").result(timeout=10)
    assert not r.ok and r.message == caps["drain_node"]
    assert journal.records()[-1]["message"] == caps["drain_node"]


def test_capabilities_unknown_version_waits(journal: Journal) -> None:
    caps = make([src("slurm", client=FakeSlurm(""))], journal).capabilities()
    assert caps["drain_node"].startswith("waiting for the Slurm REST API")


def test_slurm_actions(journal: Journal) -> None:
    slurm = FakeSlurm("v0.0.40")
    actions = make([src("slurm", client=slurm)], journal)
    assert all(v is None for k, v in actions.capabilities().items()
               if k in ("drain_node", "resume_node", "cancel_job"))
    assert actions.drain_node("gpu01", "XID 79").result(timeout=10).message == "node gpu01 is draining (slurm)"
    assert actions.resume_node("gpu01").result(timeout=10).ok
    assert actions.cancel_job(4812).result(timeout=10).ok
    bad = actions.cancel_job(99999).result(timeout=10)
    assert bad == ActionResult("cancel_job", "99999", False,
                               "slurm: job 99999 not found (Slurm said: Invalid job id)")
    assert slurm.calls == [("drain", "gpu01", "XID 79"), ("resume", "gpu01"), ("cancel", 4812)]
    recs = journal.records()
    assert len(recs) == 8
    assert recs[0]["comment"] == "XID 79" and recs[0]["target"] == "gpu01"
    actions.close()


def test_simulator_cluster_is_a_target_for_everything(journal: Journal) -> None:
    class Sim(FakeAlertmanager, FakeSlurm):
        def __init__(self) -> None:
            FakeAlertmanager.__init__(self)
            FakeSlurm.__init__(self, "")

    sim = Sim()
    actions = make([src("simulator", cluster=sim)], journal)
    assert set(actions.capabilities().values()) == {None}
    assert actions.drain_node("n0001", "test").result(timeout=10).ok
    assert actions.acknowledge(xid_alert(source="simulator"), "c").result(timeout=10).ok
    assert sim.calls == [("drain", "n0001", "test")] and list(sim.silences) == ["s1"]
    actions.close()


def test_unexpected_exception_becomes_result(journal: Journal) -> None:
    class Broken(FakeSlurm):
        def cancel_job(self, job_id: int) -> None:
            raise KeyError("job_id")

    actions = make([src("slurm", client=Broken())], journal)
    r = actions.cancel_job(1).result(timeout=10)
    assert not r.ok and r.message == "slurm: KeyError: 'job_id'"
    actions.close()


def test_matcher_semantics() -> None:
    labels = {"alertname": "GpuXidError", "Hostname": "gpu04", "gpu": "2"}
    assert alert_matches([Matcher("Hostname", "gpu0[0-9]", is_regex=True)], labels)
    assert not alert_matches([Matcher("Hostname", "gpu0", is_regex=True)], labels)  # anchored
    assert alert_matches([Matcher("gpu", "3", is_equal=False)], labels)
    assert not alert_matches([Matcher("gpu", "2", is_equal=False)], labels)
    assert alert_matches([Matcher("rack", "")], labels)  # missing label is ""
    assert alert_matches([Matcher("rack", "r.*", is_regex=True, is_equal=False)], labels)
    assert not alert_matches([], labels)


def test_matched_alerts_excludes_console_anomalies() -> None:
    a = xid_alert()
    b = xid_alert(fingerprint="b", labels={**a.labels, "Hostname": "gpu05"})
    c = xid_alert(fingerprint="c", source="console")
    got = matched_alerts([Matcher("alertname", "GpuXidError")], [a, b, c])
    assert got == [a, b]
    assert matched_alerts([Matcher("Hostname", "gpu05")], [a, b, c]) == [b]


def test_validate_silence_words() -> None:
    ok = [Matcher("alertname", "X")]
    assert validate_silence(ok, 60, "a", "c") is None
    assert validate_silence([], 60, "a", "c") == "add at least one matcher"
    assert validate_silence([Matcher("bad-name", "x")], 60, "a", "c") == "'bad-name' is not a valid label name"
    assert "regular expression" in validate_silence([Matcher("a", "(", is_regex=True)], 60, "a", "c")
    assert validate_silence(ok, 0, "a", "c") == "the duration must be positive"
    assert validate_silence(ok, 60, " ", "c") == "the author is missing"


def test_format_matchers() -> None:
    assert format_matchers([Matcher("a", "1"), Matcher("b", "x.*", True), Matcher("c", "2", False, False),
                            Matcher("d", "y", True, False)]) == '{a="1", b=~"x.*", c!="2", d!~"y"}'


def test_repr_has_no_secrets(journal: Journal) -> None:
    client = SimpleNamespace(create_silence=lambda *a: "x", token="tok-secret")
    assert "tok-secret" not in repr(make([src("am", client=client)], journal))


class SlurmClientShaped:
    """Shaped like console.sources.slurm.SlurmClient: `version` is None until detected, and
    `supports_node_update()` would detect it over the network (must not happen from the GUI)."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.drained: list[str] = []

    def supports_node_update(self) -> bool:
        if self.version is None:
            raise AssertionError("capabilities() must not trigger version detection (I/O)")
        return self.version != "v0.0.38"

    def drain_node(self, name: str, reason: str) -> None:
        self.drained.append(name)

    def resume_node(self, name: str) -> None: ...

    def cancel_job(self, job_id: int) -> None: ...


def test_slurm_version_read_without_io(journal: Journal) -> None:
    client = SlurmClientShaped()
    actions = make([src("slurm", client=client)], journal)
    assert actions.capabilities()["drain_node"].startswith("waiting for the Slurm REST API")
    client.version = "v0.0.38"
    assert actions.capabilities()["drain_node"] == (
        "draining needs Slurm REST API v0.0.39 or newer; this server offers v0.0.38")
    client.version = "v0.0.41"
    assert actions.capabilities()["drain_node"] is None
    assert actions.drain_node("gpu02", "ECC").result(timeout=10).ok
    assert client.drained == ["gpu02"]
    actions.close()


def test_multi_alertmanager_source_uses_first_that_accepts(journal: Journal) -> None:
    down = FakeAlertmanager(fail=SourceError(ErrorKind.UNREACHABLE, "am-a:9093 refused the connection"))
    up = FakeAlertmanager()
    actions = make([src("alertmanager", clients=[down, up])], journal)
    r = actions.acknowledge(xid_alert(source="alertmanager"), "on it").result(timeout=10)
    assert r.ok and r.ids == ("s1",) and list(up.silences) == ["s1"]
    assert actions.expire_silence("s1").result(timeout=10).ok and up.expired == ["s1"]
    down2 = FakeAlertmanager(fail=SourceError(ErrorKind.UNREACHABLE, "am-b:9093 refused the connection"))
    actions2 = make([src("alertmanager", clients=[down, down2])], journal)
    bad = actions2.create_silence([Matcher("alertname", "X")], 60, "a", "c").result(timeout=10)
    assert bad.message == ("could not create the silence: alertmanager: am-a:9093 refused the "
                           "connection; am-b:9093 refused the connection")
    actions.close()
    actions2.close()


def test_real_simulated_cluster_acknowledge_and_drain(journal: Journal) -> None:
    from console.sim.config import SimConfig
    from console.sim.source import SimulatedSource

    source = SimulatedSource(SimConfig(nodes=8, seed=3))
    actions = Actions([source], journal, operator="alice")
    assert set(actions.capabilities().values()) == {None}
    node = source.cluster.node_names[0]
    assert actions.drain_node(node, "test drain").result(timeout=10).ok
    alert = Alert("fp", "GpuXidError", Severity.CRITICAL, "firing", T0,
                  labels={"alertname": "GpuXidError", "Hostname": node}, source="simulator")
    r = actions.acknowledge(alert, "checking").result(timeout=10)
    assert r.ok
    sil = [s for s in source.cluster.silences if s.id == r.ids[0]]
    assert sil and sil[0].comment == "ACK! checking" and sil[0].is_ack
    assert actions.expire_silence(r.ids[0]).result(timeout=10).ok
    actions.close()


def test_author_recorded_for_every_action(journal: Journal) -> None:
    am, slurm = FakeAlertmanager(), FakeSlurm("v0.0.40")
    am.silences["x"] = ()
    actions = make([src("am", client=am), src("slurm", client=slurm)], journal)
    actions.expire_silence("x", author="carol").result(timeout=10)
    actions.cancel_job(5, author="dave").result(timeout=10)
    actions.resume_node("n1").result(timeout=10)
    ops = [(r["action"], r["operator"]) for r in journal.records() if r["event"] == "outcome"]
    assert ops == [("expire_silence", "carol"), ("cancel_job", "dave"), ("resume_node", "alice")]
    actions.shutdown()
