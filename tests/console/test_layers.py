"""The layering of the design (DESIGN.md, "Layers and what each may import"), checked on the
source: every import statement of every module, at any depth (lazy imports count too).

Rules, each a reason the layering exists:
- the model is the bottom: it imports nothing of the console;
- the core never imports the GUI (`widgets`), so it runs headless (the command line starts
  it, lazily);
- sources and the simulator feed the state; they never reach up into it, the engine, the
  fleet, the actions or the command line;
- the state, analytics, polling, actions and journal never reach up into the engine, the
  worker process, the fleet or the command line, and never into the simulator (the state must
  not know whether its data is simulated);
- a panel never imports another panel: panels talk through the navigator and the frames.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Imports that break a rule today, each with why it is tolerated until it is moved. The test
#: fails when one of them disappears, so the list only ever shrinks.
KNOWN: dict[tuple[str, str], str] = {
    ("console.state", "console.sim.site"):
        "the simulated cluster's rack and PDU layout is read by the state when the config names "
        "none; it belongs in the simulator's source updates",
}

UPPER = ("console.engine", "console.engine_process", "console.fleet", "console.cli")
RULES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    # (modules the rule is about, prefixes they must not import)
    (("console.model",), ("console.",)),
    (("console",), ("widgets",)),
    (("console.sources", "console.sim"),
     ("console.state", "console.analytics", "console.actions", "console.polling") + UPPER),
    (("console.state", "console.analytics", "console.polling", "console.actions",
      "console.journal"), ("console.sim", "console.sources.") + UPPER),
)
ALLOWED = {
    # the poller speaks the sources' error vocabulary, which lives in their base
    ("console.polling", "console.sources.base"),
    # the command line starts the GUI: lazily, only for the GUI and snapshot commands
    ("console.cli", "widgets"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            if node.module:
                yield base
            else:  # "from . import causes", "from console import sim": the names are modules
                yield from (f"{base}.{a.name}" for a in node.names)


def under(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def all_modules() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for top in ("console", "widgets"):
        for path in sorted((ROOT / top).rglob("*.py")):
            out[module_name(path)] = list(imports(path))
    return out


def violations(modules: dict[str, list[str]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs that break a rule, for a map of module -> its imports."""
    found: set[tuple[str, str]] = set()
    for mod, targets in modules.items():
        for subjects, banned in RULES:
            if not any(under(mod, s) for s in subjects):
                continue
            for target in targets:
                if any(mod == m and under(target, t) for m, t in ALLOWED):
                    continue
                if any(under(target, b) or (b.endswith(".") and target.startswith(b)) for b in banned):
                    if not under(target, mod):  # a package may import its own modules
                        found.add((mod, target))
        if under(mod, "widgets") and mod.endswith("_panel"):
            for target in targets:
                if under(target, "widgets") and target.endswith("_panel") and target != mod:
                    found.add((mod, target))
    return found


def test_the_core_keeps_its_layers() -> None:
    found = violations(all_modules())
    assert sorted(found - KNOWN.keys()) == []


def test_every_known_exception_still_exists_or_is_removed_from_the_list() -> None:
    assert sorted(KNOWN.keys() - violations(all_modules())) == []


def test_the_checker_catches_each_kind_of_breach() -> None:
    modules = {
        "console.model": ["numpy", "console.config"],
        "console.state": ["console.model", "console.sim.cluster", "console.engine"],
        "console.polling": ["console.sources.base"],
        "console.analytics.causes": ["console.sources.slurm"],
        "console.sources.slurm": ["console.sources.base", "console.state"],
        "console.sim.cluster": ["console.sim.jobs"],
        "console.engine": ["widgets.bridge"],
        "widgets.kpi_panel": ["widgets.theme", "widgets.jobs_panel"],
        "widgets.main_window": ["widgets.sources_panel"],
    }
    assert violations(modules) == {
        ("console.model", "console.config"),
        ("console.state", "console.sim.cluster"),
        ("console.state", "console.engine"),
        ("console.analytics.causes", "console.sources.slurm"),
        ("console.sources.slurm", "console.state"),
        ("console.engine", "widgets.bridge"),
        ("widgets.kpi_panel", "widgets.jobs_panel"),
    }


def test_lazy_and_relative_imports_are_seen(tmp_path: Path) -> None:
    pkg = tmp_path / "console" / "analytics"
    pkg.mkdir(parents=True)
    src = pkg / "x.py"
    src.write_text("def f():\n    from console.sim import cluster\n    from . import causes\n")
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        assert list(imports(src)) == ["console.sim", "console.analytics.causes"]
    finally:
        ROOT = old
