"""Emitted resources remembered by model value, so a resource is built and serialized once however many proxies
(and revisions) contain it.

Model objects are frozen dataclasses, so equal values hash equal: two sidecars of one namespace share their
outbound clusters, and after a commit that changed one VirtualService every other resource is found here instead
of being rebuilt. Sharing the very same `XdsResource` also shares its serialized bytes in memory.

Every kind of entry the emitter keeps is a method here (emit computes, this decides what to take from where): a
resource or a part by value, a type's table by identity then value then patched from the last one (`TableKind`
says what a table is made of), a proxy's snapshot by the identity of its tables. Emit asks through its
`compiler.emit.hooks.Reuse`, which `EmitMemo` satisfies without importing emit. The memo is generational (compiler.reuse.generations), which bounds its
memory to two revisions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from compiler.reuse.generations import MISSING, Generations
from compiler.reuse.patch import patch_sorted

_T = TypeVar("_T")
_I = TypeVar("_I")
_P = TypeVar("_P")
_R = TypeVar("_R")
_I_contra = TypeVar("_I_contra", contravariant=True)


class Part(enum.StrEnum):
    """What a value kept by `EmitMemo.part` is a part of (keys of different kinds never meet)."""

    ROUTE = "route"  # a route's encoding and the filters it configures, shared by ports' virtual hosts
    VHOST = "vhost"  # a virtual host's encoding and the filters its routes configure
    CLUSTER_SHAPE = "cluster-shape"  # an EDS cluster's bytes but name and metadata, shared by clusters of one policy
    CLUSTER_METADATA = "cluster-metadata"  # the metadata field of the clusters of one service


class EmitMemo(Generations):
    """Values (emitted resources, their parts, per-type tables, snapshots, consistency findings) by the model value
    they came from (compiler.reuse.generations: two revisions of memory at most)."""

    def resource(self, type_url: str, item: Hashable, make: Callable[[], _T]) -> _T:
        return self.get((type_url, item), make)

    def part(self, kind: Part, value: Hashable, make: Callable[[], _T]) -> _T:
        return self.get((kind, value), make)

    def table(self, type_url: str, items: tuple[_I, ...], kind: TableKind[_I, _R, _T]) -> _T:
        """The table of this very tuple (a proxy whose config object was carried over: keyed by identity, the entry
        keeping the tuple alive so that its id stays its own), else the table of equal items (keyed by value:
        hashing every item), else the last table made of this type and size patched (after a commit that changed
        one service of 10,000, its clusters replace theirs instead of 80,000 lookups and a sort), else
        `kind.make(items)`."""
        def by_value() -> _T:
            return self.get(("table", type_url, items), lambda: self._patched_or_made(type_url, items, kind))

        entry: tuple[tuple[_I, ...], _T] = self.get(("table-by-id", type_url, id(items)), lambda: (items, by_value()))
        # keep what a table is patched from findable for the next revision even when this one found the table
        # whole (the memo drops what a revision did not ask for): a commit that changes nothing of a type must not
        # make the next one that does re-encode all of it
        self.peek(("table-parts", type_url, len(items)))
        for place in kind.places(items):
            self.peek((*place[:2], "by-place", *place[2:]))
        return entry[1] if entry[0] is items else by_value()  # the second cannot happen while the entry holds items

    def _patched_or_made(self, type_url: str, items: tuple[_I, ...], kind: TableKind[_I, _R, _T]) -> _T:
        key = ("table-parts", type_url, len(items))
        before = self.peek(key)
        table = _patched(kind, items, *before) if before is not MISSING else None
        if table is None:
            table = kind.make(items)
        self.put(key, (items, table))
        return table

    def parts_by_place(self, kind: Part, name: str, items: Sequence[_I], make: Callable[[_I], _P]) -> tuple[_P, ...]:
        """`make(item)` for each of `items` (a table's members, such as a route table's virtual hosts), taking the
        part of the last table of this kind, name and size whose member at the same place is the same object: a
        table patched from it (translate.vhosts keeps unchanged members) re-encodes the changed ones only, without
        a lookup (and a hash) per member."""
        key = (kind, "by-place", name, len(items))
        before = self.peek(key)
        if before is MISSING:
            parts = tuple(make(item) for item in items)
        else:
            old_items, old_parts = before
            parts = tuple(part if old is item else make(item)
                          for item, old, part in zip(items, old_items, old_parts, strict=True))
        self.put(key, (items, parts))
        return parts

    def snapshot(self, tables: tuple[object, ...], make: Callable[[], _T]) -> _T:
        """A proxy's snapshot by the identities of its tables: proxies (and revisions) with the same tables get
        the same Snapshot object, so the cache has nothing to push. The entry holds the tables, so no id can be
        reused while it exists."""
        entry: tuple[tuple[object, ...], _T] = self.get(("snapshot", tuple(map(id, tables))), lambda: (tables, make()))
        return entry[1]

    def consistency(self, version: str, check: Callable[[], _T]) -> _T:
        """A snapshot's consistency findings, once per content version (a consistent snapshot stays consistent)."""
        return self.get(("consistency", version), check)


class TableKind(Protocol[_I_contra, _R, _T]):
    """What `EmitMemo.table` must know of a type's table (resources by name, in name order) to patch one."""

    def make(self, items: tuple[_I_contra, ...]) -> _T:
        """The table of `items`, from nothing."""
        ...

    def emit(self, items: Sequence[_I_contra]) -> list[_R]:
        """The resources of `items`, one per item, in their order."""
        ...

    def item_name(self, item: _I_contra) -> str: ...

    def resources(self, table: _T) -> Mapping[str, _R]: ...

    def resource_name(self, resource: _R) -> str: ...

    def sorted(self, resources: dict[str, _R]) -> _T:
        """The table of these resources, already in name order."""
        ...

    def places(self, items: tuple[_I_contra, ...]) -> Iterable[tuple[Part, str, int]]:
        """The `parts_by_place` entries (kind, name, size) the resources of `items` are written from: kept for the
        next revision with the table."""
        ...


def _patched(kind: TableKind[_I, _R, _T], items: tuple[_I, ...], old_items: tuple[_I, ...], old: _T) -> _T | None:
    """`old` with the resources of the items that differ (by identity, place by place) emitted again, when few
    differ and keep their names (compiler.reuse.patch); None: make the table anew."""
    resources = kind.resources(old)
    if len(resources) != len(old_items):
        return None  # two items of one name: the table is not one resource per item

    def swaps(changed: list[int]) -> list[tuple[_R, _R]]:
        emitted = kind.emit([items[i] for i in changed])
        return [(resources[kind.item_name(old_items[i])], res) for i, res in zip(changed, emitted, strict=True)]

    patched = patch_sorted(resources, kind.resource_name, old_items, items, swaps)
    if patched is None or patched is resources:  # too much changed, or nothing
        return None if patched is None else old
    assert isinstance(patched, dict)  # a patched table is a new dict
    return kind.sorted(patched)
