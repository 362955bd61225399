"""The arithmetic on real slurmdbd answers (recorded from the project's stack for each Slurm
release), checked against `sacct`'s picture of the same moment computed here independently."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from console.accounting.money import PriceBook, TenantTerms, charges
from console.accounting.periods import Period
from console.accounting.quotas import quota_status
from console.accounting.table import UsageTable
from console.accounting.usage import tenant_usage
from console.sources.slurmdb_parse import account_limits, parse_jobs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slurmdb"
RECORDED = [(rel, v) for rel, v in (("22.05", "v0.0.38"), ("24.11", "v0.0.40"), ("24.11", "v0.0.42"),
                                    ("26.05", "v0.0.42"), ("26.05", "v0.0.45"))
            if (FIXTURES / rel / f"{v}_jobs.json").exists()]


def sacct_gpu_hours(rows: list[dict[str, str]], since: float, until: float, now: float) -> dict[str, float]:
    """GPU-hours per account from `sacct -X -P` rows: gres/gpu of AllocTRES x the run inside
    [since, until), a running job up to ``now`` (the test's own few lines, not the console's)."""
    out: dict[str, float] = {}
    for r in rows:
        m = re.search(r"gres/gpu=(\d+)", r["AllocTRES"])
        if not m or r["Start"] in ("Unknown", "None", ""):
            continue
        end = now if r["End"] in ("Unknown", "None", "") else float(r["End"])
        d = min(end, until, now) - max(float(r["Start"]), since)
        if d > 0:
            out[r["Account"]] = out.get(r["Account"], 0.0) + int(m.group(1)) * d / 3600.0
    return out


@pytest.mark.parametrize("release, version", RECORDED)
def test_gpu_hours_per_account_match_sacct_also_when_cut_at_the_edges(release: str, version: str) -> None:
    index = json.loads((FIXTURES / release / "INDEX.json").read_text())
    body = json.loads((FIXTURES / release / f"{version}_jobs.json").read_text())
    table = UsageTable.build(parse_jobs(body["jobs"]))
    rows, now = index["truth"]["sacct"], float(index["recorded_at"])
    starts = sorted(float(r["Start"]) for r in rows if r["Start"] not in ("Unknown", "None", ""))
    whole = Period(float(index["period"]["since"]), float(index["period"]["until"]), "recorded")
    cut = Period(starts[0] + 1.0, starts[-1] + 1.5, "cut")  # cuts the first and last jobs
    for period in (whole, cut):
        truth = sacct_gpu_hours(rows, period.since, period.until, now)
        mine = tenant_usage(table, period, now)
        assert truth, "the recording has GPU jobs"
        for acct, hours in truth.items():
            assert mine[acct].gpu_hours == pytest.approx(hours, abs=1e-9), (period.label, acct)
        assert {a for a, u in mine.items() if u.gpu_hours > 0} == set(truth)
    states = {r["State"].split()[0] for r in rows if r["Start"] not in ("Unknown", "None", "")}
    got = set().union(*(u.jobs_by_state for u in tenant_usage(table, whole, now).values()))
    assert {"COMPLETED", "FAILED"} <= got <= states | {"CANCELLED"}


@pytest.mark.parametrize("release, version", RECORDED)
def test_money_and_limits_on_recorded_answers(release: str, version: str) -> None:
    index = json.loads((FIXTURES / release / "INDEX.json").read_text())
    body = json.loads((FIXTURES / release / f"{version}_jobs.json").read_text())
    assocs = json.loads((FIXTURES / release / f"{version}_associations.json").read_text())
    table = UsageTable.build(parse_jobs(body["jobs"]))
    now = float(index["recorded_at"])
    period = Period(float(index["period"]["since"]), float(index["period"]["until"]), "recorded")
    tenants = index["tenants"]
    rates = {"hku": 0.7, "cuhk": 0.35}
    book = PriceBook.of([TenantTerms(a, t["description"], rates.get(a, 0.0), 2.5)
                         for a, t in tenants.items()], currency="HKD")
    ch = charges(table, period, now, book)
    for acct, rate in rates.items():
        c = ch[acct]
        assert c.cost == pytest.approx(c.usage.gpu_hours * 2.5)
        assert c.net == pytest.approx(c.cost * (1 - rate))
    limits = account_limits(assocs.get("associations", []), index.get("cluster"))
    by = {q.name: q for q in quota_status(limits, table, now)}
    for acct, t in tenants.items():
        if t["gpus"] is not None:
            assert by[acct].gpus_limit == t["gpus"]
            assert by[acct].gpus_in_use is not None and by[acct].gpus_in_use <= t["gpus"]
