"""`/status` after a rejected commit and then a good one: Synced, with no errors (issue 16). The rejection stays
under `lastRejected` for whoever wants its history."""

from __future__ import annotations

from reconciler.ops.status import CommitRef, Status, SyncResult


def test_a_served_commit_clears_the_errors_of_a_rejected_one() -> None:
    bad, good = CommitRef("b" * 40), CommitRef("c" * 40)
    rejected = Status().seen(bad, rewritten=False).rejected(bad, SyncResult.VALIDATION_FAILED, ["p.yaml:1:1: x"])
    assert rejected.errors == ("p.yaml:1:1: x",)
    served = rejected.seen(good, rewritten=False).synced(good)
    assert served.last_result is SyncResult.SYNCED
    assert served.errors == () and served.to_json()["errors"] == []
    assert served.to_json()["lastRejected"]["errors"] == ["p.yaml:1:1: x"]
