"""An export made from the last one plus the changed paths is the very tree a whole export gives, and leaves the
last one as it was; anything it cannot vouch for falls back to the whole export."""

from __future__ import annotations

import itertools
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from gitops_repos import Remote, run_git

from reconciler.git import exports
from reconciler.git.source import GitSource, SourceConfig

_ENV = {"GIT_CONFIG_NOSYSTEM": "1"}


def _tree(root: Path) -> dict[str, tuple[str, object]]:
    """Every entry under root: files by content and permission bits, symlinks by target, directories."""
    found: dict[str, tuple[str, object]] = {}
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(top, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", None)
            else:
                found[rel] = ("file", (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)))
    return found


def _whole(remote: Remote, sha: str, into: Path) -> Path:
    into.mkdir(parents=True)
    exports.extract(remote.bare, sha, into, scratch=into.parent, timeout=30, env=_ENV)
    return into


def _symlink(remote: Remote, name: str, target: str) -> None:
    path = remote.work / name
    if path.is_symlink() or path.is_file():
        path.unlink()
    os.symlink(target, path)


def _swap_file_and_directory(remote: Remote) -> None:
    (remote.work / "a.yaml").unlink()
    (remote.work / "a.yaml").mkdir()
    (remote.work / "a.yaml" / "inner.yaml").write_text("inner: 1\n")
    shutil.rmtree(remote.work / "d")
    (remote.work / "d").write_text("d is a file now\n")


def _submodule(remote: Remote) -> None:
    """A repository inside the work tree: `git add` records it as a submodule entry (a gitlink)."""
    inner = remote.work / "sub"
    inner.mkdir()
    run_git(inner, "init")
    (inner / "x").write_text("x\n")
    run_git(inner, "add", "x")
    run_git(inner, "commit", "-m", "inner")


def _edits() -> list[tuple[dict[str, str | None], Callable[[Remote], None] | None]]:
    odd = "spa ce [*]:?.yaml"  # pathspec magic, taken literally
    return [
        ({"a.yaml": "a: 1\n", "d/b.yaml": "b: 1\n", "d/e/c.yaml": "c: 1\n", "x.sh": "#!/bin/sh\n",
          odd: "odd: 1\n", "ü.yaml": "u: 1\n"},
         lambda r: (os.chmod(r.work / "x.sh", 0o755), _symlink(r, "link", "a.yaml"), _symlink(r, "dlink", "d"))),
        ({"a.yaml": "a: 2\n", "d/e/c.yaml": None, "new/f.yaml": "f: 1\n", odd: "odd: 2\n"},
         lambda r: (os.chmod(r.work / "x.sh", 0o644), _symlink(r, "link", "d/b.yaml"))),
        ({}, _swap_file_and_directory),
        ({}, lambda r: ((r.work / "link").unlink(), (r.work / "link").write_text("was a link\n"))),
        ({}, _submodule),
        ({"ü.yaml": None, "new/f.yaml": None, odd: None}, None),
    ]


def _history(remote: Remote) -> list[str]:
    shas = []
    for files, extra in _edits():
        remote.write(files)
        if extra is not None:
            extra(remote)
        shas.append(remote.commit({}, "edit"))
    return shas


def test_export_from_the_last_equals_the_whole_export_and_leaves_the_last_alone(remote: Remote,
                                                                                tmp_path: Path) -> None:
    shas = _history(remote)
    for at, (old, new) in enumerate(itertools.pairwise(shas)):
        base = _whole(remote, old, tmp_path / f"base{at}")
        before = _tree(base)
        into = tmp_path / f"from{at}"
        into.mkdir()
        assert exports.extract_from(remote.bare, base, old, new, into, scratch=tmp_path, timeout=30, env=_ENV)
        assert _tree(into) == _tree(_whole(remote, new, tmp_path / f"whole{at}")), f"edit {at + 1}"
        assert _tree(base) == before


def test_unchanged_files_are_shared_not_copied(remote: Remote, tmp_path: Path) -> None:
    old = remote.commit({"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"})
    new = remote.commit({"b.yaml": "b: 2\n"})
    base, into = _whole(remote, old, tmp_path / "base"), tmp_path / "new"
    into.mkdir()
    assert exports.extract_from(remote.bare, base, old, new, into, scratch=tmp_path, timeout=30, env=_ENV)
    assert (into / "a.yaml").stat().st_ino == (base / "a.yaml").stat().st_ino
    assert (into / "b.yaml").stat().st_ino != (base / "b.yaml").stat().st_ino
    assert (base / "b.yaml").read_text() == "b: 1\n"


def test_a_damaged_last_export_is_not_built_on(remote: Remote, tmp_path: Path) -> None:
    old = remote.commit({"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"})
    new = remote.commit({"b.yaml": "b: 2\n"})
    base, into = _whole(remote, old, tmp_path / "base"), tmp_path / "new"
    (base / "a.yaml").unlink()
    into.mkdir()
    assert not exports.extract_from(remote.bare, base, old, new, into, scratch=tmp_path, timeout=30, env=_ENV)


def test_too_many_changes_are_left_to_a_whole_export(remote: Remote, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    old = remote.commit({"a.yaml": "a: 1\n"})
    new = remote.commit({"b.yaml": "b: 1\n", "c.yaml": "c: 1\n"})
    monkeypatch.setattr(exports, "MAX_CHANGED", 1)
    into = tmp_path / "new"
    into.mkdir()
    assert not exports.extract_from(remote.bare, _whole(remote, old, tmp_path / "base"), old, new, into,
                                    scratch=tmp_path, timeout=30, env=_ENV)


def test_the_git_source_builds_each_export_on_the_last(remote: Remote, tmp_path: Path) -> None:
    remote.commit({"a.yaml": "a: 1\n", "b.yaml": "b: 1\n"})
    source = GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work"))
    first = source.poll()
    remote.commit({"b.yaml": "b: 2\n"})
    second = source.poll()
    assert first is not None and first.tree is not None and second is not None and second.tree is not None
    assert (second.tree / "a.yaml").stat().st_ino == (first.tree / "a.yaml").stat().st_ino
    assert (second.tree / "b.yaml").read_text() == "b: 2\n"
    assert (first.tree / "b.yaml").read_text() == "b: 1\n"
