"""Statements on a live site: ``aisc-console statements`` and ``statement`` with a config that
names the real stack's slurmrestd (slurmdbd behind it), checked against ``sacct``."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pypdf
import pytest

from console.accounting.periods import local_zone, month_of, month_period

from .live import REPO, Stack
from .test_accounting_live import sacct_gpu_hours


@pytest.fixture(scope="module")
def config_file(accounting_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    res = accounting_stack.script("config")
    assert res.returncode == 0, res.stderr
    p = tmp_path_factory.mktemp("statements") / "lab.toml"
    p.write_text(res.stdout)
    return p


def console(stack: Stack, config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AISC_", "SLURM_"))}
    env["AISC_SECRET_LAB_SLURM"] = stack.token
    env["XDG_DATA_HOME"] = str(config.parent / "data")
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run([sys.executable, "-m", "console.cli", *argv, "--config", str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_statements_match_sacct_for_this_month(accounting_stack: Stack, config_file: Path) -> None:
    month = month_of(time.time(), local_zone())
    since = month_period(month, local_zone()).since
    out = config_file.parent / "all.csv"
    before = sacct_gpu_hours(accounting_stack, since, time.time())
    res = console(accounting_stack, config_file, "statements", "--month", month, "--out", str(out))
    after = sacct_gpu_hours(accounting_stack, since, time.time())
    assert res.returncode == 0, res.stderr
    rows = {r["Account"]: r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))}
    assert set(before) <= set(rows), (before, rows)
    for acct, hours in before.items():
        mine = float(rows[acct]["GPU-hours"])
        # running jobs keep accruing between the two sacct calls: the statement lies between
        assert hours - 0.01 <= mine <= after[acct] + 0.01, (acct, hours, mine, after[acct])
        assert "period not over" in rows[acct]["Gaps"]


def test_a_tenant_statement_pdf_from_slurmdbd(accounting_stack: Stack, config_file: Path) -> None:
    month = month_of(time.time(), local_zone())
    account = next(iter(accounting_stack.info["accounting"]["tenants"]))
    out = config_file.parent / f"{account}.pdf"
    res = console(accounting_stack, config_file, "statement", "--tenant", account, "--month",
                  month, "--out", str(out))
    assert res.returncode == 0, res.stderr
    text = " ".join(pypdf.PdfReader(str(out)).pages[0].extract_text().split())
    assert f"(Slurm account {account})" in text and "Source: slurmdbd accounting" in text


def test_the_engine_reads_slurmdbd_and_puts_it_on_its_frames(
        accounting_stack: Stack, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from console.config import load_settings
    from console.engine import Engine, run_sync
    from console.secrets import SecretResolver

    monkeypatch.setenv("AISC_SECRET_LAB_SLURM", accounting_stack.token)
    monkeypatch.setenv("XDG_DATA_HOME", str(config_file.parent / "engine-data"))
    engine = Engine(load_settings(config_file), secrets=SecretResolver(None), detect=False)
    try:
        assert engine.accounting is not None and engine.accounting.name == "slurmdbd"
        since = month_period(month_of(time.time(), local_zone()), local_zone()).since
        before = sacct_gpu_hours(accounting_stack, since, time.time())
        view = engine.accounting.refresh()
        after = sacct_gpu_hours(accounting_stack, since, time.time())
        frame = run_sync(engine, 1)
        assert frame.accounting is view and view.error is None
        for acct, hours in before.items():
            mine = view.month[acct].usage.gpu_hours
            assert hours - 0.01 <= mine <= after[acct] + 0.01, (acct, hours, mine)
        assert engine.accounting.persist is not None and engine.accounting.persist.exists()
    finally:
        for s in engine.sources:
            s.close()
