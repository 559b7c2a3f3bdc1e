"""Local identity tokens: minted with the CA directory's key, verified with it; expired, forged (another CA's key,
an edited payload) and malformed tokens are refused with the reason."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

import pytest

from reconciler.identity import tokens

WEB = tokens.Caller("shop", "web")
HOUR = datetime.timedelta(hours=1)


def test_a_minted_token_verifies_as_its_caller(tmp_path: Path) -> None:
    key = tokens.load_or_create_key(tmp_path / "ca")
    assert (tmp_path / "ca" / tokens.TOKEN_KEY).stat().st_mode & 0o777 == 0o600
    token = tokens.mint(key, WEB, ttl=HOUR)
    assert tokens.verify(tokens.load_or_create_key(tmp_path / "ca").public_key(), token) == WEB
    assert tokens.unverified_caller(token) == WEB


def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    key = tokens.load_or_create_key(tmp_path)
    old = datetime.datetime.now(datetime.UTC) - 2 * HOUR
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(key.public_key(), tokens.mint(key, WEB, ttl=HOUR, now=old))


def test_a_token_from_another_ca_is_refused(tmp_path: Path) -> None:
    ours, theirs = tokens.load_or_create_key(tmp_path / "a"), tokens.load_or_create_key(tmp_path / "b")
    with pytest.raises(tokens.TokenError, match="signature does not verify"):
        tokens.verify(ours.public_key(), tokens.mint(theirs, WEB, ttl=HOUR))


def test_a_token_with_an_edited_payload_is_refused(tmp_path: Path) -> None:
    key = tokens.load_or_create_key(tmp_path)
    head, payload, signature = tokens.mint(key, WEB, ttl=HOUR).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(ns="kube-system", sub="system:serviceaccount:kube-system:web")
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(tokens.TokenError, match="signature does not verify"):
        tokens.verify(key.public_key(), f"{head}.{edited}.{signature}")


@pytest.mark.parametrize(("token", "reason"), [
    ("", "malformed"),
    ("garbage", "malformed"),
    ("a.b.c", "malformed"),
    ("x" * 20_000, "over the 16 KiB limit"),
])
def test_malformed_tokens_are_refused(tmp_path: Path, token: str, reason: str) -> None:
    with pytest.raises(tokens.TokenError, match=reason):
        tokens.verify(tokens.load_or_create_key(tmp_path).public_key(), token)
