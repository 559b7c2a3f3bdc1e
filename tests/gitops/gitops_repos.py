"""Real git repositories for the GitOps tests: a bare "remote" plus a working clone that commits and pushes."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_DATE": "", "GIT_COMMITTER_DATE": ""}
_IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@e", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]


def run_git(cwd: Path, *args: str, check: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({k: v for k, v in _ENV.items() if v})
    env["HOME"] = str(cwd)  # no global config of the machine leaks into the tests
    proc = subprocess.run(["git", *_IDENTITY, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


class Remote:
    """`bare` is what the source clones; `work` is a developer's clone."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        self.work = root / "dev"
        root.mkdir(parents=True, exist_ok=True)
        run_git(root, "init", "--bare", "--initial-branch=main", str(self.bare))
        run_git(root, "clone", str(self.bare), str(self.work))
        run_git(self.work, "checkout", "-B", "main")

    def commit(self, files: Mapping[str, str | None], message: str = "change", *, sign_with: Path | None = None,
               push: bool = True) -> str:
        """Write (or delete, for None) files, commit, push to main; return the sha."""
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        run_git(self.work, "add", "-A")
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_with}", "commit", "-S"] if sign_with \
            else ["commit"]
        run_git(self.work, *sign, "--allow-empty", "-m", message)
        if push:
            self.push()
        return self.head()

    def head(self) -> str:
        return run_git(self.work, "rev-parse", "HEAD")

    def push(self, *, force: bool = False, branch: str = "main") -> None:
        run_git(self.work, "push", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{branch}")


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    yield Remote(tmp_path / "remote")
    shutil.rmtree(tmp_path / "remote", ignore_errors=True)
