"""The dependency rule of docs/architecture.md, checked from the code's own imports.

Every import counts: module level, inside functions, and under ``TYPE_CHECKING``. The test
reads the source with :mod:`ast` (nothing is imported), so a later change cannot quietly
break the layering or bring back a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "consent", "publishing", "board", "service", "web", "commands")

# What each top-level package may import of the project (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "pipeline": frozenset(),
    "consent": frozenset(),
    "publishing": frozenset({"pipeline", "consent"}),
    "board": frozenset({"pipeline", "consent"}),
    "service": frozenset({"publishing", "pipeline", "consent"}),
    "web": frozenset({"service", "publishing", "board", "pipeline", "consent"}),
    "commands": frozenset({"web", "service", "publishing", "board", "pipeline", "consent"}),
    "cli": frozenset({"commands"}),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {"cli": ROOT / "cli.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            found[module_name(path)] = path
    return found


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``name`` imports, wherever in the file the import stands."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [f"{stem}.{alias.name}" for alias in node.names]
            targets = [t for t in targets if t in known] or [stem]
        else:
            continue
        for target in targets:
            hit = resolve(target)
            if hit and hit != name:
                out.add(hit)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def top(module: str) -> str:
    return module.partition(".")[0]


def test_every_package_imports_only_what_the_rule_allows(graph):
    broken = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if top(target) != top(name) and top(target) not in ALLOWED[top(name)]
    )
    assert broken == []


def test_nothing_imports_commands_but_cli(graph):
    assert (
        sorted(
            f"{name} imports {target}"
            for name, targets in graph.items()
            for target in targets
            if top(target) == "commands" and top(name) not in ("commands", "cli")
        )
        == []
    )


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles(graph):
    # A package's __init__ importing its own modules would be a cycle with any module that
    # imports the package; none of ours does, so every edge counts.
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_rule_check_sees_function_level_and_type_only_imports(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from consent.store import Store\n"
        "def f():\n    from publishing import publish\n"
    )
    known = {"consent.store", "publishing", "publishing.publish", "pipeline.mod"}
    assert imported_modules("pipeline.mod", source, known) == {
        "consent.store",
        "publishing.publish",
    }
