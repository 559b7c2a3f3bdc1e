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
import itertools
import operator
from collections.abc import Iterable, Sequence
from pathlib import Path

from compiler import analyze, load, typed, validate
from compiler import diagnostics as diag
from compiler.diagnostics import Diagnostic
from compiler.load import Document, ParseCache
from compiler.resources import Resource, ResourceSet
from compiler.validate.values import ValueChecks


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
        self._entries: dict[tuple[str, int, int, int, str], _Entry] = {}  # by content and place (_content_key)
        self._documents: list[Document] = []  # the last run's documents, as given
        self._validated: dict[Resource, list[Diagnostic]] = {}
        self._order: dict[tuple[str, str, str], int] = {}  # the last ResourceSet's order, by resource key
        self._current: list[_Entry] = []
        self._last: _Stage | None = None
        self.analysis = analyze.AnalyzeCache()
        self._values = ValueChecks()  # checks of one value (hosts, durations...), for every revision
        self.hits = 0
        self.misses = 0

    def typed(self, documents: Sequence[Document]) -> list[tuple[list[Resource], list[Diagnostic]]]:
        """Each document's resources and structural diagnostics, the last run's where the document is unchanged."""
        return [(entry.resources, entry.problems) for entry in self._align(documents)]

    def _align(self, documents: Sequence[Document]) -> list[_Entry]:
        """The entries of `documents`. The runs of documents at the start and at the end that are the very objects
        of the last run (the ParseCache's, for unchanged files) keep their entries in C-level passes; only the
        documents between them are looked up one at a time."""
        last, entries = self._documents, self._current
        head = _common_run(documents, last, min(len(documents), len(last)))
        tail = _common_run(reversed(documents), reversed(last), min(len(documents), len(last)) - head)
        self.hits += head + tail
        middle, before = documents[head:len(documents) - tail], last[head:len(last) - tail]
        olds = entries[head:len(entries) - tail]
        if len(middle) == len(before):  # the same places: unchanged where the document is the same object
            fresh = [self._entry(doc, None) if doc is not prev else self._hit(entry)
                     for doc, prev, entry in zip(middle, before, olds, strict=True)]
        else:
            by_id = {id(prev): (prev, entry) for prev, entry in zip(before, olds, strict=True)}
            fresh = [self._entry(doc, by_id) for doc in middle]
        current = [*entries[:head], *fresh, *entries[len(entries) - tail:]]
        self._documents, self._current = list(documents), current
        if len(self._entries) > 2 * len(current) + 1000:  # drop what no run uses any more, now and then
            self._entries = {_content_key(entry.doc): entry for entry in current}
        return current

    def _hit(self, entry: _Entry) -> _Entry:
        self.hits += 1
        return entry

    def _entry(self, doc: Document, by_id: dict[int, tuple[Document, _Entry]] | None) -> _Entry:
        """`doc`'s entry: the last run's for the same object, else one for the same content, else a new one."""
        found = by_id.get(id(doc)) if by_id is not None else None
        if found is not None and found[0] is doc:
            return self._hit(found[1])
        key = _content_key(doc)
        entry = self._entries.get(key)
        if entry is None or (entry.doc is not doc and entry.doc.data != doc.data):
            self.misses += 1
            entry = self._entries[key] = _Entry(doc, *typed.document_resources(doc))
            return entry
        return self._hit(entry)

    def stage(self, documents: Sequence[Document]) -> tuple[ResourceSet, list[Diagnostic], list[Diagnostic]]:
        """Typed resources, structural and per-resource diagnostics of `documents`: the last run's, patched where
        a few documents changed their content (not the names they define), else merged and validated afresh."""
        entries = self._align(documents)
        stage = self._patched(entries) if self._last is not None else None
        if stage is None:
            pairs = [(entry.resources, entry.problems) for entry in entries]
            resources, problems = typed.merge(pairs)
            rset = self.resource_set(resources)
            unique = len(resources) == sum(len(found) for found, _ in pairs)
            stage = _Stage(entries, rset, problems, self.validate(rset), unique)
        self._last = stage
        return stage.resources, stage.problems, stage.per_resource

    def _patched(self, entries: list[_Entry], limit: int = 64) -> _Stage | None:
        last = self._last
        if last is None or not last.unique or len(entries) != len(last.entries):
            return None
        changed = list(itertools.compress(itertools.count(), map(operator.is_not, entries, last.entries)))
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
        fresh = [d for new in swaps.values() for d in self._validated.setdefault(new, validate.validate_one(new, self._values))]
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
            validated[res] = found if found is not None else validate.validate_one(res, self._values)
            out.extend(validated[res])
        self._validated = validated
        return out


def _content_key(doc: Document) -> tuple[str, int, int, int, str]:
    return (doc.file, doc.index, doc.line, doc.first_line, doc.text)


def _common_run(a: Iterable[object], b: Iterable[object], limit: int) -> int:
    """How many leading items of `a` and `b` (at most `limit`) are the same objects."""
    differs = map(operator.is_not, itertools.islice(a, limit), b)
    return next(itertools.compress(itertools.count(), differs), limit)


def check_documents(documents: Sequence[Document], found: Sequence[Diagnostic] = (), files: int = 0, *,
                    check_cache: CheckCache | None = None) -> Checked:
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
    loaded = load.load(paths, cache=cache)
    return check_documents([*loaded.documents, *extra_documents], loaded.diagnostics, loaded.files,
                           check_cache=check_cache)
