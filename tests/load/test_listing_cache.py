"""The ParseCache's directory listings: a directory whose stat is unchanged is not listed again, and every file
added, removed or renamed is still seen (it changes its directory's stat)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler import discovery, load


def _later_tick(directory: Path) -> None:
    """Move the directory's mtime on, as a change in a later clock tick than the last listing would."""
    stat = directory.stat()
    os.utime(directory, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _names(result: load.LoadResult) -> list[str]:
    return [Path(doc.file).name for doc in result.documents]


@pytest.fixture
def trust_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "_RACY_NS", -10**18)  # trust every stat, however recent


def test_unchanged_directories_are_not_listed_again(tmp_path: Path, trust_all: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / f"{sub}.yaml").write_text(f"kind: {sub}\n")
    cache = load.ParseCache()
    first = load.load([tmp_path], cache=cache)
    scanned: list[str] = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scanned.append(str(path)) or real_scandir(path))
    (tmp_path / "b" / "b2.yaml").write_text("kind: b2\n")
    _later_tick(tmp_path / "b")
    second = load.load([tmp_path], cache=cache)
    assert scanned == [str(tmp_path / "b")]
    assert _names(second) == ["a.yaml", "b.yaml", "b2.yaml"]
    assert second.documents[0] is first.documents[0]


@pytest.mark.parametrize("change", ["add", "remove", "rename", "new directory"])
def test_changed_directories_match_a_fresh_load(tmp_path: Path, trust_all: None, change: str) -> None:
    (tmp_path / "d").mkdir()
    for name in ("x.yaml", "y.yaml"):
        (tmp_path / "d" / name).write_text(f"kind: {name}\n")
    cache = load.ParseCache()
    load.load([tmp_path], cache=cache)
    changed = tmp_path / "d"
    if change == "add":
        (changed / "z.yaml").write_text("kind: z\n")
    elif change == "remove":
        (changed / "x.yaml").unlink()
    elif change == "rename":
        (changed / "x.yaml").rename(changed / "w.yaml")
    else:
        (changed / "e").mkdir()
        (changed / "e" / "e.yaml").write_text("kind: e\n")
    _later_tick(changed)
    cached, fresh = load.load([tmp_path], cache=cache), load.load([tmp_path])
    assert [(d.file, d.data) for d in cached.documents] == [(d.file, d.data) for d in fresh.documents]


def test_a_directory_changed_in_the_same_tick_is_listed_again(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: a\n")
    cache = load.ParseCache()
    load.load([tmp_path], cache=cache)
    before = tmp_path.stat()
    (tmp_path / "b.yaml").write_text("kind: b\n")
    os.utime(tmp_path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if in the tick of the first listing
    assert _names(load.load([tmp_path], cache=cache)) == ["a.yaml", "b.yaml"]


def test_directories_with_symlinks_are_always_listed_again(tmp_path: Path, trust_all: None) -> None:
    tree, outside, hop = tmp_path / "tree", tmp_path / "outside", tmp_path / "hop"
    (tree / "sub").mkdir(parents=True)
    outside.mkdir()
    for directory in (tree / "sub", outside):
        (directory / "real.yaml").write_text(f"kind: {directory.name}\n")
    hop.symlink_to(tree / "sub")
    (tree / "link.yaml").symlink_to(hop / "real.yaml")  # where it leads changes with `hop`, outside the tree
    cache = load.ParseCache()
    first = load.load([tree], cache=cache)
    assert _names(first) == ["link.yaml"] and not first.diagnostics  # tree/sub/real.yaml, read once
    hop.unlink()
    hop.symlink_to(outside)
    second = load.load([tree], cache=cache)
    assert [d.code for d in second.diagnostics] == ["MW0010"] and _names(second) == ["real.yaml"]


def test_a_file_under_two_roots_is_read_once(tmp_path: Path, trust_all: None) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text("kind: A\n")
    cache = load.ParseCache()
    for _ in range(2):
        result = load.load([tmp_path / "sub", tmp_path], cache=cache)
        assert result.files == 1 and _names(result) == ["a.yaml"]
