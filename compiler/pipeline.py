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
from collections.abc import Sequence
from pathlib import Path

from compiler import analyze, gcpause, load, typed, validate
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Stage:
    """The per-document stages' result of one run, kept to patch the next run's when few documents changed."""

    entries: list[_Entry]  # one per document, in document order
    resources: ResourceSet
    problems: list[Diagnostic]  # structural (typed) diagnostics
    per_resource: list[Diagnostic]  # validation diagnostics
    unique: bool  # no two documents defined the same resource (so no MW0011 and no replaced definitions)


class CheckCache:
    """Per-document results of the last run, by document content and place.

    A document is unchanged when it is the very same object (which the ParseCache hands out for an unchanged file)
    or when its file, place in the file and text are the same and its data is equal, so the unchanged documents of
    a changed file keep their resource objects too. What recent runs used is kept (at most about twice the last).
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, int, int, str], _Entry] = {}
        self._by_id: dict[int, _Entry] = {}  # the same entries by id() of their document (kept alive by them)
        self._validated: dict[Resource, list[Diagnostic]] = {}
        self._order: dict[tuple[str, str, str], int] = {}  # the last ResourceSet's order, by resource key
        self._current: list[_Entry] = []
        self._last: _Stage | None = None
        self.analysis = analyze.AnalyzeCache()
        self.hits = 0
        self.misses = 0

    def typed(self, documents: Sequence[Document]) -> list[tuple[list[Resource], list[Diagnostic]]]:
        entries: dict[int, _Entry] = {}
        out = []
        current: list[_Entry] = []
        by_id = self._by_id
        for doc in documents:
            entry = by_id.get(id(doc))
            if entry is not None and entry.doc is doc:  # the very object: the ParseCache's for an unchanged file
                self.hits += 1
                entries[id(doc)] = entry
                current.append(entry)
                out.append((entry.resources, entry.problems))
                continue
            key = (doc.file, doc.index, doc.line, doc.first_line, doc.text)
            entry = self._entries.get(key)
            if entry is None or (entry.doc is not doc and entry.doc.data != doc.data):
                self.misses += 1
                entry = _Entry(doc, *typed.document_resources(doc))
            else:
                self.hits += 1
            self._entries[key] = entry
            entries[id(doc)] = entry
            current.append(entry)
            out.append((entry.resources, entry.problems))
        self._by_id = entries
        self._current = current
        if len(self._entries) > 2 * len(entries) + 1000:  # drop what no run uses any more, now and then
            self._entries = {(e.doc.file, e.doc.index, e.doc.line, e.doc.first_line, e.doc.text): e
                             for e in entries.values()}
        return out

    def stage(self, documents: Sequence[Document]) -> tuple[ResourceSet, list[Diagnostic], list[Diagnostic]]:
        """Typed resources, structural and per-resource diagnostics of `documents`: the last run's, patched where
        a few documents changed their content (not the names they define), else merged and validated afresh."""
        pairs = self.typed(documents)
        stage = self._patched(self._current) if self._last is not None else None
        if stage is None:
            resources, problems = typed.merge(pairs)
            rset = self.resource_set(resources)
            unique = len(resources) == sum(len(found) for found, _ in pairs)
            stage = _Stage(self._current, rset, problems, self.validate(rset), unique)
        self._last = stage
        return stage.resources, stage.problems, stage.per_resource

    def _patched(self, entries: list[_Entry], limit: int = 64) -> _Stage | None:
        last = self._last
        if last is None or not last.unique or len(entries) != len(last.entries):
            return None
        changed = [at for at, (new, old) in enumerate(zip(entries, last.entries, strict=True)) if new is not old]
        if not changed:
            return last
        if len(changed) > limit:
            return None
        swaps: dict[Resource, Resource] = {}
        for at in changed:
            old, new = last.entries[at].resources, entries[at].resources
            if [r.key for r in old] != [r.key for r in new]:
                return None
            swaps.update(zip(old, new, strict=True))
        gone = {id(d) for at in changed for d in last.entries[at].problems}
        problems = [d for d in last.problems if id(d) not in gone] + [d for at in changed for d in entries[at].problems]
        gone = {id(d) for old in swaps for d in self._validated.pop(old, ())}
        fresh = [d for new in swaps.values() for d in self._validated.setdefault(new, validate.validate_one(new))]
        per_resource = [d for d in last.per_resource if id(d) not in gone] + fresh
        return _Stage(entries, last.resources.replaced(swaps), problems, per_resource, True)

    def resource_set(self, resources: Sequence[Resource]) -> ResourceSet:
        """The ResourceSet of `resources`; when they have the same keys as last time, in last time's order."""
        if len(resources) == len(self._order):
            slots: list[Resource | None] = [None] * len(resources)
            for res in resources:
                at = self._order.get(res.key)
                if at is None or slots[at] is not None:
                    break
                slots[at] = res
            else:
                return ResourceSet([res for res in slots if res is not None], presorted=True)
        rset = ResourceSet(resources)
        self._order = {res.key: at for at, res in enumerate(rset)}
        return rset

    def validate(self, resources: ResourceSet) -> list[Diagnostic]:
        validated: dict[Resource, list[Diagnostic]] = {}
        out: list[Diagnostic] = []
        for res in resources:
            found = self._validated.get(res)
            validated[res] = found if found is not None else validate.validate_one(res)
            out.extend(validated[res])
        self._validated = validated
        return out


def check_documents(documents: Sequence[Document], found: Sequence[Diagnostic] = (), files: int = 0, *,
                    check_cache: CheckCache | None = None) -> Checked:
    with gcpause.paused():  # see compiler.gcpause: millions of small acyclic objects
        if check_cache is None:
            resources, problems = typed.to_resources(documents)
            rset = ResourceSet(resources)
            per_resource = validate.validate(rset)
        else:
            rset, problems, per_resource = check_cache.stage(documents)
        analysis = analyze.analyze(rset, check_cache.analysis if check_cache is not None else None)
        diagnostics = [*found, *problems, *per_resource, *analysis]
        return Checked(rset, diag.sorted_unique(diagnostics), files)


def check(paths: Sequence[Path | str], *, extra_documents: Sequence[Document] = (),
          cache: ParseCache | None = None, check_cache: CheckCache | None = None) -> Checked:
    """Check a tree. Pass the same `cache` (parsing) and `check_cache` (typing, per-resource rules) to every run
    over revisions of one tree to redo only what changed."""
    with gcpause.paused():  # see compiler.gcpause: millions of small acyclic objects
        loaded = load.load(paths, cache=cache)
        return check_documents([*loaded.documents, *extra_documents], loaded.diagnostics, loaded.files,
                               check_cache=check_cache)
