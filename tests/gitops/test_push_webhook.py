"""Push webhook authentication and parsing, GitHub and GitLab, as the providers document their payloads."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from reconciler.git.webhook import Verdict, WebhookHandler, github_signature, load_secret

SECRET = b"s3cret"
MAIN = frozenset({"refs/heads/main"})
PUSH_MAIN = json.dumps({"ref": "refs/heads/main", "after": "a" * 40, "repository": {"full_name": "o/r"}}).encode()
PUSH_OTHER = json.dumps({"ref": "refs/heads/feature", "after": "b" * 40}).encode()


class Triggers:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def handler(secret: bytes | None = SECRET) -> tuple[WebhookHandler, Triggers]:
    triggers = Triggers()
    return WebhookHandler(secret, lambda: MAIN, triggers), triggers


def github(body: bytes, *, signature: str | None = None, event: str = "push") -> dict[str, str]:
    headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return headers


def test_github_signature_is_hmac_sha256_of_the_raw_body() -> None:
    # The example from GitHub's "Validating webhook deliveries" documentation.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert github_signature(b"It's a Secret to Everybody", b"Hello, World!") == expected


def test_github_good_signature_triggers() -> None:
    h, triggers = handler()
    outcome = h.handle(github(PUSH_MAIN, signature=github_signature(SECRET, PUSH_MAIN)), PUSH_MAIN)
    assert (outcome.verdict, outcome.status_code, triggers.count) == (Verdict.TRIGGERED, 202, 1)
    assert outcome.ref == "refs/heads/main" and outcome.after == "a" * 40


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc",
                                       github_signature(b"other secret", PUSH_MAIN)])
def test_github_bad_or_missing_signature_is_401_and_changes_nothing(signature: str | None) -> None:
    h, triggers = handler()
    outcome = h.handle(github(PUSH_MAIN, signature=signature), PUSH_MAIN)
    assert (outcome.verdict, outcome.status_code, triggers.count) == (Verdict.UNAUTHORIZED, 401, 0)


def test_github_signature_of_another_body_is_refused() -> None:
    h, triggers = handler()
    outcome = h.handle(github(PUSH_MAIN, signature=github_signature(SECRET, PUSH_OTHER)), PUSH_MAIN)
    assert outcome.verdict is Verdict.UNAUTHORIZED and triggers.count == 0


def test_push_to_another_branch_is_ignored() -> None:
    h, triggers = handler()
    outcome = h.handle(github(PUSH_OTHER, signature=github_signature(SECRET, PUSH_OTHER)), PUSH_OTHER)
    assert (outcome.verdict, outcome.status_code, triggers.count) == (Verdict.IGNORED, 202, 0)


def test_github_ping_and_other_events() -> None:
    h, triggers = handler()
    body = b'{"zen": "Keep it logically awesome."}'
    assert h.handle(github(body, signature=github_signature(SECRET, body), event="ping"), body).status_code == 200
    issue = h.handle(github(body, signature=github_signature(SECRET, body), event="issues"), body)
    assert issue.verdict is Verdict.IGNORED and triggers.count == 0


def test_github_form_encoded_payload() -> None:
    h, triggers = handler()
    body = urllib.parse.urlencode({"payload": PUSH_MAIN.decode()}).encode()
    headers = github(body, signature=github_signature(SECRET, body))
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert h.handle(headers, body).verdict is Verdict.TRIGGERED and triggers.count == 1


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"after": "x"}', b'{"ref": 3}',
                                  b'{"ref": "refs/heads/main", "x": ' + b"[" * 500_000 + b"]" * 500_000 + b"}"])
def test_authentic_but_unreadable_payload_is_400(body: bytes) -> None:
    h, triggers = handler()
    outcome = h.handle(github(body, signature=github_signature(SECRET, body)), body)
    assert (outcome.status_code, triggers.count) == (400, 0)


def test_replayed_delivery_only_triggers_another_fetch() -> None:
    h, triggers = handler()
    headers = github(PUSH_MAIN, signature=github_signature(SECRET, PUSH_MAIN))
    assert [h.handle(headers, PUSH_MAIN).verdict for _ in range(2)] == [Verdict.TRIGGERED] * 2
    assert triggers.count == 2  # a trigger is a fetch, never a choice of commit; see the admin test for the effect


def test_gitlab_token() -> None:
    h, triggers = handler()
    good = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode()}
    assert h.handle(good, PUSH_MAIN).verdict is Verdict.TRIGGERED
    for bad in ({"X-Gitlab-Event": "Push Hook"}, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"}):
        assert h.handle(bad, PUSH_MAIN).status_code == 401
    assert h.handle(good, PUSH_OTHER).verdict is Verdict.IGNORED
    assert h.handle({**good, "X-Gitlab-Event": "Issue Hook"}, PUSH_MAIN).verdict is Verdict.IGNORED
    assert triggers.count == 1


def test_header_names_are_case_insensitive() -> None:
    h, triggers = handler()
    headers = {"x-github-event": "push", "x-hub-signature-256": github_signature(SECRET, PUSH_MAIN)}
    assert h.handle(headers, PUSH_MAIN).verdict is Verdict.TRIGGERED and triggers.count == 1


def test_unknown_provider_and_missing_secret_are_refused() -> None:
    h, _ = handler()
    assert h.handle({"Content-Type": "application/json"}, PUSH_MAIN).status_code == 401
    disabled, triggers = handler(secret=None)
    outcome = disabled.handle(github(PUSH_MAIN, signature=github_signature(b"", PUSH_MAIN)), PUSH_MAIN)
    assert (outcome.verdict, triggers.count) == (Verdict.DISABLED, 0)


def test_load_secret_from_file_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret").write_text("from-file\n")
    assert load_secret(file=tmp_path / "secret") == b"from-file"
    monkeypatch.setenv("MESHWARD_WEBHOOK_SECRET", "from-env")
    assert load_secret(env="MESHWARD_WEBHOOK_SECRET") == b"from-env"
    assert load_secret(env="MESHWARD_UNSET_VARIABLE") is None
