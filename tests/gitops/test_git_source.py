"""GitSource against real repositories: new heads, dedupe, force-push, deleted branch, corruption, pins."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from gitops_repos import Remote, run_git

from reconciler.git.source import GitSource, SourceConfig, SourceError
from reconciler.ops.status import SourceErrorKind


def _source(remote: Remote, tmp_path: Path, **kwargs: object) -> GitSource:
    return GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work", **kwargs))  # type: ignore[arg-type]


def _poll_new(source: GitSource) -> tuple[str, Path]:
    fetched = source.poll()
    assert fetched is not None, "expected a new commit"
    assert fetched.tree is not None
    return fetched.commit.sha, fetched.tree


def test_new_commit_is_exported_once_with_its_metadata(remote: Remote, tmp_path: Path) -> None:
    sha = remote.commit({"mesh/a.yaml": "kind: A\n"}, "first policy\n\nbody")
    source = _source(remote, tmp_path)
    fetched = source.poll()
    assert fetched is not None and fetched.tree is not None
    assert fetched.commit.sha == sha
    assert fetched.commit.author == "t <t@e>"
    assert fetched.commit.subject == "first policy"
    assert (fetched.tree / "mesh" / "a.yaml").read_text() == "kind: A\n"
    assert not fetched.rewritten and fetched.signature is None
    assert source.poll() is None  # same head: handed on once
    second = remote.commit({"mesh/b.yaml": "kind: B\n"}, "second")
    assert _poll_new(source)[0] == second
    assert source.poll() is None


def test_old_exports_are_cleaned_up(remote: Remote, tmp_path: Path) -> None:
    source = _source(remote, tmp_path, keep=2)
    trees = []
    for i in range(4):
        remote.commit({"f.yaml": f"v: {i}\n"}, f"c{i}")
        trees.append(_poll_new(source)[1])
    assert [t.is_dir() for t in trees] == [False, False, True, True]
    assert (trees[-1] / "f.yaml").read_text() == "v: 3\n"


def test_export_ignores_in_tree_export_attributes(remote: Remote, tmp_path: Path) -> None:
    remote.commit({".gitattributes": "*.yaml export-ignore\n", "a.yaml": "x: 1\n"})
    _, tree = _poll_new(_source(remote, tmp_path))
    assert (tree / "a.yaml").read_text() == "x: 1\n"


def test_symlink_out_of_the_tree_is_refused(remote: Remote, tmp_path: Path) -> None:
    os.symlink("/etc/passwd", remote.work / "leak.yaml")
    remote.commit({"a.yaml": "x: 1\n"})
    with pytest.raises(SourceError) as err:
        _source(remote, tmp_path).poll()
    assert err.value.kind is SourceErrorKind.EXPORT_FAILED


def test_force_push_hands_on_the_new_head_marked_rewritten(remote: Remote, tmp_path: Path) -> None:
    first = remote.commit({"a.yaml": "v: 1\n"}, "one")
    source = _source(remote, tmp_path)
    _poll_new(source)
    remote.commit({"a.yaml": "v: 2\n"}, "two")
    _poll_new(source)
    run_git(remote.work, "reset", "--hard", first)
    rewritten = remote.commit({"a.yaml": "v: 3\n"}, "three", push=False)
    remote.push(force=True)
    fetched = source.poll()
    assert fetched is not None and fetched.tree is not None
    assert fetched.commit.sha == rewritten and fetched.rewritten
    assert (fetched.tree / "a.yaml").read_text() == "v: 3\n"


def test_deleted_branch_is_reported_and_last_commit_kept(remote: Remote, tmp_path: Path) -> None:
    sha = remote.commit({"a.yaml": "v: 1\n"})
    source = _source(remote, tmp_path)
    _poll_new(source)
    run_git(remote.bare, "update-ref", "-d", "refs/heads/main")
    with pytest.raises(SourceError) as err:
        source.poll()
    assert err.value.kind is SourceErrorKind.BRANCH_MISSING
    assert source.last_sha == sha
    remote.push()  # the branch comes back with the same head: nothing new
    assert source.poll() is None
    newer = remote.commit({"a.yaml": "v: 2\n"})
    assert _poll_new(source)[0] == newer


def test_unreachable_remote_is_reported(tmp_path: Path) -> None:
    source = GitSource(SourceConfig(url=str(tmp_path / "missing.git"), workdir=tmp_path / "work"))
    with pytest.raises(SourceError) as err:
        source.poll()
    assert err.value.kind is SourceErrorKind.UNREACHABLE


def test_remote_going_away_keeps_last_commit(remote: Remote, tmp_path: Path) -> None:
    sha = remote.commit({"a.yaml": "v: 1\n"})
    source = _source(remote, tmp_path)
    _poll_new(source)
    moved = remote.bare.with_name("moved.git")
    remote.bare.rename(moved)
    with pytest.raises(SourceError) as err:
        source.poll()
    assert err.value.kind is SourceErrorKind.UNREACHABLE
    moved.rename(remote.bare)
    assert source.poll() is None and source.last_sha == sha


def _garble(path: Path) -> None:
    path.chmod(0o644)
    path.write_bytes(b"garbage")


def _damage_loose_objects(mirror: Path) -> int:
    loose = [p for p in (mirror / "objects").glob("??/*") if p.is_file()]
    for path in loose:
        _garble(path)
    return len(loose)


def _damage_packs(mirror: Path) -> int:
    packs = [p for p in (mirror / "objects" / "pack").iterdir() if p.is_file()]
    for path in packs:
        _garble(path)
    return len(packs)


def _damage_head(mirror: Path) -> int:
    _garble(mirror / "HEAD")
    return 1


@pytest.mark.parametrize("damage", [_damage_loose_objects, _damage_packs, _damage_head])
def test_damaged_clone_recovers(remote: Remote, tmp_path: Path, damage: Callable[[Path], int],
                                caplog: pytest.LogCaptureFixture) -> None:
    source = _source(remote, tmp_path)
    for i in range(2):  # the first fetch brings a pack, the second loose objects
        remote.commit({"a.yaml": f"v: {i}\n"})
        _poll_new(source)
    assert damage(tmp_path / "work" / "mirror.git") > 0
    newer = remote.commit({"a.yaml": "v: 9\n"})
    sha, tree = _poll_new(source)
    assert sha == newer and (tree / "a.yaml").read_text() == "v: 9\n"
    if damage is not _damage_packs:  # git itself refetches what an unreadable pack held; the others need a clone
        assert "re-cloning" in caplog.text


def test_deleted_workdir_is_recloned(remote: Remote, tmp_path: Path) -> None:
    remote.commit({"a.yaml": "v: 1\n"})
    source = _source(remote, tmp_path)
    _poll_new(source)
    shutil.rmtree(tmp_path / "work")
    assert source.poll() is None  # same head after the re-clone: not handed on again
    newer = remote.commit({"a.yaml": "v: 2\n"})
    assert _poll_new(source)[0] == newer


def test_pinned_tag_ignores_the_branch_and_follows_a_moved_tag(remote: Remote, tmp_path: Path) -> None:
    tagged = remote.commit({"a.yaml": "v: 1\n"})
    run_git(remote.work, "tag", "v1")
    run_git(remote.work, "push", "origin", "v1")
    remote.commit({"a.yaml": "v: 2\n"})
    source = _source(remote, tmp_path, rev="v1")
    assert source.followed_refs >= {"refs/tags/v1"}
    sha, tree = _poll_new(source)
    assert sha == tagged and (tree / "a.yaml").read_text() == "v: 1\n"
    remote.commit({"a.yaml": "v: 3\n"})
    assert source.poll() is None
    run_git(remote.work, "tag", "-f", "v1")
    run_git(remote.work, "push", "--force", "origin", "v1")
    assert _poll_new(source)[0] == remote.head()


def test_pinned_commit(remote: Remote, tmp_path: Path) -> None:
    pinned = remote.commit({"a.yaml": "v: 1\n"})
    remote.commit({"a.yaml": "v: 2\n"})
    sha, tree = _poll_new(_source(remote, tmp_path, rev=pinned))
    assert sha == pinned and (tree / "a.yaml").read_text() == "v: 1\n"


def test_pinned_rev_that_does_not_exist(remote: Remote, tmp_path: Path) -> None:
    remote.commit({"a.yaml": "v: 1\n"})
    with pytest.raises(SourceError) as err:
        _source(remote, tmp_path, rev="v9.9.9").poll()
    assert err.value.kind is SourceErrorKind.REV_NOT_FOUND
