"""The package's layout is its architecture (issue 15): the units of `recruiter/` — each subpackage and each
loose module — import each other as a DAG, counting imports inside functions too (only `TYPE_CHECKING`
imports are left out), and the old module paths are gone (no re-export shims)."""

from __future__ import annotations

import ast
import importlib.util
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "recruiter"

# Where code lived before the move; none of these may come back as a shim.
OLD_MODULES = [
    "recruiter.health", "recruiter.web", "recruiter.api", "recruiter.callbacks", "recruiter.views",
    "recruiter.status", "recruiter.replay", "recruiter.replay_plan", "recruiter.replay_cli", "recruiter.backtest",
    "recruiter.backtest_cli", "recruiter.service", "recruiter.actions", "recruiter.ics", "recruiter.links",
    "recruiter.llm.schema", "recruiter.llm.triage", "recruiter.llm.rules", "recruiter.llm.draft",
    "recruiter.llm.template", "recruiter.mail.watcher", "recruiter.mail.sources", "recruiter.mail.compose",
    "recruiter.mail.drafts", "recruiter.mail.mailops", "recruiter.mail.outgoing", "recruiter.pipeline.ingest",
    "recruiter.pipeline.prefilter", "recruiter.pipeline.budget",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """A module's unit: ``recruiter.<subpackage>`` or the loose module ``recruiter.<name>``."""
    return ".".join(module.split(".")[:2])


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imported_modules(path: Path) -> Iterator[str]:
    """Every `recruiter` module ``path`` imports, at any depth, except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "recruiter")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                module = _module_name(path)
                package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "recruiter":
                continue
            for alias in node.names:  # `from recruiter.x import y`: y may be a module of its own
                candidate = f"{base}.{alias.name}"
                yield candidate if importlib.util.find_spec(base) and _is_module(candidate) else base


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def unit_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> unit it imports -> the modules that do."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        for target in imported_modules(path):
            a, b = unit_of(source), unit_of(target)
            if b == "recruiter" or a == b:
                continue
            graph.setdefault(a, {}).setdefault(b, set()).add(source)
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    """One cycle of the graph as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_units_of_the_package_import_each_other_as_a_dag() -> None:
    graph = unit_graph()
    assert len(graph) >= 10, sorted(graph)  # the walk found the package
    cycle = find_cycle(graph)
    if cycle is not None:
        steps = [f"{a} -> {b} (in {', '.join(sorted(graph[a][b]))})" for a, b in itertools.pairwise(cycle)]
        pytest.fail("import cycle between units:\n" + "\n".join(steps))


def test_the_cycle_finder_sees_imports_inside_functions_and_skips_type_checking(tmp_path: Path) -> None:
    """The check itself can fail: a cycle made by a function-level import is found, a TYPE_CHECKING one is not."""
    graph = {"recruiter.a": {"recruiter.b": {"recruiter.a.x"}}, "recruiter.b": {"recruiter.a": {"recruiter.b.y"}}}
    assert find_cycle(graph) == ["recruiter.a", "recruiter.b", "recruiter.a"]
    module = PACKAGE / "alerts" / "incidents.py"
    assert "recruiter.notify.telegram" in set(imported_modules(module))
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import recruiter.app\n"
                     "def f():\n    from recruiter.cli import common\n")
    found = set(imported_modules(probe))
    assert "recruiter.cli.common" in found and "recruiter.app" not in found


@pytest.mark.parametrize("old", OLD_MODULES)
def test_old_module_paths_are_gone(old: str) -> None:
    assert not _is_module(old), f"{old} is back: import it from its new place"
