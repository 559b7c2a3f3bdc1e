"""recorded: a result kept while each lookup it made finds the same object again; reads of the varying input make
it its context's alone."""

from __future__ import annotations

from compiler.reuse import recorded


def test_a_result_holds_while_its_lookups_find_the_same_objects() -> None:
    table = {"a": object(), "b": object()}

    def make(report: recorded.Report) -> str:
        found = table["a"]
        report("service", "a", found)
        return "routes"

    kept = recorded.record(make, "port")
    assert kept.lookups == (("service", "a", table["a"]),) and not kept.varies
    assert recorded.still_valid(kept, lambda kind, arg: table[str(arg)])
    table["b"] = object()  # another host's service changed
    assert recorded.still_valid(kept, lambda kind, arg: table[str(arg)])
    table["a"] = object()
    assert not recorded.still_valid(kept, lambda kind, arg: table[str(arg)])


def test_reading_the_varying_input_is_remembered_not_replayed() -> None:
    kept = recorded.record(lambda report: report("port", None, 8080), "port")
    assert kept.varies and kept.lookups == ()
    assert recorded.unrecorded(lambda report: 1).varies  # nothing to replay: never shared
