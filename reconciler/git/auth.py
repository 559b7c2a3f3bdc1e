"""Credentials for the policy repository, kept out of every URL, command line, log line and status.

Why: a token in `--repo https://user:token@host/repo.git` was written to the logs on every re-clone, and git keeps
a clone's URL in its config. So the URL git sees never has credentials: they come from a file
(`--repo-credentials-file`, one line `username:password`, as Flux's and Argo CD's repository secrets hold a username
and a password or token) or from the environment (`MESHWARD_GIT_USERNAME`, `MESHWARD_GIT_PASSWORD`, e.g. from a
Secret's keys), or, for compatibility, are moved out of the URL. git asks for them through `GIT_ASKPASS`, which
reads them from the environment of that one git process; they are never an argument. Whatever text comes back from
git is still passed through `redact` before it is logged or shown.
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from pathlib import Path

USERNAME_ENV = "MESHWARD_GIT_USERNAME"
PASSWORD_ENV = "MESHWARD_GIT_PASSWORD"
_ASKPASS = f"""#!/bin/sh
# git asks "Username for '...'" then "Password for '...'": answer from the environment git was given
case "$1" in
  Username*) printf '%s\\n' "${USERNAME_ENV}" ;;
  *) printf '%s\\n' "${PASSWORD_ENV}" ;;
esac
"""
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]+@")


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = dataclasses.field(repr=False)

    @classmethod
    def parse(cls, line: str) -> Credentials:
        username, sep, password = line.strip().partition(":")
        if not sep or not username:
            raise ValueError("expected one line 'username:password'")
        return cls(username, password)


def from_file(path: Path) -> Credentials:
    return Credentials.parse(path.read_text())


def from_env() -> Credentials | None:
    username = os.environ.get(USERNAME_ENV)
    return Credentials(username, os.environ.get(PASSWORD_ENV, "")) if username else None


def split_url(url: str) -> tuple[str, Credentials | None]:
    """The URL without its userinfo, and the credentials that were in it (None when there were none)."""
    parts = urllib.parse.urlsplit(url)
    if "://" not in url or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return bare, Credentials(urllib.parse.unquote(username), urllib.parse.unquote(password))


def redact(text: str) -> str:
    """`text` with the userinfo of every URL in it replaced by `***`."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def askpass_env(credentials: Credentials | None, directory: Path) -> dict[str, str]:
    """The environment that lets git answer its own credential prompts with `credentials` (nothing to add when
    there are none: git then never prompts)."""
    if credentials is None:
        return {}
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "askpass.sh"
    script.write_text(_ASKPASS)
    script.chmod(0o700)
    return {"GIT_ASKPASS": str(script), USERNAME_ENV: credentials.username, PASSWORD_ENV: credentials.password}
