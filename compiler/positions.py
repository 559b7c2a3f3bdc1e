"""Field paths -> line and column, looked up lazily.

The fast loader keeps no positions. When a diagnostic needs one, the document's own text is parsed again with
ruamel.yaml's round-trip loader (which records line/column for every key and item) and the path is walked as far
as it exists. A `Locator` keeps the parse for the next question about the same document (a resource's several
diagnostics, a List's items); its owner decides how long.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from compiler.diagnostics import Position
from compiler.load import Document


def _round_trip(text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except Exception:  # noqa: BLE001 - positions are best effort; the fast loader already accepted this text
        return None


_UNPARSED = object()


class Locator:
    """Positions in one document, its text parsed at the first question only."""

    def __init__(self, doc: Document) -> None:
        self._doc = doc
        self._tree: Any = _UNPARSED

    def locate(self, path: Sequence[str | int]) -> Position:
        """Position of the deepest existing node along `path` (the key for mappings, the item for lists)."""
        doc = self._doc
        if self._tree is _UNPARSED:
            self._tree = _round_trip(doc.text) if doc.text else None
        node = self._tree
        line, column = doc.line - doc.first_line, 0
        for part in path:
            found = _step(node, part)
            if found is None:
                break
            node, (line, column) = found
        return Position(doc.file, doc.first_line + line, column + 1)


def locate(doc: Document, path: Sequence[str | int]) -> Position:
    """One question about a document (ask a `Locator` for several)."""
    return Locator(doc).locate(path)


def _step(node: Any, part: str | int) -> tuple[Any, tuple[int, int]] | None:
    if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
        line, column = node.lc.key(part)
        return node[part], (line, column)
    if isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
        line, column = node.lc.item(part)
        return node[part], (line, column)
    return None
