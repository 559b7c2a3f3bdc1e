"""refill: a table filled from shared uses asks again for the uses a change reaches, and is built again when its
shape may have changed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from compiler.reuse import recorded, refill


@dataclasses.dataclass(frozen=True)
class Input:
    hosts: tuple[str, ...]
    body: str


@dataclasses.dataclass(frozen=True)
class Table:
    inputs: Sequence[Input]
    uses: tuple[tuple[Input, recorded.Recorded[str]], ...]
    valid_in: tuple[object, ...]


@dataclasses.dataclass
class Recipe:
    inputs: Sequence[Input]
    tables: tuple[object, ...]
    changed: set[str] = dataclasses.field(default_factory=set)
    asked: list[str] = dataclasses.field(default_factory=list)

    @property
    def kind(self) -> type[Table]:
        return Table

    def build(self, before: Table | None) -> Table:
        return Table(self.inputs, tuple((i, self.use(i, None, None)) for i in self.inputs), self.tables)

    def changes(self, before: Table) -> tuple[set[str], ...] | None:
        return (self.changed,)

    def same_shape(self, old: Input, new: Input) -> bool:
        return old.hosts == new.hosts

    def use(self, item: Input, before: recorded.Recorded[str] | None,
            before_in: tuple[object, ...] | None) -> recorded.Recorded[str]:
        self.asked.append(item.body)

        def make(report: recorded.Report) -> str:
            report("service", item.hosts[0], None)
            return item.body
        return recorded.record(make, "port")

    def touched(self, kind: str, arg: object, changes: tuple[set[str], ...]) -> bool:
        return arg in changes[0]

    def content(self, use: str) -> Sequence[object]:
        return (use,) if use else ()

    def refill(self, before: Table, uses: Sequence[tuple[Input, recorded.Recorded[str]]], refilled: dict[int, str],
               changes: tuple[set[str], ...]) -> Table:
        return Table(self.inputs, tuple(uses), self.tables)


def _first() -> tuple[list[Input], Table]:
    inputs = [Input((f"h{i}",), f"r{i}") for i in range(4)]
    return inputs, Recipe(inputs, ("services",)).build(None)


def test_a_swapped_input_and_a_use_whose_lookup_changed_are_asked_again_only() -> None:
    inputs, table = _first()
    now = [*inputs[:1], Input(("h1",), "r1b"), *inputs[2:]]
    recipe = Recipe(now, ("services2",), changed={"h3"})
    got = refill.refilled(table, recipe)
    assert got is not None and [u[1].value for u in got.uses] == ["r0", "r1b", "r2", "r3"]
    assert recipe.asked == ["r1b", "r3"]
    assert refill.refilled(table, Recipe(inputs, ("services",))) is table  # nothing changed


def test_another_shape_or_a_use_that_empties_builds_again() -> None:
    inputs, table = _first()
    assert refill.refilled(table, Recipe([Input(("x",), "r0"), *inputs[1:]], ("services",))) is None
    assert refill.refilled(table, Recipe([Input(("h0",), ""), *inputs[1:]], ("services",))) is None
    assert refill.refilled(table, Recipe(inputs[:3], ("services",))) is None
