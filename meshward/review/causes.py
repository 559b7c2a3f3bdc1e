"""Which policy documents caused a change to a proxy's config.

The emitted config says where each route, cluster and filter chain came from (the `meshward` filter metadata,
compiler/emit/metadata.py); `describe` says which documents apply to a proxy (compiler/translate/describe.py). A
change is put down to the documents the two revisions hold differently (added, removed or edited, not merely moved)
among, first, the sources named on the changed piece (the innermost one on its path that names any), and failing
that, the documents that apply to the proxy (a Sidecar that narrows what a proxy sees names none of the clusters it
removes). A change neither explains is left unattributed rather than guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from compiler.emit.metadata import FILTER_METADATA_KEY
from compiler.resources import ResourceSet
from meshward.review.changes import Json, Step

Key = tuple[str, str, str]  # (kind, namespace, name)


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class DocRef:
    """A policy document: where it is (in the revision that still holds it) and what it is."""

    file: str
    line: int
    kind: str
    namespace: str
    name: str

    @property
    def key(self) -> Key:
        return (self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.kind} {self.namespace}/{self.name}"

    def to_json(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)


def changed_documents(before: ResourceSet, after: ResourceSet) -> dict[Key, DocRef]:
    """The documents the revisions hold differently, by key, placed where the after side has them (the before
    side's place for a deletion)."""
    old = {r.key: r for r in before}
    new = {r.key: r for r in after}
    out: dict[Key, DocRef] = {}
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None and a.doc.data == b.doc.data:
            continue
        res = b if b is not None else a
        assert res is not None
        out[key] = DocRef(res.doc.file, res.doc.line, *key)
    return out


def along(resource: Json, path: Sequence[Step]) -> list[Key]:
    """The sources of the innermost value on `path` (from the resource itself down) whose metadata names any; when
    none does, every source named anywhere inside the value the path leads to (a route config's routes)."""
    found: list[Key] = list(_named(resource))
    value = resource
    for step in path:
        value = step.into(value)
        if value is None:
            break
        found = list(_named(value)) or found
    if found:
        return found
    return list(dict.fromkeys(within(value if value is not None else resource)))


def _named(value: Json) -> Iterator[Key]:
    if not isinstance(value, dict):
        return
    meta = (value.get("metadata") or {}).get("filter_metadata", {}).get(FILTER_METADATA_KEY)
    if isinstance(meta, dict):
        for src in meta.get("sources") or [meta]:
            yield (str(src.get("kind")), str(src.get("namespace")), str(src.get("name")))


def within(value: Json) -> Iterator[Key]:
    """Every source named anywhere inside `value`."""
    if isinstance(value, dict):
        yield from _named(value)
        for k, v in value.items():
            if k != "metadata":
                yield from within(v)
    elif isinstance(value, list):
        for v in value:
            yield from within(v)


def attribute(named: Iterable[Key], applied: Callable[[], Iterable[Key]],
              changed: Mapping[Key, DocRef]) -> tuple[DocRef, ...]:
    """The changed documents among `named` (the piece's sources), else among `applied()` (the proxy's: asked only
    then, since `describe` walks the proxy's whole scope)."""
    hit = sorted({changed[k] for k in named if k in changed})
    if not hit:
        hit = sorted({changed[k] for k in applied() if k in changed})
    return tuple(hit)


def applied_keys(description: Mapping[str, Any]) -> list[Key]:
    """The documents `describe` says apply to a proxy (its JSON form), as keys."""
    return [(a["kind"], a["namespace"], a["name"]) for a in description.get("applied", ())]
