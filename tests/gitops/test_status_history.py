"""`/status`'s history (`meshward status --history`): the last commits reconciled, newest first, each served,
superseded or rejected with its first errors, and the proxies that ACKed its config; bounded (issue 16)."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from meshward import cli
from reconciler.ops import status_table
from reconciler.ops.status import HISTORY_LENGTH, CommitRef, Status, SyncResult, Trigger, acked_by
from reconciler.xds.ads_status import ProxyStatus, SyncState

A, B, C = (CommitRef(c * 40, "dev", f"commit {c}\n\nbody") for c in "abc")
ERRORS = [f"p.yaml:{n}:1: error MW0204: bad weight" for n in range(1, 6)]


def _seen() -> Status:
    status = Status().synced(A)
    status = status.rejected(B, SyncResult.VALIDATION_FAILED, ERRORS)
    status = status.rejected(B, SyncResult.VALIDATION_FAILED, ERRORS, trigger=Trigger.CLUSTER)  # a re-try
    return status.synced(C).synced(C)  # the same commit compiled again: one entry


def test_history_says_served_superseded_and_rejected_with_first_errors() -> None:
    history = _seen().to_json()["history"]
    assert [(h["commit"]["sha"][0], h["result"]) for h in history] == [
        ("c", "Served"), ("b", "ValidationFailed"), ("a", "Superseded")]
    assert history[1]["errors"] == ERRORS[:3] and history[0]["errors"] == []
    assert history[0]["commit"]["subject"] == "commit c" and history[0]["at"] > 0


def test_history_is_bounded() -> None:
    status = Status()
    for n in range(HISTORY_LENGTH + 5):
        status = status.synced(CommitRef(f"{n:040d}"))
    assert len(status.history) == HISTORY_LENGTH and status.history[0].commit.sha == f"{HISTORY_LENGTH + 4:040d}"


def test_acked_by_counts_proxies_that_acked_a_config_of_the_commit() -> None:
    def proxy(node: str, version: str, state: SyncState) -> ProxyStatus:
        return ProxyStatus(node, 1, "sotw", 0.0, version, {}, state)

    origins = {"v1": A.sha, "v3": C.sha}
    found = acked_by([proxy("n1", "v3", SyncState.SYNCED), proxy("n2", "v1", SyncState.SYNCED),
                      proxy("n3", "v3", SyncState.STALE), proxy("n0", "v3", SyncState.SYNCED)], origins.get)
    assert found == ((A.sha, ("n2",)), (C.sha, ("n0", "n1")))
    history = Status(acked_by=found).synced(A).synced(C).to_json()["history"]
    assert [h["ackedBy"] for h in history] == [["n0", "n1"], ["n2"]]


def test_history_table() -> None:
    status = _seen().to_json()
    lines = status_table.render_history(status, 2).splitlines()
    assert lines[0].split() == ["COMMIT", "TIME", "(UTC)", "RESULT", "ACKED", "SUBJECT"]
    assert lines[1].startswith("c" * 12) and "Served" in lines[1] and lines[1].endswith("commit c")
    assert lines[2].startswith("b" * 12) and "ValidationFailed" in lines[2]
    assert lines[3:] == [f"  {line}" for line in ERRORS[:3]]


def test_status_history_command_reads_slash_status(capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps(_seen().to_json()).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body if self.path == "/status" else b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        admin = f"127.0.0.1:{server.server_address[1]}"
        assert cli.main(["status", "--admin-address", admin, "--history", "2"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in out] == ["COMMIT", "c" * 12, "b" * 12,
                                                     *[e.split()[0] for e in ERRORS[:3]]]
        assert cli.main(["status", "--admin-address", admin, "--history", "-o", "json"]) == 0
        assert [h["result"] for h in json.loads(capsys.readouterr().out)] == [
            "Served", "ValidationFailed", "Superseded"]
    finally:
        server.shutdown()
        server.server_close()


def test_history_table_names_the_proxies_that_acked() -> None:
    status = Status(acked_by=((C.sha, ("n0", "n1")),)).synced(C).to_json()
    lines = status_table.render_history(status, 10).splitlines()
    assert lines[1].split()[3:5] == ["Served", "2"] and lines[2:] == ["  acked by n0, n1"]
