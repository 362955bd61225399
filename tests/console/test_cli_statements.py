"""``aisc-console statement`` and ``statements`` on the simulated cluster (nothing configured)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pypdf
import pytest

from console.accounting.periods import local_zone, month_of, previous_month
from console.cli import EXIT_USAGE, main

LAST_MONTH = previous_month(month_of(time.time(), local_zone()))
SIM = ["--demo", "--nodes", "24", "--faults", "none"]


def split_statement(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    head, table = text.split("\n\n")
    return dict(csv.reader(io.StringIO(head))), list(csv.DictReader(io.StringIO(table)))


def test_statement_csv_of_last_month_adds_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hku.csv"
    assert main(["statement", *SIM, "--tenant", "hku", "--month", LAST_MONTH, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out}: The University of Hong Kong, {LAST_MONTH}" in said
    fields, rows = split_statement(out.read_text(encoding="utf-8"))
    jobs, total = rows[:-1], rows[-1]
    assert len(jobs) == int(fields["Jobs"]) > 100
    cents = 0.01 * len(jobs)  # each row is rounded to the cent, the total is not
    assert sum(float(r["GPU-hours"]) for r in jobs) == pytest.approx(float(fields["GPU-hours"]), abs=cents)
    assert sum(float(r["List cost"]) for r in jobs) == pytest.approx(float(total["List cost"]), abs=cents)
    cost, subsidy, net = (float(fields[k]) for k in ("List cost", "Subsidy", "Net payable"))
    assert fields["Subsidy rate"] == "70 %" and subsidy == pytest.approx(0.7 * cost, abs=0.01)
    assert net == pytest.approx(cost - subsidy, abs=0.01)
    assert 24 * 8 * 28 * 24 > float(fields["GPU-hours"]) > 0  # never more than the machine has
    assert fields["Currency"] == "HKD"


def test_statements_csv_one_row_per_tenant_matching_the_tenant_statement(tmp_path: Path) -> None:
    all_csv, one = tmp_path / "all.csv", tmp_path / "one.csv"
    assert main(["statements", *SIM, "--month", LAST_MONTH, "--out", str(all_csv)]) == 0
    rows = list(csv.DictReader(all_csv.open(encoding="utf-8")))
    assert len(rows) == 15 and len({r["Account"] for r in rows}) == 15
    for r in rows:
        cost, rate, net = float(r["List cost"]), float(r["Subsidy rate %"]) / 100, float(r["Net payable"])
        assert net == pytest.approx(cost * (1 - rate), abs=0.01)
        assert r["Efficiency %"] != "" and r["Currency"] == "HKD"
    assert main(["statement", *SIM, "--tenant", "pearlriver", "--month", LAST_MONTH,
                 "--out", str(one)]) == 0
    fields, _ = split_statement(one.read_text(encoding="utf-8"))
    pearl = next(r for r in rows if r["Account"] == "pearlriver")
    assert pearl["GPU-hours"] == fields["GPU-hours"] and pearl["Net payable"] == fields["Net payable"]
    assert pearl["Subsidy rate %"] == "0" and pearl["Subsidy"] == "0.00"


def test_statement_pdf_has_pages_and_says_what_it_covers(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "hkgai.pdf"
    assert main(["statement", *SIM, "--tenant", "hkgai", "--month", LAST_MONTH, "--out", str(out)]) == 0
    pages = int(capsys.readouterr().out.split(" page")[0])
    reader = pypdf.PdfReader(str(out))
    assert len(reader.pages) == pages > 1
    first = " ".join(reader.pages[0].extract_text().split())
    assert "HK Generative AI R&D Centre (Slurm account hkgai)" in first
    assert f"Period: {LAST_MONTH}" in first and "Net payable" in first and "Gaps and caveats" in first
    last = " ".join(reader.pages[-1].extract_text().split())
    assert "Total" in last and f"page {pages} of {pages}" in last


@pytest.mark.parametrize("argv, words", [
    (["--tenant", "nobody", "--month", LAST_MONTH, "--out", "x.csv"], "no tenant 'nobody'"),
    (["--tenant", "hku", "--month", "2026-13", "--out", "x.csv"], "YYYY-MM"),
    (["--tenant", "hku", "--month", LAST_MONTH, "--out", "x.txt"], ".csv or .pdf"),
    (["--tenant", "hku", "--month", previous_month(previous_month(LAST_MONTH)), "--out", "x.csv"],
     "no accounting data for this period (data covers"),
])
def test_bad_requests_are_refused_in_words(argv: list[str], words: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["statement", *SIM, *argv]) == EXIT_USAGE
    assert words in capsys.readouterr().err
