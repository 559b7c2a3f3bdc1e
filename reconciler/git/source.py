"""The git source: follows a branch (or a pinned tag / commit) and hands on each new head as a directory on disk.

Why a bare mirror plus per-commit exports: the mirror is only ever fetched into, never checked out, so a half-done
fetch cannot leave a half-updated tree behind; each commit the compiler sees is an immutable directory of its own
(`commits/<sha>`), written to a temporary name and renamed into place. Exports use `git archive` with in-tree
`export-ignore` / `export-subst` attributes overridden, and tar's `data` filter. That filter is not what keeps the
compiler inside the commit (what it lets through differs between Python patch releases: a symlink chain extracted in
the right order escaped): the loop and the loader resolve every path they read against the export and refuse what
leaves it (reconciler.loop, compiler.discovery). A commit after the first is written as the last export's
unchanged files hard-linked plus an archive of the changed paths, checked against the commit's tree
(reconciler.git.exports), else whole.

Failure policy (the reconciler must never crash on its input): every failure becomes a `SourceError` with a stable
`SourceErrorKind`; the caller keeps serving what it has. When the remote answers but the local mirror cannot serve
the request (objects damaged, directory deleted), the mirror is re-cloned once per poll.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import git

from reconciler.git import auth, exports, signatures
from reconciler.ops.status import CommitRef, SourceErrorKind

log = logging.getLogger(__name__)

_GIT_ERRORS = (git.GitCommandError, git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError, OSError,
               tarfile.TarError, subprocess.SubprocessError)
# Never prompt for credentials, never read the operator's global config for things that change behaviour.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_CONFIG_NOSYSTEM": "1"}
# Attributes in $GIT_DIR/info/attributes win over the tree's own .gitattributes: export every file verbatim.
_EXPORT_ATTRIBUTES = "* -export-ignore -export-subst\n"


@dataclasses.dataclass(frozen=True, slots=True)
class SourceConfig:
    url: str  # anything `git clone` accepts: URL, local path, bare repository
    workdir: Path  # owned by the source: mirror, exports, verifier state
    branch: str = "main"
    rev: str | None = None  # pinned tag or commit; when set, `branch` is not followed
    verify_signatures: bool = False
    allowed_signers: Path | None = None
    keep: int = 3  # exported commit directories kept on disk
    timeout: float = 120.0  # seconds per git network operation
    credentials: auth.Credentials | None = None  # for an https remote; credentials in `url` are used if None


@dataclasses.dataclass(frozen=True, slots=True)
class FetchedCommit:
    commit: CommitRef
    tree: Path | None  # None when the signature check failed: unverified content is never written out
    signature: signatures.Verification | None  # None when signatures are not checked
    rewritten: bool  # the previous head is not an ancestor (force-push, or a pin moved backwards)


class SourceError(Exception):
    """What went wrong, for logs and /status: any URL in the message (git may echo one) has its userinfo redacted."""

    def __init__(self, kind: SourceErrorKind, message: str) -> None:
        message = auth.redact(message)
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class _RevMissing(Exception):
    pass


class GitSource:
    """Polled by the loop (from a worker thread, one poll at a time); `poll()` returns a new head or None."""

    def __init__(self, config: SourceConfig) -> None:
        if config.verify_signatures and config.allowed_signers is None:
            raise ValueError("verify_signatures needs allowed_signers")
        self.config = config
        self._url, in_url = auth.split_url(config.url)  # what git and the logs see: never any credentials
        self._env = {**_GIT_ENV, **auth.askpass_env(config.credentials or in_url, config.workdir)}
        self._mirror = config.workdir / "mirror.git"
        self._exports = config.workdir / "commits"
        self._last_sha: str | None = None
        self._exported: list[Path] = []
        self._verifier = (signatures.SignatureVerifier(config.allowed_signers, config.workdir / "signers")
                          if config.verify_signatures and config.allowed_signers else None)
        shutil.rmtree(self._exports, ignore_errors=True)  # leftovers of an earlier run are never served

    @property
    def followed_refs(self) -> frozenset[str]:
        """Full ref names whose pushes matter (for the webhook)."""
        if self.config.rev:
            return frozenset({f"refs/tags/{self.config.rev}", f"refs/heads/{self.config.rev}"})
        return frozenset({f"refs/heads/{self.config.branch}"})

    @property
    def last_sha(self) -> str | None:
        return self._last_sha

    def close(self) -> None:
        if self._verifier:
            self._verifier.close()

    def poll(self) -> FetchedCommit | None:
        """Fetch; return the head if it differs from the last one handed on. Raises only `SourceError`."""
        try:
            return self._attempt()
        except _RevMissing as exc:
            if self._mirror_healthy():
                raise SourceError(SourceErrorKind.REV_NOT_FOUND, str(exc)) from None
            first: Exception = exc
        except _GIT_ERRORS as exc:
            first = exc
        self._check_remote()  # raises when the remote, not our clone, is the problem
        log.warning("local clone unusable (%s); re-cloning %s", auth.redact(_one_line(first)), self._url)
        self._clone()
        try:
            return self._attempt()
        except _RevMissing as exc:
            raise SourceError(SourceErrorKind.REV_NOT_FOUND, str(exc)) from None
        except _GIT_ERRORS as exc:
            raise SourceError(SourceErrorKind.CLONE_CORRUPT, _one_line(exc)) from None

    # The pipeline of one poll.

    def _attempt(self) -> FetchedCommit | None:
        if not self._mirror_exists():
            self._clone()
        self._fetch()
        sha = self._resolve()
        if sha == self._last_sha:
            return None
        fetched = self._describe(sha)
        self._last_sha = sha
        return fetched

    def _describe(self, sha: str) -> FetchedCommit:
        with git.Repo(self._mirror) as repo:
            c = repo.commit(sha)
            author = f"{c.author.name} <{c.author.email}>"
            message = c.message if isinstance(c.message, str) else c.message.decode(errors="replace")
            rewritten = self._last_sha is not None and not _is_ancestor(repo, self._last_sha, sha)
        ref = CommitRef(sha=sha, author=author, message=message.strip())
        verification = self._verifier.verify(self._mirror, sha) if self._verifier else None
        tree = self._export(sha) if verification is None or verification.ok else None
        return FetchedCommit(ref, tree, verification, rewritten)

    # Git operations.

    def _git(self) -> git.Git:
        return git.Git(self._mirror)

    def _mirror_exists(self) -> bool:
        return (self._mirror / "HEAD").is_file() and (self._mirror / "objects").is_dir()

    def _clone(self) -> None:
        shutil.rmtree(self._mirror, ignore_errors=True)
        self.config.workdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="clone-", dir=self.config.workdir))
        try:
            # --no-local: never hardlink a local origin's objects, so damage to one cannot reach the other.
            git.Git(self.config.workdir).execute(
                ["git", "clone", "--bare", "--no-local", "--no-tags", "--", self._url, str(tmp / "m")],
                kill_after_timeout=self.config.timeout, env=self._env)
            (tmp / "m" / "info").mkdir(exist_ok=True)
            (tmp / "m" / "info" / "attributes").write_text(_EXPORT_ATTRIBUTES)
            os.replace(tmp / "m", self._mirror)
        except git.GitCommandError as exc:
            raise SourceError(SourceErrorKind.UNREACHABLE, f"clone failed: {_one_line(exc)}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _refspecs(self) -> list[str]:
        if self.config.rev:
            return ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        b = self.config.branch
        return [f"+refs/heads/{b}:refs/remotes/origin/{b}"]

    def _fetch(self) -> None:
        self._git().execute(["git", "fetch", "--no-tags", "--prune", "origin", *self._refspecs()],
                            kill_after_timeout=self.config.timeout, env=self._env)

    def _resolve(self) -> str:
        rev = self.config.rev
        candidates = ([f"refs/tags/{rev}", f"refs/remotes/origin/{rev}", rev] if rev
                      else [f"refs/remotes/origin/{self.config.branch}"])
        for name in candidates:
            status, out, _ = self._git().execute(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
                                                 with_extended_output=True, with_exceptions=False)
            if status == 0 and isinstance(out, str) and out.strip():
                return out.strip()
        raise _RevMissing(f"{rev or self.config.branch!r} does not name a commit")

    def _mirror_healthy(self) -> bool:
        if not self._mirror_exists():
            return False
        status, _, _ = self._git().execute(["git", "fsck", "--connectivity-only", "--no-dangling"],
                                           with_extended_output=True, with_exceptions=False,
                                           kill_after_timeout=self.config.timeout)
        return status == 0

    def _check_remote(self) -> None:
        """Raise the right `SourceError` if the remote is unreachable or lacks our branch; return if it is fine."""
        try:
            out = git.Git(self.config.workdir).execute(
                ["git", "ls-remote", "--", self._url], kill_after_timeout=self.config.timeout, env=self._env)
        except git.GitCommandError as exc:
            raise SourceError(SourceErrorKind.UNREACHABLE, _one_line(exc)) from None
        refs = {line.split("\t", 1)[1] for line in str(out).splitlines() if "\t" in line}
        if not self.config.rev and f"refs/heads/{self.config.branch}" not in refs:
            raise SourceError(SourceErrorKind.BRANCH_MISSING,
                              f"branch {self.config.branch!r} does not exist on {self._url}")

    # Exports.

    def _export(self, sha: str) -> Path:
        dest = self._exports / sha
        if dest.is_dir():
            return dest
        self._exports.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=self._exports))
        try:
            if not self._extract_from_last(sha, tmp):
                shutil.rmtree(tmp)
                tmp.mkdir()
                exports.extract(self._mirror, sha, tmp, scratch=self.config.workdir, timeout=self.config.timeout,
                                env=self._env)
            os.replace(tmp, dest)
        except (tarfile.TarError, OSError, subprocess.SubprocessError) as exc:
            raise SourceError(SourceErrorKind.EXPORT_FAILED, f"{sha[:12]}: {_one_line(exc)}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._remember(dest)
        return dest

    def _extract_from_last(self, sha: str, into: Path) -> bool:
        """The last export plus what changed since (reconciler.git.exports); False when that cannot be done, for
        whatever reason: the caller then exports the commit whole, which reports its own errors."""
        base = self._exported[-1] if self._exported else None
        if base is None or not base.is_dir():
            return False
        try:
            return exports.extract_from(self._mirror, base, base.name, sha, into, scratch=self.config.workdir,
                                        timeout=self.config.timeout, env=self._env)
        except (tarfile.TarError, OSError, subprocess.SubprocessError, ValueError) as exc:
            log.info("exporting %s whole: %s", sha[:12], auth.redact(_one_line(exc)))
            return False

    def _remember(self, dest: Path) -> None:
        self._exported = [p for p in self._exported if p != dest] + [dest]
        while len(self._exported) > max(self.config.keep, 1):
            shutil.rmtree(self._exported.pop(0), ignore_errors=True)


def _is_ancestor(repo: git.Repo, ancestor: str, sha: str) -> bool:
    """False also when the old head is gone from the history we fetched (rewritten and re-cloned)."""
    status, _, _ = repo.git.execute(["git", "merge-base", "--is-ancestor", ancestor, sha],
                                    with_extended_output=True, with_exceptions=False)
    return status == 0


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, git.GitCommandError):
        text = str(exc.stderr or exc).strip()
        lines = [ln.strip() for ln in text.replace("stderr:", "").splitlines() if ln.strip().strip("'")]
        return "; ".join(ln.strip("'").strip() for ln in lines[-2:]) or str(exc)
    if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
        err = exc.stderr if isinstance(exc.stderr, str) else bytes(exc.stderr).decode(errors="replace")
        return (err.strip().splitlines() or [str(exc)])[-1]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
