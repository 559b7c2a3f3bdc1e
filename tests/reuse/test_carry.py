"""Carry.each: per-item results reused across revisions for the very same item objects, wherever they moved."""

from __future__ import annotations

from compiler.reuse.carry import Carry


class Item:
    def __init__(self, name: str) -> None:
        self.name = name


def test_each_reuses_results_of_the_same_objects_and_makes_the_rest() -> None:
    a, b, c, d = Item("a"), Item("b"), Item("c"), Item("d")
    made: list[str] = []

    def make(x: Item) -> str:
        made.append(x.name)
        return x.name.upper()

    first = Carry()
    assert first.each("k", [a, b, c], make) == ["A", "B", "C"]
    second = first.next_generation()
    b2 = Item("b")  # an equal document re-read: a new object, made again
    assert second.each("k", [a, b2, c], make) == ["A", "B", "C"]
    third = second.next_generation()
    assert third.each("k", [d, a, c], make) == ["D", "A", "C"]  # moved: found by identity
    assert made == ["a", "b", "c", "b", "d"]
    fourth = third.next_generation().next_generation()  # a revision that did not ask: dropped
    assert fourth.each("k", [a], make) == ["A"] and made[-1] == "a"
