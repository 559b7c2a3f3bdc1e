"""Incremental analysis: per-resource analyzer results and indexes kept from the previous run.

An analyzer listed in `compiler.analyze.PER_RESOURCE` reports on one resource at a time (every diagnostic names
it) and looks up only the kinds it declares. So while those kinds hold the very same resource objects as in the
previous run (the CheckCache hands out the same objects for unchanged documents), its diagnostics for an unchanged
resource are the previous ones, and it runs only on a context narrowed to the new or changed resources. Anything
that does not fit (a diagnostic naming no narrowed resource) makes that analyzer run in full, uncached.
The analyzers that always see the whole revision get their per-resource parts (`Context.memoized`) from the
previous run's memos, which are right for as long as the resource object is the same.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Sequence
from typing import Any

from compiler.analyze.context import INDEXES, MEMO, Analyzer, Context
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource, ResourceSet

_BUILT_FROM = "_built_from"
_NONE: tuple[Diagnostic, ...] = ()  # a resource's diagnostics when there are none (shared: never mutated)


@dataclasses.dataclass(frozen=True, slots=True)
class _Run:
    looked_up: tuple[Any, ...]  # what the analyzer's lookups saw: resource lists, or the namespace set
    diagnostics: dict[Resource, Sequence[Diagnostic]]
    subjects: list[Resource]
    flat: list[Diagnostic]


@dataclasses.dataclass(frozen=True, slots=True)
class _Whole:
    read: tuple[Sequence[Resource], ...]
    diagnostics: list[Diagnostic]


class AnalyzeCache:
    """Pass the same one to `analyze` for every revision of one tree."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._wholes: dict[str, _Whole] = {}
        self._indexes: dict[str, tuple[tuple[Sequence[Resource], ...], Any]] = {}
        self._memos: dict[str, dict[Resource, Any]] = {}  # Context.memoized's tables, by resource object
        self.reused = 0
        self.analyzed = 0

    def context(self, resources: ResourceSet) -> Context:
        """A context for `resources` whose indexes start from the previous run's where their kinds are unchanged."""
        ctx = Context(resources)
        kept: dict[str, tuple[Sequence[Resource], ...]] = {}
        for name, (kinds, _) in INDEXES.items():
            now = tuple(resources.of_kind(kind) for kind in kinds)
            before = self._indexes.get(name)
            if before is not None and _same(before[0], now):
                ctx.indexes[name] = before[1]
            kept[name] = now
        ctx.indexes[_BUILT_FROM] = kept  # kept with the context: runs in other threads have their own
        ctx.indexes[MEMO] = {name: dict(table) for name, table in self._memos.items()}
        return ctx

    def remember_indexes(self, ctx: Context) -> None:
        """Keep the indexes `ctx` built, with the resources they were built from, for the next run."""
        kept: dict[str, tuple[Sequence[Resource], ...]] = ctx.indexes[_BUILT_FROM]
        self._indexes = {name: (kinds, ctx.indexes[name]) for name, kinds in kept.items() if name in ctx.indexes}
        memos: dict[str, dict[Resource, Any]] = ctx.indexes.get(MEMO, {})
        limit = 2 * len(ctx.resources) + 1000
        self._memos = {name: table if len(table) <= limit else {res: table[res] for res in ctx.resources if res in table}
                       for name, table in memos.items()}  # a table grown past the revision keeps only its part

    def run(self, name: str, analyzer: Analyzer, ctx: Context, kinds: tuple[str, ...],
            looks_up: tuple[str, ...]) -> list[Diagnostic]:
        subjects = list(itertools.chain.from_iterable(ctx.of_kind(kind) for kind in kinds))
        if not subjects:
            self._runs.pop(name, None)
            return []
        looked_up = tuple(frozenset(ctx.resources.namespaces()) if kind == "namespaces" else ctx.of_kind(kind)
                          for kind in looks_up)
        before = self._runs.get(name)
        if before is not None and _same(before.looked_up, looked_up) and _same((before.subjects,), (subjects,)):
            self.reused += len(subjects)
            return before.flat
        known = before.diagnostics if before is not None and _same(before.looked_up, looked_up) else {}
        fresh = list(itertools.filterfalse(known.__contains__, subjects))
        found = _by_resource(analyzer, ctx, kinds, fresh) if fresh else {}
        if found is None:
            self._runs.pop(name, None)
            return list(analyzer(ctx))
        self.reused += len(subjects) - len(fresh)
        self.analyzed += len(fresh)
        # the known ones of resources gone stay for a while: still right while the looked-up kinds are the same
        diagnostics = dict(known) if len(known) <= 2 * len(subjects) + 1000 else {res: known[res] for res in subjects
                                                                                   if res in known}
        if found:
            diagnostics.update((res, found.get(res.origin, _NONE)) for res in fresh)
        else:  # the usual case, nothing about any of them: one C-level pass (a cold run has ~100k subjects)
            diagnostics.update(dict.fromkeys(fresh, _NONE))
        flat = list(itertools.chain.from_iterable(map(diagnostics.__getitem__, subjects)))
        self._runs[name] = _Run(looked_up, diagnostics, subjects, flat)
        return flat

    def run_whole(self, name: str, analyzer: Analyzer, ctx: Context, reads: tuple[str, ...]) -> list[Diagnostic]:
        """A cross-resource analyzer that reads only the kinds `reads`: its last output while they are unchanged."""
        read = tuple(ctx.of_kind(kind) for kind in reads)
        before = self._wholes.get(name)
        if before is not None and _same(before.read, read):
            return before.diagnostics
        diagnostics = list(analyzer(ctx))
        self._wholes[name] = _Whole(read, diagnostics)
        return diagnostics


def _by_resource(analyzer: Analyzer, ctx: Context, kinds: tuple[str, ...],
                 fresh: list[Resource]) -> dict[str, list[Diagnostic]] | None:
    """The analyzer's diagnostics for `fresh` only, by resource origin; None when one names no fresh resource."""
    if len(kinds) == 1:  # the subjects, so `fresh`, are all of that kind
        narrowed = ctx.restricted({kinds[0]: fresh})
    else:
        narrowed = ctx.restricted({kind: [res for res in fresh if res.kind == kind] for kind in kinds})
    origins: set[str] | None = None  # built on the first diagnostic: most analyzers find nothing
    out: dict[str, list[Diagnostic]] = {}
    for found in analyzer(narrowed):
        if origins is None:
            origins = {res.origin for res in fresh}
        if found.resource not in origins:
            return None
        out.setdefault(found.resource, []).append(found)
    return out


def _same(before: tuple[Any, ...], now: tuple[Any, ...]) -> bool:
    """The same resource objects in the same order (or equal namespace sets)."""
    for old, new in zip(before, now, strict=True):
        if isinstance(old, frozenset):
            if old != new:
                return False
        elif len(old) != len(new) or not all(map(operator.is_, old, new)):
            return False
    return True
