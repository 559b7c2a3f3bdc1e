"""The loader on hostile input: it reports, never raises, and keeps every document's first line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler import discovery, load, positions


def _codes(result: load.LoadResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def test_multi_document_file_keeps_start_lines(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("# header\nkind: A\n---\n\n---\n# c\nkind: B\nx: 1\n...\n")
    result = load.load([tmp_path])
    assert [(d.data["kind"], d.line) for d in result.documents] == [("A", 2), ("B", 7)]
    assert result.diagnostics == []


def test_syntax_error_in_one_document_keeps_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: A\n---\nkind: B\nspec:\n\t- 1\n---\nkind: C\n")
    result = load.load([tmp_path])
    assert [d.data["kind"] for d in result.documents] == ["A", "C"]
    (problem,) = result.diagnostics
    assert (problem.code, problem.position.line) == ("MW0001", 5)
    assert "tab" in problem.message


def test_duplicate_key_is_reported_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: A\nmetadata:\n  name: x\n  name: y\n")
    (problem,) = load.load([tmp_path]).diagnostics
    assert (problem.code, problem.position.line) == ("MW0002", 4)


def test_binary_and_non_utf8_files(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x01\x02kind: A")
    (tmp_path / "latin1.yaml").write_bytes("kind: caf\xe9\n".encode("latin-1"))
    result = load.load([tmp_path])
    assert _codes(result) == ["MW0003", "MW0003"]
    assert result.documents == []


def test_empty_files_and_documents_are_not_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yml").write_text("# nothing\n---\n---\n")
    result = load.load([tmp_path])
    assert result.documents == [] and result.diagnostics == [] and result.files == 2


def test_non_yaml_and_hidden_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# not policy")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("kind: Hidden\n")
    (tmp_path / "a.yml").write_text("kind: A\n")
    result = load.load([tmp_path])
    assert [d.data["kind"] for d in result.documents] == ["A"]


def test_routing_tests_are_not_policy(tmp_path: Path) -> None:
    """`meshward test`'s files sit beside the policy; neither a walk nor a shell glob reads them as policy."""
    (tmp_path / "sub").mkdir()
    for name in ("reviews_test.yaml", "sub/ratings_test.yml"):
        (tmp_path / name).write_text("testCases: []\n")
    (tmp_path / "sub" / "test.yaml").write_text("kind: A\n")  # only the `_test` suffix marks a test
    assert [d.data["kind"] for d in load.load([tmp_path]).documents] == ["A"]
    named = load.load([tmp_path / "reviews_test.yaml", tmp_path / "sub" / "test.yaml"])
    assert ([d.data["kind"] for d in named.documents], named.files) == (["A"], 1)


def test_missing_path_is_reported(tmp_path: Path) -> None:
    result = load.load([tmp_path / "nope"])
    assert _codes(result) == ["MW0009"]


def test_symlink_outside_the_tree_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("kind: Secret\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "inside.yaml").write_text("kind: A\n")
    os.symlink(outside, tree / "link.yaml")
    os.symlink(tree / "inside.yaml", tree / "alias.yaml")
    result = load.load([tree])
    assert [d.data["kind"] for d in result.documents] == ["A"]  # the alias inside the tree is the same file
    assert _codes(result) == ["MW0010"]


def test_file_over_the_size_limit_is_refused_without_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # a sparse 50 MB file
    result = load.load([tmp_path])
    assert _codes(result) == ["MW0004"]


def test_twenty_thousand_files(tmp_path: Path) -> None:
    for i in range(20_000):
        (tmp_path / f"f{i:05}.yaml").write_text("# empty\n" if i % 2 else f"kind: K\nn: {i}\n")
    result = load.load([tmp_path])
    assert result.files == 20_000 and len(result.documents) == 10_000 and result.diagnostics == []


def test_parse_cache_reparses_only_changed_files(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.yaml").write_text(f"kind: K\nn: {i}\n")
    cache = load.ParseCache()
    load.load([tmp_path], cache=cache)
    (tmp_path / "f3.yaml").write_text("kind: K\nn: changed\n")
    second = load.load([tmp_path], cache=cache)
    assert (cache.misses, cache.hits) == (6, 4)
    assert [d.data["n"] for d in second.documents] == [0, 1, 2, "changed", 4]


def test_positions_are_found_lazily_for_nested_fields() -> None:
    text = "kind: VirtualService\nspec:\n  http:\n  - route:\n    - destination: {host: a}\n      weight: -1\n"
    (doc,) = load.load_text(text, "vs.yaml").documents
    pos = positions.locate(doc, ["spec", "http", 0, "route", 0, "weight"])
    assert (pos.file, pos.line, pos.column) == ("vs.yaml", 6, 7)
    # A path that does not exist stops at its deepest existing parent.
    assert positions.locate(doc, ["spec", "tcp", 0]).line == 2


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: A\n")
    result = load.load([tmp_path / "a.yaml", tmp_path])
    assert result.files == 1 and len(result.documents) == 1


def test_stat_cache_skips_unchanged_files_and_sees_changed_ones(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "_RACY_NS", -10**18)  # trust every stat, however recent
    for i in range(3):
        (tmp_path / f"f{i}.yaml").write_text(f"kind: K\nn: {i}\n")
    cache = load.ParseCache()
    first = load.load([tmp_path], cache=cache)
    reads: list[str] = []
    real_read = load._read
    monkeypatch.setattr(load, "_read", lambda path, limit: reads.append(str(path)) or real_read(path, limit))
    (tmp_path / "f1.yaml").write_text("kind: K\nn: changed\n")
    second = load.load([tmp_path], cache=cache)
    assert reads == [str(tmp_path / "f1.yaml")]
    assert [d.data["n"] for d in second.documents] == [0, "changed", 2]
    assert second.documents[0] is first.documents[0]


def test_stat_cache_does_not_trust_a_file_changed_in_the_same_tick(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("kind: K\nn: 1\n")
    cache = load.ParseCache()
    assert load.load([tmp_path], cache=cache).documents[0].data["n"] == 1
    before = path.stat()
    path.write_text("kind: K\nn: 2\n")  # same size; the timestamps put back as if in the same tick
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load.load([tmp_path], cache=cache).documents[0].data["n"] == 2
