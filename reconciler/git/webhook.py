"""Push webhooks from GitHub and GitLab: authenticate, parse, decide whether to fetch now.

A webhook only ever triggers a fetch; it never says which commit to serve. So a replayed or forged-but-authenticated
payload can at worst cause one extra fetch that finds nothing new, and an unauthenticated one changes nothing.
Authentication follows each provider's documented scheme: GitHub signs the raw body with HMAC-SHA256
(`X-Hub-Signature-256: sha256=<hex>`), GitLab sends the shared secret itself (`X-Gitlab-Token`). Both are compared
in constant time.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import json
import os
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path


class Verdict(enum.StrEnum):
    TRIGGERED = "Triggered"  # a push to the followed ref: fetch now
    IGNORED = "Ignored"  # authentic, but not a push to what we follow (other branch, tag, other event)
    PONG = "Pong"  # GitHub's ping on webhook creation
    UNAUTHORIZED = "Unauthorized"  # bad or missing signature / token
    BAD_REQUEST = "BadRequest"  # authentic but unreadable
    DISABLED = "Disabled"  # no secret configured: we refuse unauthenticated webhooks


_STATUS_CODES = {Verdict.TRIGGERED: 202, Verdict.IGNORED: 202, Verdict.PONG: 200, Verdict.UNAUTHORIZED: 401,
                 Verdict.BAD_REQUEST: 400, Verdict.DISABLED: 403}


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    detail: str
    provider: str = ""
    ref: str = ""
    after: str = ""

    @property
    def status_code(self) -> int:
        return _STATUS_CODES[self.verdict]

    def to_json(self) -> dict[str, str]:
        return {"result": str(self.verdict), "detail": self.detail, "provider": self.provider, "ref": self.ref,
                "after": self.after}


@dataclasses.dataclass(frozen=True, slots=True)
class Push:
    ref: str
    after: str


def load_secret(*, file: Path | None = None, env: str | None = None) -> bytes | None:
    """The shared secret from a file (trailing newline stripped) or an environment variable; None if neither."""
    if file is not None:
        return file.read_bytes().rstrip(b"\r\n")
    if env and os.environ.get(env):
        return os.environ[env].encode()
    return None


def github_signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _parse_push(body: bytes, content_type: str) -> Push | None:
    """GitHub may send the JSON form-encoded in a `payload` field; GitLab always sends JSON."""
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            fields = urllib.parse.parse_qs(body.decode(), strict_parsing=True)
            body = fields["payload"][0].encode()
        data = json.loads(body)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, RecursionError):  # RecursionError: `[[[[...`
        return None                                                                 # nested past the C stack guard
    if not isinstance(data, dict) or not isinstance(data.get("ref"), str):
        return None
    after = data.get("after")
    return Push(ref=data["ref"], after=after if isinstance(after, str) else "")


class WebhookHandler:
    """Turns one HTTP request into an `Outcome`, and calls `trigger` when a fetch should happen."""

    def __init__(self, secret: bytes | None, refs: Callable[[], frozenset[str]], trigger: Callable[[], None]):
        self._secret = secret
        self._refs = refs  # the full refs we follow, e.g. {"refs/heads/main"} or {"refs/tags/v1.2"}
        self._trigger = trigger

    def handle(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        h = _lower(headers)
        if self._secret is None:
            return Outcome(Verdict.DISABLED, "no webhook secret configured")
        if "x-github-event" in h:
            return self._github(h, body)
        if "x-gitlab-event" in h:
            return self._gitlab(h, body)
        return Outcome(Verdict.UNAUTHORIZED, "neither X-GitHub-Event nor X-Gitlab-Event present")

    def _github(self, h: dict[str, str], body: bytes) -> Outcome:
        assert self._secret is not None
        given = h.get("x-hub-signature-256", "")
        if not given or not hmac.compare_digest(given.encode(), github_signature(self._secret, body).encode()):
            return Outcome(Verdict.UNAUTHORIZED, "missing or bad X-Hub-Signature-256", "github")
        event = h["x-github-event"]
        if event == "ping":
            return Outcome(Verdict.PONG, "pong", "github")
        return self._push("github", event == "push", body, h.get("content-type", "application/json"))

    def _gitlab(self, h: dict[str, str], body: bytes) -> Outcome:
        assert self._secret is not None
        given = h.get("x-gitlab-token", "")
        if not given or not hmac.compare_digest(given.encode(), self._secret):
            return Outcome(Verdict.UNAUTHORIZED, "missing or bad X-Gitlab-Token", "gitlab")
        is_push = h["x-gitlab-event"] in ("Push Hook", "Tag Push Hook")
        return self._push("gitlab", is_push, body, h.get("content-type", "application/json"))

    def _push(self, provider: str, is_push: bool, body: bytes, content_type: str) -> Outcome:
        if not is_push:
            return Outcome(Verdict.IGNORED, "not a push event", provider)
        push = _parse_push(body, content_type)
        if push is None:
            return Outcome(Verdict.BAD_REQUEST, "push payload without a string 'ref'", provider)
        if push.ref not in self._refs():
            return Outcome(Verdict.IGNORED, f"push to {push.ref}, not followed", provider, push.ref, push.after)
        self._trigger()
        return Outcome(Verdict.TRIGGERED, "fetch scheduled", provider, push.ref, push.after)
