"""Stage 1 as one call: files -> documents -> typed resources -> per-resource rules -> cross-resource analyzers.

Every step collects diagnostics; a document that fails structurally yields no resource, so later steps only see
well-formed objects. Analyzers run even when some documents failed, so one run reports everything it can.

A `CheckCache` shared across runs keeps what depends on one document alone (its typed resources, their structural
and per-resource diagnostics), so after one file changed only that file's documents are typed and validated again;
it also carries an `analyze.AnalyzeCache`, with which the per-resource analyzers re-run only for changed resources
(while the kinds they look up are unchanged) and the cross-resource ones see the whole revision.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from compiler import analyze, load, typed, validate
from compiler import diagnostics as diag
from compiler.diagnostics import Diagnostic
from compiler.load import Document, ParseCache
from compiler.resources import Resource, ResourceSet


@dataclasses.dataclass(frozen=True)
class Checked:
    resources: ResourceSet
    diagnostics: list[Diagnostic]
    files: int

    @property
    def ok(self) -> bool:
        return not diag.has_errors(self.diagnostics)


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    doc: Document
    resources: list[Resource]
    problems: list[Diagnostic]


class CheckCache:
    """Per-document results of the last run, by document content and place.

    A document is unchanged when its file, place in the file and text are (and, unless it is the very same object,
    which the ParseCache hands out for an unchanged file, its data is equal), so the unchanged documents of a changed
    file keep their resource objects too. Only what the last run used is kept.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, int, int, str], _Entry] = {}
        self._validated: dict[Resource, list[Diagnostic]] = {}
        self.analysis = analyze.AnalyzeCache()
        self.hits = 0
        self.misses = 0

    def typed(self, documents: Sequence[Document]) -> list[tuple[list[Resource], list[Diagnostic]]]:
        entries: dict[tuple[str, int, int, int, str], _Entry] = {}
        out = []
        for doc in documents:
            key = (doc.file, doc.index, doc.line, doc.first_line, doc.text)
            entry = self._entries.get(key)
            if entry is None or (entry.doc is not doc and entry.doc.data != doc.data):
                self.misses += 1
                entry = _Entry(doc, *typed.document_resources(doc))
            else:
                self.hits += 1
            entries[key] = entry
            out.append((entry.resources, entry.problems))
        self._entries = entries
        return out

    def validate(self, resources: ResourceSet) -> list[Diagnostic]:
        validated: dict[Resource, list[Diagnostic]] = {}
        out: list[Diagnostic] = []
        for res in resources:
            found = self._validated.get(res)
            validated[res] = found if found is not None else validate.validate_one(res)
            out.extend(validated[res])
        self._validated = validated
        return out


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Checking allocates hundreds of thousands of small acyclic objects; the cyclic collector would walk the
    growing heap again and again (a third of the run at 10,000 services) and find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_documents(documents: Sequence[Document], found: Sequence[Diagnostic] = (), files: int = 0, *,
                    check_cache: CheckCache | None = None) -> Checked:
    with _no_cyclic_gc():
        if check_cache is None:
            resources, problems = typed.to_resources(documents)
            rset = ResourceSet(resources)
            per_resource = validate.validate(rset)
        else:
            resources, problems = typed.merge(check_cache.typed(documents))
            rset = ResourceSet(resources)
            per_resource = check_cache.validate(rset)
        analysis = analyze.analyze(rset, check_cache.analysis if check_cache is not None else None)
        diagnostics = [*found, *problems, *per_resource, *analysis]
        return Checked(rset, diag.sorted_unique(diagnostics), files)


def check(paths: Sequence[Path | str], *, extra_documents: Sequence[Document] = (),
          cache: ParseCache | None = None, check_cache: CheckCache | None = None) -> Checked:
    """Check a tree. Pass the same `cache` (parsing) and `check_cache` (typing, per-resource rules) to every run
    over revisions of one tree to redo only what changed."""
    with _no_cyclic_gc():
        loaded = load.load(paths, cache=cache)
        return check_documents([*loaded.documents, *extra_documents], loaded.diagnostics, loaded.files,
                               check_cache=check_cache)
