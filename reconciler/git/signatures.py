"""Commit signature verification, delegated to git itself (`git verify-commit`), as Argo CD and Flux do.

We never parse signatures ourselves: git knows SSH (`gpg.format=ssh`, checked against an allowed-signers file) and
OpenPGP (checked with gpg against a keyring). The trust anchor is one file, `allowed_signers`:
- lines in OpenSSH's allowed-signers format (`PRINCIPALS [OPTIONS] KEYTYPE KEY`) for SSH-signed commits;
- and/or ASCII-armored OpenPGP public key blocks, imported into a private GNUPGHOME that holds nothing else, so
  the operator's own keyring never vouches for a commit.
A commit is accepted only if `git verify-commit` exits 0 with that configuration.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

_PGP_BLOCK = re.compile(
    r"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----\s*", re.DOTALL)
_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    detail: str  # git's own words (signer, or why it failed), for status and logs


class SignatureVerifier:
    """Checks commits of one repository against the keys in `allowed_signers`."""

    def __init__(self, allowed_signers: Path, state_dir: Path) -> None:
        text = allowed_signers.read_text()
        state_dir.mkdir(parents=True, exist_ok=True)
        self._ssh_file = state_dir / "allowed_signers"
        self._ssh_file.write_text(_PGP_BLOCK.sub("", text))
        self._gnupghome = state_dir / "gnupg"
        self._pgp_keys = "".join(m.group(0) for m in _PGP_BLOCK.finditer(text))
        self._keyring_ready = False

    def verify(self, git_dir: Path, sha: str) -> Verification:
        if self._pgp_keys and not self._keyring_ready:
            self._import_pgp_keys()
        cmd = ["git", "--git-dir", str(git_dir), "-c", f"gpg.ssh.allowedSignersFile={self._ssh_file}",
               "verify-commit", sha]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self._env(), timeout=_TIMEOUT_S,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Verification(False, f"cannot run git verify-commit: {exc}")
        detail = _summary(proc.stderr, failed=proc.returncode != 0)
        return Verification(proc.returncode == 0, detail)

    def close(self) -> None:
        """Stop the gpg-agent our private keyring may have started."""
        if self._keyring_ready and shutil.which("gpgconf"):
            subprocess.run(["gpgconf", "--kill", "all"], env=self._env(), capture_output=True, timeout=_TIMEOUT_S,
                           check=False)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, GNUPGHOME=str(self._gnupghome), GIT_TERMINAL_PROMPT="0")
        env.pop("GIT_DIR", None)
        return env

    def _import_pgp_keys(self) -> None:
        self._gnupghome.mkdir(mode=0o700, parents=True, exist_ok=True)
        # gpg starts its agent on first use and can fail while it comes up on a loaded machine: try a few times.
        for attempt in range(3):
            done = subprocess.run(["gpg", "--batch", "--import"], input=self._pgp_keys, text=True, env=self._env(),
                                  capture_output=True, timeout=_TIMEOUT_S, check=attempt == 2)
            if done.returncode == 0:
                break
            time.sleep(0.5 * (attempt + 1))
        self._keyring_ready = True


def _summary(stderr: str, *, failed: bool) -> str:
    """The most telling line of git/gpg/ssh-keygen's output.

    On failure that is the last line ("No principal matched.", "BAD signature ..."), since ssh-keygen first says the
    signature is cryptographically good before saying no allowed key matches it.
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "unsigned commit" if failed else "good signature"
    if failed and any("no signature" in ln.lower() for ln in lines):
        return "unsigned commit"
    if failed:
        return " ".join(lines[-2:])
    return next((ln for ln in lines if ln.lower().startswith("good")), lines[-1])
