"""Sorted tables made of per-item parts (a sidecar's outbound clusters and load assignments: one part per service),
derived from the previous revision's instead of made again: kept whole while every input is the same object, else
the parts of unchanged items kept and the tables patched (compiler.reuse.patch) or sorted again.

The stage says what a table is made of (`Recipe`); this module decides what is still valid. An item's part
depends on the item and on what `depends` looks up for it in `Keyed` tables; the keys whose lookups may find
something else are those whose entries are other objects than the previous revision's (`changed_keys`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from compiler.reuse.patch import patch_sorted

_I = TypeVar("_I")
_D = TypeVar("_D")
_P = TypeVar("_P", bound=tuple[tuple[object, ...], ...])  # per table, the part's items
_T = TypeVar("_T", bound=tuple[tuple[object, ...], ...])  # the sorted tables
_I_contra = TypeVar("_I_contra", contravariant=True)
_T_co = TypeVar("_T_co", bound=tuple[tuple[object, ...], ...], covariant=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Keyed:
    """Lookup tables by key (a revision's DestinationRules: the whole table, its entries by host then namespace,
    its wildcard-host entries by namespace), compared with another revision's by identity."""

    whole: object
    by_key: Mapping[str, Mapping[str, Sequence[object]]]
    wildcard: Mapping[str, Sequence[object]]


def changed_keys(before: Keyed, now: Keyed) -> set[str] | None:
    """The keys whose entries are other objects in `now` than in `before`, or None when a wildcard entry changed
    (those apply to any number of keys)."""
    if before.whole is now.whole:
        return set()
    if not _same_lists(before.wildcard, now.wildcard):
        return None
    old, new = before.by_key, now.by_key
    return {k for k in old.keys() | new.keys() if k not in old or k not in new or not _same_lists(old[k], new[k])}


def _same_lists(a: Mapping[str, Sequence[object]], b: Mapping[str, Sequence[object]]) -> bool:
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(x is y for x, y in zip(a[k], b[k], strict=True)) for k in a)


class Recipe(Protocol[_I_contra, _D, _P, _T_co]):
    """What a table is made of: each item's part from the item and what it looks up, the tables from the parts."""

    @property
    def lookups(self) -> Keyed:
        """The tables `depends` reads."""
        ...

    @property
    def fixed(self) -> tuple[object, ...]:
        """Whatever else every part depends on (another object: every part is made again)."""
        ...

    @property
    def names(self) -> tuple[Callable[[Any], str], ...]:
        """Per table, its items' names (the order it is sorted in)."""
        ...

    def key(self, item: _I_contra) -> str:
        """The key of `lookups` under which `depends` finds the item's dependency."""
        ...

    def depends(self, item: _I_contra) -> _D: ...

    def part(self, item: _I_contra, dep: _D) -> _P: ...

    def tables(self, parts: Sequence[_P]) -> _T_co:
        """The tables from nothing but the parts, one per name and sorted by name."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Kept(Generic[_I, _D, _P, _T]):
    """A table with what it was made from, kept for the next revision."""

    lookups: Keyed
    fixed: tuple[object, ...]
    items: tuple[_I, ...]
    deps: tuple[_D, ...]  # per item, what its part was made with
    parts: tuple[_P, ...]  # per item
    tables: _T


def made(items: Sequence[_I], recipe: Recipe[_I, _D, _P, _T]) -> _T:
    """The tables without reuse."""
    return recipe.tables([recipe.part(item, recipe.depends(item)) for item in items])


def kept_or_made(before: Kept[_I, _D, _P, _T] | None, items: Sequence[_I], recipe: Recipe[_I, _D, _P, _T]
                 ) -> Kept[_I, _D, _P, _T]:
    """`before` while its items, lookup tables and fixed inputs are the same objects (a commit that changed a
    VirtualService); else the tables with the parts of the items nothing reached kept."""
    if before is not None and (len(before.fixed) != len(recipe.fixed) or any(
            a is not b for a, b in zip(before.fixed, recipe.fixed, strict=True))):
        before = None
    if (before is not None and before.lookups.whole is recipe.lookups.whole and len(before.items) == len(items)
            and all(a is b for a, b in zip(before.items, items, strict=True))):
        return before
    deps, parts = _parts(before, items, recipe)
    patched = _patched(before, parts, recipe) if before is not None else None
    return Kept(recipe.lookups, recipe.fixed, tuple(items), deps, parts,
                patched if patched is not None else recipe.tables(parts))


def _parts(before: Kept[_I, _D, _P, _T] | None, items: Sequence[_I], recipe: Recipe[_I, _D, _P, _T]
           ) -> tuple[tuple[_D, ...], tuple[_P, ...]]:
    # an item at the same place, the same object, whose key no lookup change reached, keeps its dependency and
    # part without looking up; one found elsewhere keeps its part when the lookup finds what it found
    aligned = before is not None and len(before.items) == len(items)
    changed = changed_keys(before.lookups, recipe.lookups) if before is not None else None
    earlier: dict[int, tuple[_I, _D, _P]] | None = None
    deps: list[_D] = []
    parts: list[_P] = []
    for i, item in enumerate(items):
        if aligned and before is not None and before.items[i] is item and changed is not None \
                and recipe.key(item) not in changed:
            deps.append(before.deps[i])
            parts.append(before.parts[i])
            continue
        if earlier is None:
            earlier = {id(x): (x, d, p) for x, d, p in zip(before.items, before.deps, before.parts, strict=True)} \
                if before is not None else {}
        seen = earlier.get(id(item))
        if seen is not None and seen[0] is not item:
            seen = None
        dep = recipe.depends(item)
        parts.append(seen[2] if seen is not None and seen[1] is dep else recipe.part(item, dep))
        deps.append(dep)
    return tuple(deps), tuple(parts)


def _patched(before: Kept[_I, _D, _P, _T], parts: Sequence[_P], recipe: Recipe[_I, _D, _P, _T]) -> _T | None:
    """`before`'s sorted tables with the changed parts' items put in place of theirs, else None (sort again)."""
    out: list[tuple[Any, ...]] = []
    for k, (table, name) in enumerate(zip(before.tables, recipe.names, strict=True)):
        patched = patch_sorted(table, name, before.parts, parts, functools.partial(_swaps, before.parts, parts, k=k))
        if patched is None:
            return None
        out.append(tuple(patched))
    return tuple(out)  # type: ignore[return-value]  # the shape of `before.tables`, table by table


def _swaps(old: Sequence[_P], new: Sequence[_P], changed: list[int], *, k: int) -> list[tuple[Any, Any]] | None:
    """Each changed part's items of table `k` with its earlier items, place by place (None when it has more or
    fewer)."""
    pairs: list[tuple[Any, Any]] = []
    for i in changed:
        was, now = old[i][k], new[i][k]
        if len(was) != len(now):
            return None
        pairs.extend(zip(was, now, strict=True))
    return pairs
