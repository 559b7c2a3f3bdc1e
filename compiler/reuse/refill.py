"""A table whose members are filled from shared uses (a route config: each virtual host holds the routes of the
VirtualService that owns it, or its host's default route), refilled after a change instead of built again: a
commit that changed one VirtualService of 10,000 replaces the routes of the virtual hosts it fills.

This module decides what may be kept: the table's shape (its inputs aligned, each changed one of the same shape,
nothing the stage reports as a change of shape), and which uses to ask for again (a changed input's, those whose
recorded lookups the changes reach). How a use is made, what its content is and how contents go back into the
table is the stage's `Recipe`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from compiler.reuse.recorded import Recorded

_In = TypeVar("_In")
_F = TypeVar("_F")
_Tab = TypeVar("_Tab", bound="Made[Any, Any]")
_In_co = TypeVar("_In_co", covariant=True)
_F_co = TypeVar("_F_co", covariant=True)

Changes = tuple[set[str], ...]  # per lookup table, the keys whose entries changed


class Made(Protocol[_In_co, _F_co]):
    """What a table built by the stage keeps of how it was made."""

    @property
    def inputs(self) -> Sequence[_In_co]:
        """What the uses are made from (VirtualServices), in the order given."""
        ...

    @property
    def uses(self) -> tuple[tuple[_In_co, Recorded[_F_co]], ...]:
        """Each use with the input it was made from."""
        ...

    @property
    def valid_in(self) -> tuple[object, ...]:
        """The lookup tables the uses' lookups were made (or last checked) in."""
        ...


class Recipe(Protocol[_In, _F, _Tab]):
    @property
    def kind(self) -> type[_Tab]: ...

    def build(self, before: _Tab | None) -> _Tab:
        """The table from its inputs (`before`: the last one, whose uses may still hold)."""
        ...

    @property
    def inputs(self) -> Sequence[_In]:
        """This revision's inputs."""
        ...

    @property
    def tables(self) -> tuple[object, ...]:
        """This revision's lookup tables."""
        ...

    def changes(self, before: _Tab) -> Changes | None:
        """The keys whose lookups may find other objects since `before`, or None when its shape may have changed."""
        ...

    def same_shape(self, old: _In, new: _In) -> bool:
        """Whether `new` in place of `old` leaves the table's members as they were (a VirtualService's hosts)."""
        ...

    def use(self, item: _In, before: Recorded[_F] | None, before_in: tuple[object, ...] | None) -> Recorded[_F]: ...

    def touched(self, kind: str, arg: object, changes: Changes) -> bool:
        """Whether a recorded lookup may find another object after `changes`."""
        ...

    def content(self, use: _F) -> Sequence[object]:
        """What a use puts into the members it fills (empty: it fills none)."""
        ...

    def refill(self, before: _Tab, uses: Sequence[tuple[_In, Recorded[_F]]], refilled: dict[int, _F],
               changes: Changes) -> _Tab | None:
        """`before` with the uses at the indexes of `refilled` given their new content (and what else `changes`
        reaches that is no use's), or None."""
        ...


def kept_or_built(before: _Tab | None, recipe: Recipe[_In, _F, _Tab]) -> _Tab:
    return (refilled(before, recipe) if before is not None else None) or recipe.build(before)


def refilled(made: _Tab, recipe: Recipe[_In, _F, _Tab]) -> _Tab | None:
    """`made` (the last revision's table) refilled for this revision, or None: build it again."""
    old, new = made.inputs, recipe.inputs
    if len(old) != len(new):
        return None
    changes = recipe.changes(made)
    if changes is None:
        return None
    swaps: dict[int, _In] = {}
    for a, b in zip(old, new, strict=True):
        if a is not b:
            if not recipe.same_shape(a, b):
                return None
            swaps[id(a)] = b
    if not swaps and all(a is b for a, b in zip(made.valid_in, recipe.tables, strict=True)):
        return made
    uses = list(made.uses)
    refills: dict[int, _F] = {}
    for i, (used, was) in enumerate(made.uses):
        swapped = swaps.get(id(used))
        if swapped is not None:
            now = recipe.use(swapped, None, None)
        elif any(changes) and any(recipe.touched(kind, arg, changes) for kind, arg, _ in was.lookups):
            now = recipe.use(used, was, made.valid_in)
        else:
            continue  # its lookups looked at unchanged keys only: they find what they found
        filled, was_filled = recipe.content(now.value), recipe.content(was.value)
        if filled != was_filled:
            if bool(filled) != bool(was_filled):
                return None  # members appear or disappear
            refills[i] = now.value
        uses[i] = (swapped if swapped is not None else used, now)
    return recipe.refill(made, uses, refills, changes)
