"""Slurm accounting answers of every API version, parsed from real recordings, against the truth.

scripts/record_accounting.py records what slurmrestd with slurmdbd answers on the loopback
stack (``scripts/stack.py start --accounting``) for 22.05 (v0.0.38), 24.11 (v0.0.40-42) and
26.05 (v0.0.42-45), together with what ``sacct``, ``sacctmgr`` and ``sshare`` of the same
release said at that moment (``truth`` in each INDEX.json). Every version's JSON must parse to
exactly that truth: the same jobs with the same times, states and allocated GPUs, the same
limits, the same shares.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from console.sources import slurmdb_parse as P

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurmdb"


def recordings() -> list[tuple[str, str]]:
    out = []
    for index in sorted(FIXTURES.glob("*/INDEX.json")):
        meta = json.loads(index.read_text())
        out += [(index.parent.name, v) for v in meta["slurmdb_versions"]]
    return out


RECORDED = recordings()
IDS = [f"{s}-{v}" for s, v in RECORDED]


def meta(series: str) -> dict:
    return json.loads((FIXTURES / series / "INDEX.json").read_text())


def answer(series: str, version: str, name: str) -> dict:
    return json.loads((FIXTURES / series / f"{version}_{name}.json").read_text())


def tres_value(tres: str, key: str = "gres/gpu") -> int | None:
    """``gres/gpu=8`` out of sacct's/sacctmgr's TRES words; None when not named."""
    for part in tres.split(","):
        k, _, v = part.partition("=")
        if k == key:
            return int(v)
    return None


def epoch_or_none(word: str) -> float | None:
    return None if word in ("Unknown", "None", "") else float(word)


def test_every_release_of_the_matrix_is_recorded() -> None:
    assert {s for s, _ in RECORDED} == {"22.05", "24.11", "26.05"}
    assert {v for _, v in RECORDED} == {"v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43",
                                        "v0.0.44", "v0.0.45"}


@pytest.mark.parametrize(("series", "version"), RECORDED, ids=IDS)
def test_jobs_parse_to_what_sacct_said(series: str, version: str) -> None:
    truth = meta(series)["truth"]["sacct"]
    jobs = {j.job_id: j for j in P.parse_jobs(answer(series, version, "jobs")["jobs"])}
    assert set(jobs) == {t["JobID"] for t in truth}
    for t in truth:
        j = jobs[t["JobID"]]
        assert (j.account, j.user, j.partition, j.qos) == (t["Account"], t["User"], t["Partition"],
                                                           t["QOS"]), t["JobID"]
        assert j.state == t["State"].split()[0], t["JobID"]  # "CANCELLED by 0" is CANCELLED
        assert j.submit == epoch_or_none(t["Submit"]), t["JobID"]
        assert j.start == epoch_or_none(t["Start"]), t["JobID"]
        assert j.end == epoch_or_none(t["End"]), t["JobID"]
        assert j.gpus == (tres_value(t["AllocTRES"]) or 0), t["JobID"]
        models = {k.split(":", 1)[1] for k, _, _ in (p.partition("=") for p in t["AllocTRES"].split(","))
                  if k.startswith("gres/gpu:")}
        assert j.gpu_model == (models.pop() if len(models) == 1 else None), t["JobID"]
        if j.start is not None:
            assert j.nodes == tuple(t["NodeList"].split(",")), t["JobID"]
        if j.end is not None and j.start is not None:  # elapsed is the span of the record
            assert j.end - j.start == float(t["ElapsedRaw"]), t["JobID"]


@pytest.mark.parametrize(("series", "version"), RECORDED, ids=IDS)
def test_the_recording_holds_each_end_state_and_gpu_jobs(series: str, version: str) -> None:
    """What the stack promises: finished GPU jobs of several end states and a running one."""
    jobs = P.parse_jobs(answer(series, version, "jobs")["jobs"])
    ended = {j.state for j in jobs if j.end is not None}
    assert {"COMPLETED", "FAILED", "CANCELLED"} <= ended
    assert any(j.state == "RUNNING" and j.end is None and j.gpus > 0 for j in jobs)
    assert any(j.gpus == 0 and j.start is not None for j in jobs)  # a CPU-only job: 0 GPUs
    assert {j.gpu_model for j in jobs if j.gpus} == {"h800", "h100"}  # typed TRES: the model


@pytest.mark.parametrize(("series", "version"), RECORDED, ids=IDS)
def test_account_limits_are_what_sacctmgr_shows(series: str, version: str) -> None:
    truth = meta(series)["truth"]["assoc"]
    expected = {}
    for a in truth:
        if a["User"] or a["Partition"] or a["Account"] == "root":
            continue
        gpus, minutes = tres_value(a["GrpTRES"]), tres_value(a["GrpTRESMins"])
        if gpus is not None or minutes is not None:
            expected[a["Account"]] = (gpus, minutes)
    got = {lim.name: (lim.gpus, lim.gpu_minutes)
           for lim in P.account_limits(answer(series, version, "associations")["associations"])}
    assert got == expected
    assert expected["polyu"] == (None, 120_000)  # a quota in GPU-minutes only: no GPU cap
    assert expected["cuhk"] == (16, None)


@pytest.mark.parametrize(("series", "version"), RECORDED, ids=IDS)
def test_qos_limits_and_whether_minutes_are_shown(series: str, version: str) -> None:
    truth = {q["Name"]: q for q in meta(series)["truth"]["qos"]}
    limits, minutes_shown = P.qos_limits(P.qos_list(answer(series, version, "qos")))
    got = {lim.name: lim for lim in limits}
    assert set(got) == {n for n, q in truth.items() if q["GrpTRES"] or q["GrpTRESMins"]}
    for name, lim in got.items():
        assert lim.gpus == tres_value(truth[name]["GrpTRES"])
        if minutes_shown:
            assert lim.gpu_minutes == tres_value(truth[name]["GrpTRESMins"])
        else:
            assert lim.gpu_minutes is None  # set in Slurm, not shown by this API: unknown
    # measured: GrpTRESMins of a QOS is in the answer from v0.0.42 on only
    assert minutes_shown == (version >= "v0.0.42")


@pytest.mark.parametrize(("series", "version"), RECORDED, ids=IDS)
def test_shares_are_what_sshare_shows(series: str, version: str) -> None:
    path = FIXTURES / series / f"{version}_shares.json"
    if version == "v0.0.38":
        assert not path.exists()
        assert (FIXTURES / series / f"{version}_shares.404.json").exists()  # 22.05: no /shares
        return
    rows = P.share_rows(json.loads(path.read_text()))
    truth = meta(series)["truth"]["sshare"]
    expected = {}
    account = ""
    for t in truth:
        if not t["User"]:
            account = t["Account"].strip()
        if account == "root" or t["Account"].strip() == "root":
            continue
        expected[(t["Account"].strip(), t["User"] or None)] = int(t["RawShares"])
    got = {(f.account, f.user): f for f in P.parse_shares(rows)}
    assert {k: f.shares for k, f in got.items()} == expected
    assert all(f.level_fs is None or f.level_fs >= 0 for f in got.values())
    assert all(f.level_fs != math.inf for f in got.values() if f.user is None)
    used = P.used_gpu_minutes(rows)
    raw = {t["Account"].strip(): tres_value(t["GrpTRESRaw"]) for t in truth if not t["User"]}
    for acct, minutes in used.items():
        assert math.floor(minutes) == raw[acct], acct  # sshare prints whole minutes
    assert used["hku"] > 0  # hku's finished 8-GPU job counts against its GrpTRESMins


def test_tres_gpus_prefers_the_untyped_total_and_names_one_model() -> None:
    gres = lambda name, n: {"type": "gres", "name": name, "id": 1, "count": n}  # noqa: E731
    assert P.tres_gpus([gres("gpu", 8), gres("gpu:h100", 8)]) == (8, "h100")
    assert P.tres_gpus([gres("gpu:h100", 2), gres("gpu:a100", 4)]) == (6, None)
    assert P.tres_gpus([{"type": "cpu", "name": None, "id": 1, "count": 4}]) == (0, None)
    assert P.tres_gpus([]) == (0, None)
    with pytest.raises(P.AccountingShapeError):
        P.tres_gpus("gres/gpu=8")


def test_limit_absent_is_none_never_zero() -> None:
    assert P.tres_gpu_limit([]) is None
    assert P.tres_gpu_limit([{"type": "cpu", "name": None, "count": 4}]) is None
    assert P.tres_gpu_limit([{"type": "gres", "name": "gpu", "count": 0}]) == 0  # a real 0 cap


def test_an_infinite_level_fs_is_infinity() -> None:
    row = {"name": "alice", "parent": "hku", "type": ["USER"], "shares": {"set": True, "number": 1},
           "fairshare": {"level": {"set": True, "infinite": False, "number": 1.8446744073709552e19},
                         "factor": {"set": True, "infinite": False, "number": 1.0}},
           "effective_usage": {"set": True, "infinite": False, "number": 0.0}}
    (f,) = P.parse_shares([row])
    assert (f.account, f.user, f.level_fs, f.fairshare, f.effective_usage) == ("hku", "alice",
                                                                               math.inf, 1.0, 0.0)
