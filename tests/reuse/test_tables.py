"""tables.kept_or_made: a table of per-item parts derived from the last revision's equals the table made anew, and
looks up again only what a change may have reached."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from compiler.reuse import tables


@dataclasses.dataclass(frozen=True)
class Rule:
    host: str
    weight: int


@dataclasses.dataclass
class Recipe:
    """Items are hosts; an item's part is (its name, its name with the weight its rule sets)."""

    rules: dict[str, Rule]
    fixed: tuple[object, ...] = ()
    looked_up: list[str] = dataclasses.field(default_factory=list)

    @property
    def lookups(self) -> tables.Keyed:
        return tables.Keyed(self.rules, {h: {"ns": [r]} for h, r in self.rules.items()}, {})

    @property
    def names(self) -> tuple[Callable[[str], str], ...]:
        return (str,)

    def key(self, item: str) -> str:
        return item

    def depends(self, item: str) -> Rule | None:
        self.looked_up.append(item)
        return self.rules.get(item)

    def part(self, item: str, dep: Rule | None) -> tuple[tuple[str, ...]]:
        return ((item, f"{item}-{dep.weight if dep else 0}"),)

    def tables(self, parts: Sequence[tuple[tuple[str, ...]]]) -> tuple[tuple[str, ...]]:
        return (tuple(sorted(x for p in parts for x in p[0])),)


def test_a_changed_rule_looks_up_and_remakes_its_item_only() -> None:
    items = [f"h{i:02}" for i in range(20)]
    rules = {h: Rule(h, 1) for h in items}
    first = Recipe(rules)
    kept = tables.kept_or_made(None, items, first)
    assert kept.tables == tables.made(items, Recipe(rules))
    changed = Recipe({**rules, "h03": Rule("h03", 2)})
    again = tables.kept_or_made(kept, items, changed)
    assert again.tables == tables.made(items, Recipe(changed.rules))
    assert changed.looked_up == ["h03"]
    assert tables.kept_or_made(again, items, changed) is again  # nothing changed since: kept whole


def test_another_fixed_input_remakes_everything() -> None:
    items = ["a", "b"]
    rules = {h: Rule(h, 1) for h in items}
    kept = tables.kept_or_made(None, items, Recipe(rules, fixed=(frozenset(),)))
    remade = Recipe(rules, fixed=(frozenset({"x"}),))
    tables.kept_or_made(kept, items, remade)
    assert remade.looked_up == items


def test_changed_keys_none_when_a_wildcard_entry_changed() -> None:
    a, b = Rule("*.x", 1), Rule("*.x", 2)
    assert tables.changed_keys(tables.Keyed({}, {}, {"ns": [a]}), tables.Keyed({}, {}, {"ns": [b]})) is None
    assert tables.changed_keys(tables.Keyed({}, {"h": {"ns": [a]}}, {}), tables.Keyed({}, {"h": {"ns": [b]}}, {})
                               ) == {"h"}
