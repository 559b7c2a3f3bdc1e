"""One algorithm for every table sorted by name that a revision (or a proxy) derives from the last one: diff the
parts it was made of by identity, and put the changed parts' items in place of theirs, instead of sorting tens of
thousands of items again after a commit that changed one service (translate's outbound cluster tables and route
tables, emit's per-type resource tables).

A patch is exact or refused: the caller rebuilds when it returns None.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar, overload

_T = TypeVar("_T")

Swaps = Callable[[list[int]], Iterable[tuple[_T, _T]] | None]


@overload
def patch_sorted(table: Mapping[str, _T], name: Callable[[_T], str], old: Sequence[object], new: Sequence[object],
                 swaps: Swaps[_T], *, rebuild_past: int | None = 8) -> Mapping[str, _T] | None: ...


@overload
def patch_sorted(table: Sequence[_T], name: Callable[[_T], str], old: Sequence[object], new: Sequence[object],
                 swaps: Swaps[_T], *, rebuild_past: int | None = 8) -> Sequence[_T] | None: ...


def patch_sorted(table: Mapping[str, _T] | Sequence[_T], name: Callable[[_T], str], old: Sequence[object],
                 new: Sequence[object], swaps: Swaps[_T], *, rebuild_past: int | None = 8
                 ) -> Mapping[str, _T] | Sequence[_T] | None:
    """`table` (items with unique names in name order: a sequence, or a mapping by name) made from the parts `old`,
    patched to be made from the parts `new`: the places where `new` holds another object than `old` are the
    changed parts, and `swaps(changed)` gives the (old item, new item) pairs that replace each other in the table.
    `table` itself when no part changed. None (rebuild it) when the parts are not aligned (other lengths), more
    than 1/`rebuild_past` of them changed (sorting again then costs no more; None: patch however many changed),
    `swaps` gives None, a new item has another name than the one it replaces (the order may differ), or an old
    item is not the table's under its name (another part's item took the name)."""
    if len(old) != len(new):
        return None
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a is not b]
    if not changed:
        return table
    if rebuild_past is not None and len(changed) * rebuild_past > len(new):
        return None
    pairs = swaps(changed)
    if pairs is None:
        return None
    if isinstance(table, Mapping):
        return _by_name(dict(table), name, pairs)
    return _in_order(list(table), name, pairs)


def _by_name(table: dict[str, _T], name: Callable[[_T], str], pairs: Iterable[tuple[_T, _T]]) -> dict[str, _T] | None:
    for was, now in pairs:
        key = name(was)
        if name(now) != key or table.get(key) is not was:
            return None
        table[key] = now  # an existing key keeps its place: the order stays the names'
    return table


def _in_order(table: list[_T], name: Callable[[_T], str], pairs: Iterable[tuple[_T, _T]]) -> list[_T] | None:
    for was, now in pairs:
        key = name(was)
        at = bisect.bisect_left(table, key, key=name)  # a swap keeps the name: the order holds for the next
        if name(now) != key or at == len(table) or table[at] is not was:
            return None
        table[at] = now
    return table
