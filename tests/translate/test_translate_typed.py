"""Translate reads the typed input models: `typing.Any` in its signatures would let mypy strict pass while checking
nothing there (fields validated and then dropped went unnoticed that way, issue 12)."""

from __future__ import annotations

import ast
from pathlib import Path

import compiler.translate

TRANSLATE = Path(compiler.translate.__file__).parent
# the reuse machinery, which moves out of translate (compiler/reuse, issue 12) and keeps its own hints
EXEMPT = {"carry.py"}


def _any_uses(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if (isinstance(node, ast.Name) and node.id == "Any")
            or (isinstance(node, ast.Attribute) and node.attr == "Any")
            or (isinstance(node, ast.ImportFrom) and any(a.name == "Any" for a in node.names))]


def test_translate_has_no_any() -> None:
    modules = [p for p in sorted(TRANSLATE.glob("*.py")) if p.name not in EXEMPT]
    found = {p.name: lines for p in modules if (lines := _any_uses(p))}
    assert found == {}, f"typing.Any in compiler/translate (use the compiler.api models): {found}"
