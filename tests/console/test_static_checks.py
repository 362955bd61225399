"""The linter and the type checker, run as tests so that `.ci/run` (the test suite) runs them.

Both take their settings from pyproject.toml: `ruff check` over the paths below with the rule
set of ``[tool.ruff.lint]``, and `mypy` over ``[tool.mypy] files``, strict on the engine
contract and the operator actions. A failure shows the tool's own output.

The exceptions in the config (files that broke a rule when the rule came in, modules not yet
type-clean) are checked too, so the lists only shrink: an entry that is no longer needed, or
that names a file or module that is gone, fails here with what to drop.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What the linter covers (the project's Python; `.venv` and build output are not ours).
LINTED = ("console", "widgets", "scripts", "benchmarks", "tests")
#: The modules the type checker holds to `--strict` (the engine contract and the actions).
STRICT = ("console.engine", "console.engine_process", "console.actions", "console.polling",
          "console.journal")


def _config() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _tool(name: str) -> list[str]:
    """The tool as installed in this interpreter's environment (the venv), never one on PATH."""
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"{name} is not installed in this environment: pip install -e '.[test]'")
    return [sys.executable, "-m", name]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_passes() -> None:
    out = _run([*_tool("ruff"), "check", "--output-format", "concise", *LINTED])
    if out.returncode != 0:
        pytest.fail(f"ruff check found problems:\n{out.stdout}{out.stderr}", pytrace=False)


def test_mypy_passes() -> None:
    out = _run(_tool("mypy"))
    report = out.stdout + out.stderr
    if out.returncode != 0:
        pytest.fail(f"mypy found problems:\n{report}", pytrace=False)
    # A module named in the config that mypy never saw (renamed, moved): its section, strict
    # ones included, silently stopped applying. mypy only notes it, so it is checked here.
    assert "unused section" not in report, f"the mypy config names modules it did not check:\n{report}"


def test_strict_modules_get_every_strict_flag() -> None:
    """`strict` is a whole-run option in mypy, so the strict modules list its flags: they must
    stay the full set `--strict` turns on, or "strict" would quietly mean less."""
    # As wide as it likes, so argparse does not wrap a flag's name across lines.
    help_text = subprocess.run([*_tool("mypy"), "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120, env={**os.environ, "COLUMNS": "10000"}).stdout
    marker = "Strict mode; enables the following flags:"
    line = next((ln for ln in help_text.splitlines() if marker in ln), "")
    flags = {f.replace("-", "_") for f in re.findall(r"--([a-z][a-z-]+)", line.partition(marker)[2])}
    assert flags, f"mypy --help no longer lists what --strict enables:\n{help_text}"
    mypy = _config()["tool"]["mypy"]
    overrides = [o for o in mypy["overrides"] if set(STRICT) <= set(o["module"])]
    assert len(overrides) == 1, "one override section must list every strict module"
    for_every_module = {"warn_redundant_casts", "warn_unused_ignores", "strict_equality"}
    on = {k for k, v in overrides[0].items() if v is True}
    on |= {k for k in for_every_module if mypy.get(k) is True}
    assert flags - on == set(), "flags of --strict missing for the strict modules"


def test_mypy_config_names_existing_modules() -> None:
    missing = []
    for override in _config()["tool"]["mypy"]["overrides"]:
        for module in override["module"]:
            top = module.split(".")[0]
            if top not in ("console", "widgets"):
                continue  # a third-party package
            base = ROOT.joinpath(*module.removesuffix(".*").split("."))
            if not (base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()):
                missing.append(module)
    assert missing == [], f"drop these from the mypy config, they no longer exist: {missing}"


def test_each_ruff_exception_is_still_needed() -> None:
    """Every file-by-file exception must still be hit, so fixing a file shrinks the list."""
    ignores: dict[str, list[str]] = _config()["tool"]["ruff"]["lint"]["per-file-ignores"]
    listed = {(path, code) for path, codes in ignores.items() if not path.startswith("!")
              for code in codes}
    gone = sorted({path for path, _ in listed if not (ROOT / path).is_file()})
    assert gone == [], f"drop these from [tool.ruff.lint.per-file-ignores], they are gone: {gone}"
    out = _run([*_tool("ruff"), "check", "--output-format", "json", "--exit-zero", "--no-cache",
                "--config", "lint.per-file-ignores = {}", *LINTED])
    assert out.returncode == 0, out.stderr
    found = {(Path(d["filename"]).resolve().relative_to(ROOT).as_posix(), d["code"])
             for d in json.loads(out.stdout)}
    unneeded = sorted(listed - found)
    if unneeded:
        pytest.fail("these files no longer break these rules; drop them from "
                    f"[tool.ruff.lint.per-file-ignores]: {unneeded}", pytrace=False)
