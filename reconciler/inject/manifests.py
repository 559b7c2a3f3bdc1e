"""`meshward inject`'s editing of a YAML stream, as `istioctl kube-inject` does it: every workload document (or
workload item of a `kind: List`) gets the sidecar (sidecar.py), and everything else stays as it was written.

Documents injection does not change are copied byte for byte from the input (found by the parser's document start
marks); a changed document is written back with ruamel.yaml's round trip, which keeps its comments, key order and
quoting, with the indentation guessed from that document. So injecting an injected stream changes nothing.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections.abc import MutableMapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import DocumentStartEvent
from ruamel.yaml.util import load_yaml_guess_indent

from reconciler.inject import sidecar


class ManifestError(ValueError):
    """Input that cannot be injected: where (1-based) and why; `syntax` tells a YAML error from a workload
    Kubernetes would refuse."""

    def __init__(self, message: str, *, line: int, column: int, syntax: bool) -> None:
        super().__init__(message)
        self.line, self.column, self.syntax = line, column, syntax


@dataclasses.dataclass(frozen=True, slots=True)
class Injected:
    text: str
    decisions: tuple[tuple[str, sidecar.Decision], ...]  # ("Deployment web", decision) per workload document


def inject_stream(text: str, options: sidecar.Options) -> Injected:
    pieces = _pieces(text)
    out: list[str] = []
    decisions: list[tuple[str, sidecar.Decision]] = []
    for piece in pieces:
        doc = _load(piece)
        injected = _inject_objects(doc, piece, options)
        decisions += [(f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name', '')}", decision)
                      for obj, decision in injected if decision is not sidecar.Decision.NOT_A_WORKLOAD]
        changed = any(decision is sidecar.Decision.INJECTED for _, decision in injected)
        out.append(_dump(piece, doc) if changed else piece.text)
    return Injected("".join(out), tuple(decisions))


@dataclasses.dataclass(frozen=True, slots=True)
class _Piece:
    text: str  # the document as written, with the comments and separator before it
    first_line: int  # 0-based line of the piece's start in the stream


def _pieces(text: str) -> list[_Piece]:
    try:
        starts = [e.start_mark.index for e in YAML().parse(text) if isinstance(e, DocumentStartEvent)]
    except MarkedYAMLError as err:
        raise _syntax(err, 0) from None
    bounds = [0, *starts[1:], len(text)]
    return [_Piece(text[a:b], text.count("\n", 0, a)) for a, b in itertools.pairwise(bounds)]


def _load(piece: _Piece) -> Any:
    try:
        return YAML().load(piece.text)
    except MarkedYAMLError as err:
        raise _syntax(err, piece.first_line) from None


def _inject_objects(doc: Any, piece: _Piece, options: sidecar.Options
                    ) -> list[tuple[MutableMapping[str, Any], sidecar.Decision]]:
    decisions = []
    for obj in _objects(doc):
        try:
            decisions.append((obj, sidecar.inject(obj, options)))
        except sidecar.NotAPodSpec as err:
            line = getattr(obj, "lc", None)
            raise ManifestError(str(err), line=piece.first_line + (line.line if line else 0) + 1, column=1,
                                syntax=False) from None
    return decisions


def _objects(doc: Any) -> list[MutableMapping[str, Any]]:
    """The objects of a document: itself, or the items of a `kind: List` (what `kubectl get -o yaml` prints for
    more than one object)."""
    if not isinstance(doc, MutableMapping):
        return []
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        return [item for item in doc["items"] if isinstance(item, MutableMapping)]
    return [doc]


def _dump(piece: _Piece, doc: Any) -> str:
    _, indent, offset = load_yaml_guess_indent(piece.text)
    yaml = YAML()
    yaml.width = 1 << 16  # long strings (Envoy's bootstrap) on one line, as Kubernetes tools write them
    yaml.indent(mapping=indent or 2, sequence=(indent or 2) + (offset or 0), offset=offset or 0)
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    separator = "---\n" if piece.text.lstrip().startswith("---") else ""
    return separator + buffer.getvalue()


def _syntax(err: MarkedYAMLError, first_line: int) -> ManifestError:
    mark = err.problem_mark or err.context_mark
    line, column = (mark.line, mark.column) if mark is not None else (0, 0)
    return ManifestError(f"{err.problem or err.context or 'invalid YAML'}", line=first_line + line + 1,
                         column=column + 1, syntax=True)
