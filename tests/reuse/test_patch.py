"""patch_sorted: a sorted table patched by identity diff is the table sorted again, or refused."""

from __future__ import annotations

import dataclasses

from compiler.reuse.patch import patch_sorted


@dataclasses.dataclass(frozen=True)
class Item:
    name: str
    value: int = 0


def _name(item: Item) -> str:
    return item.name


def _parts() -> list[tuple[Item, ...]]:
    return [(Item(f"s{i}"), Item(f"s{i}-v1")) for i in range(16)]


def _table(parts: list[tuple[Item, ...]]) -> tuple[Item, ...]:
    return tuple(sorted((x for p in parts for x in p), key=_name))


def _swaps(old: list[tuple[Item, ...]], new: list[tuple[Item, ...]]):  # type: ignore[no-untyped-def]
    return lambda changed: [pair for i in changed for pair in zip(old[i], new[i], strict=True)]


def test_a_changed_part_is_put_in_place_in_a_sequence_and_a_mapping() -> None:
    old = _parts()
    new = list(old)
    new[3] = (Item("s3", 1), Item("s3-v1", 1))
    table = _table(old)
    patched = patch_sorted(table, _name, old, new, _swaps(old, new))
    assert patched is not None and tuple(patched) == _table(new)
    by_name = {x.name: x for x in table}
    patched_map = patch_sorted(by_name, _name, old, new, _swaps(old, new))
    assert patched_map is not None and list(patched_map.values()) == list(_table(new))
    assert by_name == {x.name: x for x in table}  # the old table is left as it was


def test_nothing_changed_gives_the_table_itself() -> None:
    old = _parts()
    table = _table(old)
    assert patch_sorted(table, _name, old, list(old), _swaps(old, old)) is table


def test_refused_past_one_eighth_for_moved_names_and_for_an_item_not_in_the_table() -> None:
    old = _parts()
    table = _table(old)
    many = [(Item(p[0].name, 1), Item(p[1].name, 1)) if i < 3 else p for i, p in enumerate(old)]
    assert patch_sorted(table, _name, old, many, _swaps(old, many)) is None  # 3 of 16
    assert patch_sorted(table, _name, old, many, _swaps(old, many), rebuild_past=None) == list(_table(many))
    renamed = [(Item("s3x"), p[1]) if i == 3 else p for i, p in enumerate(old)]
    assert patch_sorted(table, _name, old, renamed, _swaps(old, renamed)) is None
    shadowed = [(Item("s3"), p[1]) if i == 3 else p for i, p in enumerate(old)]
    stale = [(Item("s3", 2), p[1]) if i == 3 else p for i, p in enumerate(old)]
    assert patch_sorted(table, _name, shadowed, stale, _swaps(shadowed, stale)) is None  # "s3" is another object
    assert patch_sorted(table, _name, old, old[:-1], _swaps(old, old)) is None  # not aligned
