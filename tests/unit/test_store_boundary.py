"""Where SQL lives: only recruiter/store/ imports SQLAlchemy (counting imports inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

import recruiter

PACKAGE = Path(recruiter.__file__).parent


def _imports_sqlalchemy(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "sqlalchemy" or name.startswith("sqlalchemy.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_store_imports_sqlalchemy() -> None:
    outside = {
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in PACKAGE.rglob("*.py") if "store" not in path.relative_to(PACKAGE).parts[:1]
        for line in _imports_sqlalchemy(path.read_text(encoding="utf-8"))
    }
    assert not outside, f"SQLAlchemy outside recruiter/store/: {sorted(outside)}"


def test_the_check_sees_imports_inside_functions() -> None:
    assert _imports_sqlalchemy("def f():\n    from sqlalchemy.orm import undefer\n") == [2]
    assert _imports_sqlalchemy("import sqlalchemy as sa\n") == [1]
    assert _imports_sqlalchemy("from recruiter.store import sqlalchemy_free\nimport sqlalchemyish\n") == []
