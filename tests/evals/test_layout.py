"""evals/ only measures: it imports nothing from ui/ and uses the library through its public facade."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EVALS = Path(__file__).resolve().parents[2] / "evals"
MODULES = sorted(EVALS.glob("*.py"))
#: Knowledge-base attributes that are internals (the facade has kb.articles(), kb.index_info(), ...).
INTERNAL_KB_ATTRIBUTES = {"searcher", "store", "answerer", "_searcher"}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_evals_never_imports_ui(path: Path) -> None:
    imported = _imports(ast.parse(path.read_text(encoding="utf-8")))
    assert not {m for m in imported if m == "ui" or m.startswith("ui.")}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_evals_uses_the_public_facade(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reached = [
        f"line {node.lineno}: kb.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in INTERNAL_KB_ATTRIBUTES
        and isinstance(node.value, ast.Name)
        and node.value.id in {"kb", "builder"}
    ]
    assert not reached
    assert not {m for m in _imports(tree) if m in {"rag.text", "rag.retrieve", "rag.rewrite", "rag.models", "rag.lexical"}}
