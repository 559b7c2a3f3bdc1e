"""A commit's tree written to a directory (see reconciler.git.source): whole from `git archive`, or, when the last
export is at hand, as that export's unchanged files hard-linked plus an archive of only the paths the commit
changed.

Why: extracting 10,000 files from a tar takes seconds, on every commit; linking them takes a tenth of that. The
result is the same tree (tests/gitops/test_exports.py compares it to a whole export over adds, deletions, type and
mode changes, symlinks and file/directory swaps), checked once more against `git ls-tree` before it is used:
anything unexpected (the last export damaged, an odd change) falls back to the whole export. Exports are never
written to after they are renamed into place, so sharing inodes between them cannot change one through the other.
Only file times differ: a linked file keeps the time of the commit it was first exported from.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

MAX_CHANGED = 2000  # more changed paths than this: a whole export (and no command line of that many paths)
_GITLINK = "160000"  # a submodule entry: git archive writes an empty directory for it


def extract(git_dir: Path, sha: str, into: Path, *, scratch: Path, timeout: float, env: Mapping[str, str],
            paths: Sequence[str] | None = None) -> None:
    """`git archive` of `sha` (only `paths`, taken literally, when given) extracted under `into` with tar's
    `data` filter, which refuses links and names leading outside it."""
    selected = ["--", *paths] if paths is not None else []
    with tempfile.TemporaryFile(dir=scratch) as archive:
        subprocess.run(["git", "--literal-pathspecs", "--git-dir", str(git_dir), "archive", "--format=tar", sha,
                        *selected], stdout=archive, stderr=subprocess.PIPE, timeout=timeout, check=True,
                       env=dict(os.environ, **env))
        archive.seek(0)
        with tarfile.open(fileobj=archive, mode="r:") as tar:
            tar.extractall(into, filter="data")


def extract_from(git_dir: Path, base: Path, base_sha: str, sha: str, into: Path, *, scratch: Path,
                 timeout: float, env: Mapping[str, str]) -> bool:
    """Write `sha`'s tree under `into` (an empty directory) from `base`, the export of `base_sha`. False when it
    could not be done this way (too many changes, or the result is not `sha`'s tree): `into` must then be emptied
    and exported whole."""
    changes = _changes(git_dir, base_sha, sha, timeout, env)
    if changes is None:
        return False
    changed, present, submodules = changes
    _link_unchanged(base, into, changed)
    for path in submodules:  # what git archive writes for one: an empty directory
        (into / path).mkdir(parents=True, exist_ok=True)
    if present:
        extract(git_dir, sha, into, scratch=scratch, timeout=timeout, env=env, paths=present)
    return _entries(into) == _tree(git_dir, sha, timeout, env)


def _git(git_dir: Path, args: Sequence[str], timeout: float, env: Mapping[str, str]) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True, timeout=timeout,
                          check=True, env=dict(os.environ, **env)).stdout


def _changes(git_dir: Path, old: str, new: str, timeout: float, env: Mapping[str, str]
             ) -> tuple[set[str], list[str], list[str]] | None:
    """(every path the commit adds, deletes or changes; those of them present in `new` as files or links; those
    that are submodules in `new`), or None when there are too many. Renames are a deletion and an addition."""
    out = _git(git_dir, ["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old, new], timeout, env)
    fields = out.split(b"\0")
    changed: set[str] = set()
    present: list[str] = []
    submodules: list[str] = []
    for header, raw in zip(fields[0::2], fields[1::2], strict=False):
        if not header.startswith(b":"):
            return None
        _, new_mode, _, _, status = header[1:].decode().split(" ")
        path = os.fsdecode(raw)
        changed.add(path)
        if status != "D":
            (submodules if new_mode == _GITLINK else present).append(path)
        if len(changed) > MAX_CHANGED:
            return None
    return changed, present, submodules


def _link_unchanged(base: Path, into: Path, changed: set[str]) -> None:
    """Hard-link every file and symlink of `base` whose path the commit did not change; directories are made as
    their files need them (one whose files were all deleted is not made), and empty ones (submodules) as in base."""
    for rel, top, leaves, empty in _walk(base):
        target = into / rel
        if empty and rel and rel not in changed:
            target.mkdir(parents=True, exist_ok=True)
        names = [n for n in leaves if os.path.join(rel, n) not in changed]
        if names:
            target.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.link(os.path.join(top, name), target / name, follow_symlinks=False)


def _entries(root: Path) -> set[str]:
    """Every file and symlink under `root`, and every empty directory, by relative path."""
    found: set[str] = set()
    for rel, _, leaves, empty in _walk(root):
        found.update(os.path.join(rel, n) for n in leaves)
        if empty and rel:
            found.add(rel)
    return found


def _walk(root: Path) -> Iterator[tuple[str, str, list[str], bool]]:
    """Per directory under `root`: its path relative to root ("" for root), its path, the names of its files and
    symlinks (os.walk lists a symlink to a directory among the directories, without following it), and whether it
    is empty."""
    for top, dirs, files in os.walk(root):
        rel = os.path.relpath(top, root)
        leaves = [*files, *(n for n in dirs if os.path.islink(os.path.join(top, n)))]
        yield ("" if rel == "." else rel), top, leaves, not dirs and not files


def _tree(git_dir: Path, sha: str, timeout: float, env: Mapping[str, str]) -> set[str]:
    """What a whole export of `sha` holds, in `_entries`' terms: its files and symlinks, and its submodules
    (empty directories)."""
    out = _git(git_dir, ["ls-tree", "-r", "-z", "--full-tree", sha], timeout, env)
    return {os.fsdecode(entry.split(b"\t", 1)[1]) for entry in out.split(b"\0") if entry}
