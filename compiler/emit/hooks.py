"""What emit asks of a reuse layer, and what it gets when there is none.

Emit is a function of the model alone; whatever one proxy (or revision) may take from another is asked through a
`Reuse` passed in (`compiler.reuse.memo.EmitMemo` is one, matched structurally: the reuse layer does not import
emit). `NO_REUSE` makes every value again, so the emitter can be read and tested without any reuse: the cold path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar

from compiler.reuse.memo import Part, TableKind
from meshxds.snapshot import Snapshot, TypeTable, XdsResource

_T = TypeVar("_T")
_I = TypeVar("_I")
_P = TypeVar("_P")
_Item = TypeVar("_Item", bound=Hashable)


class Reuse(Protocol):
    def resource(self, type_url: str, item: Hashable, make: Callable[[], XdsResource]) -> XdsResource:
        """`make()`: the resource emitted from this model value."""
        ...

    def part(self, kind: Part, value: Hashable, make: Callable[[], _T]) -> _T:
        """`make()`: a part of resources (an encoded route, a cluster's shape) emitted from this model value."""
        ...

    def table(self, type_url: str, items: tuple[_Item, ...], kind: TableKind[_Item, XdsResource, TypeTable]
              ) -> TypeTable:
        """`kind.make(items)`: one type's table of a proxy."""
        ...

    def parts_by_place(self, kind: Part, name: str, items: Sequence[_I], make: Callable[[_I], _P]
                       ) -> tuple[_P, ...]:
        """`make(item)` for each of the members of one table (a route table's virtual hosts)."""
        ...

    def snapshot(self, tables: tuple[object, ...], make: Callable[[], Snapshot]) -> Snapshot:
        """`make()`: a proxy's snapshot of these tables."""
        ...


class NoReuse:
    """Every value made again: the emitter as a plain function of the model."""

    def resource(self, type_url: str, item: Hashable, make: Callable[[], XdsResource]) -> XdsResource:
        return make()

    def part(self, kind: Part, value: Hashable, make: Callable[[], _T]) -> _T:
        return make()

    def table(self, type_url: str, items: tuple[_Item, ...], kind: TableKind[_Item, XdsResource, TypeTable]
              ) -> TypeTable:
        return kind.make(items)

    def parts_by_place(self, kind: Part, name: str, items: Sequence[_I], make: Callable[[_I], _P]
                       ) -> tuple[_P, ...]:
        return tuple(map(make, items))

    def snapshot(self, tables: tuple[object, ...], make: Callable[[], Snapshot]) -> Snapshot:
        return make()


NO_REUSE = NoReuse()
