"""Real git repositories for the GitOps tests: a bare "remote" plus a working clone that commits and pushes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
_IDENTITY = ["-c", "user.name=t", "-c", "user.email=t@e", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]


def run_git(cwd: Path, *args: str, check: bool = True, extra_env: Mapping[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_ENV)
    env.update(extra_env or {})
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
               gpg_key: tuple[Path, str] | None = None, push: bool = True) -> str:
        """Write (or delete, for None) files, commit, push to main; return the sha."""
        self.write(files)
        run_git(self.work, "add", "-A")
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_with}", "commit", "-S"] if sign_with \
            else ["commit"]
        env = None
        if gpg_key:  # (GNUPGHOME, key fingerprint)
            sign = ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={gpg_key[1]}", "commit", "-S"]
            env = {"GNUPGHOME": str(gpg_key[0])}
        run_git(self.work, *sign, "--allow-empty", "-m", message, extra_env=env)
        if push:
            self.push()
        return self.head()

    def write(self, files: Mapping[str, str | None]) -> None:
        """Write (or delete, for None) files in the working clone, without committing."""
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)

    def head(self) -> str:
        return run_git(self.work, "rev-parse", "HEAD")

    def push(self, *, force: bool = False, branch: str = "main") -> None:
        run_git(self.work, "push", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{branch}")



def ssh_key(directory: Path, name: str) -> tuple[Path, str]:
    """A fresh ed25519 key without passphrase: (private key path, public key line)."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True,
                   capture_output=True, timeout=30)
    return key, key.with_suffix(".pub").read_text().strip()


def gpg_key(home: Path, uid: str) -> str:
    """A fresh OpenPGP signing key without passphrase in keyring `home`; returns its fingerprint."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
                   env=env, check=True, capture_output=True, timeout=60)
    out = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env, check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def gpg_export(home: Path, fingerprint: str) -> str:
    env = dict(os.environ, GNUPGHOME=str(home))
    return subprocess.run(["gpg", "--batch", "--armor", "--export", fingerprint], env=env, check=True,
                          capture_output=True, text=True, timeout=30).stdout


def gpg_stop(home: Path) -> None:
    subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=str(home)), capture_output=True,
                   timeout=30, check=False)
