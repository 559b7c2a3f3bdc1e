"""The two sides `meshward diff` compares: a policy directory at a git revision, or as it is on disk.

A revision's directory is exported with `git archive` (reconciler.git.exports, which the reconciler uses for every
commit it serves) into a temporary directory, so what is compiled is what the commit holds, whatever the work tree
looks like. A revision that does not hold the directory yet is an empty tree (a pull request that adds the policy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import git

from reconciler.git import exports

_TIMEOUT = 120.0
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}


class RevisionError(Exception):
    """One line that says what is wrong: not a repository, an unknown revision, an export that failed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Tree:
    """A side to compile: the policy `directory` and the `root` its files are named from (the repository's top,
    so that names are the same on both sides and match the repository a reviewer browses)."""

    root: Path
    directory: Path


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """The policy directory inside a repository."""

    repo: git.Repo
    prefix: str  # its path from the repository's top, "." for the top itself
    directory: Path  # as on disk (the work tree side)

    def worktree(self) -> Tree:
        assert self.repo.working_tree_dir is not None
        return Tree(Path(self.repo.working_tree_dir).resolve(), self.directory.resolve())


def open_policy(path: str) -> Policy:
    directory = Path(path)
    if not directory.is_dir():
        raise RevisionError(f"{path}: not a directory (give the policy directory inside the repository)")
    try:
        repo = git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RevisionError(f"{path}: not inside a git repository") from None
    if repo.working_tree_dir is None:
        raise RevisionError(f"{path}: a bare repository has no policy directory to compare")
    prefix = os.path.relpath(directory.resolve(), Path(repo.working_tree_dir).resolve())
    return Policy(repo, prefix.replace(os.sep, "/"), directory)


def resolve(policy: Policy, rev: str) -> str:
    """The commit `rev` names (a branch, tag, sha, `HEAD~1`, ...)."""
    try:
        return policy.repo.commit(rev).hexsha
    except (git.BadName, git.BadObject, ValueError):
        raise RevisionError(f"unknown revision {rev!r}") from None


def label(policy: Policy, rev: str, sha: str) -> str:
    return rev if rev.startswith(sha[:7]) else f"{rev} ({sha[:7]})"


@contextlib.contextmanager
def exported(policy: Policy, sha: str) -> Iterator[Tree]:
    """The policy directory as commit `sha` holds it, in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="meshward-diff-") as tmp:
        root = Path(tmp) / "tree"
        scratch = Path(tmp) / "scratch"
        root.mkdir()
        scratch.mkdir()
        tree = policy.repo.commit(sha).tree
        try:
            held = policy.prefix == "." or tree / policy.prefix is not None
        except KeyError:
            held = False
        if held:
            paths = None if policy.prefix == "." else [policy.prefix]
            try:
                exports.extract(Path(policy.repo.git_dir), sha, root, scratch=scratch, timeout=_TIMEOUT,
                                env=_GIT_ENV, paths=paths)
            except (subprocess.SubprocessError, OSError) as err:
                raise RevisionError(f"cannot export {policy.prefix} at {sha[:7]}: {err}") from None
        target = root / policy.prefix
        target.mkdir(parents=True, exist_ok=True)
        yield Tree(root, target)
