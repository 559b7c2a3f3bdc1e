"""A result with the lookups made while computing it, so that the next revision can keep it by asking them again
instead of computing it again (a VirtualService's routes look up the services and rules of their destinations: a
commit that changed another service leaves them valid).

The stage reports each lookup to a `Report` it is handed (kind, argument, what it found) and gives the reuse layer
its lookups by kind (`Look`) to replay; one kind may be `varying`: the input that differs between the contexts
sharing a result (a listener port), whose reads make the result that context's alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Generic, TypeVar

_V = TypeVar("_V")
_V_co = TypeVar("_V_co", covariant=True)

Report = Callable[[str, object, object], None]  # kind, argument, found
Look = Callable[[str, object], object]  # kind, argument -> found


@dataclasses.dataclass(frozen=True, slots=True)
class Recorded(Generic[_V_co]):
    value: _V_co
    lookups: tuple[tuple[str, object, object], ...]  # (kind, argument, found), in the order they were made
    varies: bool  # it read the varying input


def record(make: Callable[[Report], _V], varying: str) -> Recorded[_V]:
    lookups: list[tuple[str, object, object]] = []
    read: list[bool] = []

    def report(kind: str, arg: object, found: object) -> None:
        if kind == varying:
            read.append(True)
        else:
            lookups.append((kind, arg, found))

    value = make(report)
    return Recorded(value, tuple(lookups), bool(read))


def still_valid(found: Recorded[_V], look: Look) -> bool:
    """Whether each recorded lookup finds the same object again."""
    return all(look(kind, arg) is was for kind, arg, was in found.lookups)


def unrecorded(make: Callable[[Report], _V]) -> Recorded[_V]:
    """`make`'s value with no lookups kept (nothing to replay: never valid for another context)."""
    return Recorded(make(_ignore), (), True)


def _ignore(kind: str, arg: object, found: object) -> None:
    pass
