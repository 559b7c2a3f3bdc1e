"""The reconcile pipeline on real repositories with a fake compiler and a fake snapshot cache.

The fake compiler calls a commit invalid when its tree holds a file `BROKEN`, and raises (a compiler bug) when it
holds `RAISE`; otherwise the "model" is the text of `mesh.yaml`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gitops_fakes import FakeCache, FakeCompiler, snapshot_for
from gitops_repos import Remote, run_git

from reconciler.git.signatures import Verification
from reconciler.git.source import FetchedCommit, GitSource, SourceConfig
from reconciler.loop import LoopConfig, Reconciler
from reconciler.ops.status import CommitRef, SourceErrorKind, SyncResult

WAIT_S = 10.0


class CountingSource:
    """A real GitSource that counts fetches."""

    def __init__(self, source: GitSource) -> None:
        self.source = source
        self.polls = 0

    def poll(self) -> FetchedCommit | None:
        self.polls += 1
        return self.source.poll()


@dataclasses.dataclass
class Rig:
    remote: Remote
    source: CountingSource
    compiler: FakeCompiler
    cache: FakeCache
    reconciler: Reconciler


def make_rig(remote: Remote, tmp_path: Path, *, config: LoopConfig | None = None, fail_publish: bool = False) -> Rig:
    source = CountingSource(GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work")))
    compiler, cache = FakeCompiler(), FakeCache(fail=fail_publish)
    rec = Reconciler(source, build=compiler.build, snapshot_for=snapshot_for, publisher=cache,
                     config=config or LoopConfig())
    return Rig(remote, source, compiler, cache, rec)


@pytest.fixture
def rig(remote: Remote, tmp_path: Path) -> Rig:
    return make_rig(remote, tmp_path)


def once(rig: Rig) -> SyncResult | None:
    return asyncio.run(asyncio.wait_for(rig.reconciler.reconcile_once(), WAIT_S))


def metric(rig: Rig, name: str, labels: dict[str, str] | None = None) -> float:
    value = rig.reconciler.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def test_first_good_commit_is_published_and_resolvable(rig: Rig) -> None:
    sha = rig.remote.commit({"mesh.yaml": "good: 1\n"})
    assert not rig.reconciler.ready
    assert once(rig) is SyncResult.SYNCED
    assert rig.cache.revisions == [sha]
    assert rig.cache.published[0][1]("sidecar~1") == ("good: 1\n", "sidecar~1")
    status = rig.reconciler.status
    assert status.ready and status.serving is not None and status.serving.sha == sha
    assert status.last_result is SyncResult.SYNCED
    assert once(rig) is None and len(rig.compiler.calls) == 1  # compiled once
    assert metric(rig, "meshward_commits_applied_total") == 1
    assert metric(rig, "meshward_last_applied_commit_info", {"sha": sha, "author": "t <t@e>"}) == 1
    assert threading.get_ident() not in rig.compiler.threads  # compiled in a worker thread


def test_invalid_commit_keeps_last_good_and_next_good_recovers(rig: Rig) -> None:
    good = rig.remote.commit({"mesh.yaml": "good: 1\n"})
    once(rig)
    bad = rig.remote.commit({"BROKEN": "", "mesh.yaml": "bad\n"}, "break it")
    assert once(rig) is SyncResult.VALIDATION_FAILED
    status = rig.reconciler.status
    assert rig.cache.revisions == [good]
    assert status.serving is not None and status.serving.sha == good
    assert status.last_seen is not None and status.last_seen.sha == bad
    assert status.last_result is SyncResult.VALIDATION_FAILED
    assert status.last_rejected is not None and status.last_rejected.commit.sha == bad
    assert status.last_rejected.errors[0].startswith("mesh.yaml:3:7: error MW0001: bad indentation")
    assert status.last_rejected.errors[1].startswith("mesh.yaml:3:7: error MW0002: duplicate key 'a'")
    assert metric(rig, "meshward_commits_rejected_total", {"result": "ValidationFailed"}) == 1
    assert metric(rig, "meshward_sync_result", {"result": "ValidationFailed"}) == 1
    fixed = rig.remote.commit({"BROKEN": None, "mesh.yaml": "good: 2\n"}, "fix it")
    assert once(rig) is SyncResult.SYNCED
    assert rig.cache.revisions == [good, fixed]
    assert rig.reconciler.status.last_result is SyncResult.SYNCED
    assert rig.reconciler.status.to_json()["serving"]["sha"] == fixed


def test_flagged_commit_is_served_and_reported(rig: Rig) -> None:
    """An analyzer error about a config Pilot serves: served, and on /status, the log and the metric."""
    flagged = rig.remote.commit({"FLAGGED": "", "mesh.yaml": "good: 1\n"})
    assert once(rig) is SyncResult.SYNCED
    status = rig.reconciler.status
    assert rig.cache.revisions == [flagged] and status.last_result is SyncResult.SYNCED
    assert status.to_json()["flagged"] == [
        ('mesh.yaml:5:9: error MW0302: host "gone" is not defined '
         "(define a Service or ServiceEntry for the host, or fix the name) [IST0101]")]
    assert metric(rig, "meshward_flagged_findings", {"code": "MW0302", "istio_code": "IST0101"}) == 1
    rig.remote.commit({"FLAGGED": None, "mesh.yaml": "good: 2\n"}, "fix it")
    assert once(rig) is SyncResult.SYNCED
    assert rig.reconciler.status.to_json()["flagged"] == []
    assert metric(rig, "meshward_flagged_findings", {"code": "MW0302", "istio_code": "IST0101"}) == 0


def test_compiler_exception_is_a_system_error_and_never_published(rig: Rig) -> None:
    good = rig.remote.commit({"mesh.yaml": "good: 1\n"})
    once(rig)
    rig.remote.commit({"RAISE": ""})
    assert once(rig) is SyncResult.SYNC_FAILED
    assert rig.cache.revisions == [good]
    rejected = rig.reconciler.status.last_rejected
    assert rejected is not None and "compiler bug" in rejected.errors[0]


def test_publish_failure_keeps_serving_the_old_commit(remote: Remote, tmp_path: Path) -> None:
    rig = make_rig(remote, tmp_path, fail_publish=True)
    remote.commit({"mesh.yaml": "good: 1\n"})
    assert once(rig) is SyncResult.SYNC_FAILED
    assert not rig.reconciler.ready
    assert metric(rig, "meshward_commits_rejected_total", {"result": "SyncFailed"}) == 1


def test_source_error_is_reported_and_clears_itself(rig: Rig) -> None:
    good = rig.remote.commit({"mesh.yaml": "good: 1\n"})
    once(rig)
    run_git(rig.remote.bare, "update-ref", "-d", "refs/heads/main")
    assert once(rig) is SyncResult.SOURCE_ERROR
    status = rig.reconciler.status
    assert status.last_result is SyncResult.SOURCE_ERROR and status.ready
    assert status.source_error is not None and status.source_error.kind is SourceErrorKind.BRANCH_MISSING
    assert status.serving is not None and status.serving.sha == good
    assert metric(rig, "meshward_source_errors_total", {"kind": "BranchMissing"}) == 1
    rig.remote.push()
    assert once(rig) is None
    assert rig.reconciler.status.last_result is SyncResult.SYNCED
    assert rig.reconciler.status.source_error is None


def test_force_push_is_reconciled_and_flagged(rig: Rig) -> None:
    first = rig.remote.commit({"mesh.yaml": "good: 1\n"})
    once(rig)
    rig.remote.commit({"mesh.yaml": "good: 2\n"})
    once(rig)
    run_git(rig.remote.work, "reset", "--hard", first)
    rewritten = rig.remote.commit({"mesh.yaml": "good: 3\n"}, push=False)
    rig.remote.push(force=True)
    assert once(rig) is SyncResult.SYNCED
    assert rig.cache.revisions[-1] == rewritten
    assert rig.reconciler.status.history_rewritten


def test_missing_policy_directory_is_a_validation_failure(remote: Remote, tmp_path: Path) -> None:
    rig = make_rig(remote, tmp_path, config=LoopConfig(path="policies"))
    remote.commit({"mesh.yaml": "good: 1\n"})
    assert once(rig) is SyncResult.VALIDATION_FAILED
    remote.commit({"policies/mesh.yaml": "good: 2\n"})
    assert once(rig) is SyncResult.SYNCED
    assert rig.compiler.calls[-1].name == "policies"


class FakeSource:
    def __init__(self, fetched: list[FetchedCommit]) -> None:
        self.fetched = fetched
        self.polls = 0

    def poll(self) -> FetchedCommit | None:
        self.polls += 1
        return self.fetched.pop(0) if self.fetched else None


def test_bad_signature_is_rejected_without_compiling(tmp_path: Path) -> None:
    bad = FetchedCommit(CommitRef("a" * 40, "m <m@e>", "evil"), None, Verification(False, "No principal matched."),
                        False)
    compiler, cache = FakeCompiler(), FakeCache()
    rec = Reconciler(FakeSource([bad]), build=compiler.build, snapshot_for=snapshot_for, publisher=cache)
    assert asyncio.run(rec.reconcile_once()) is SyncResult.SIGNATURE_INVALID
    assert compiler.calls == [] and cache.published == []
    rejected = rec.status.last_rejected
    assert rejected is not None and rejected.errors == (f"{'a' * 40}: No principal matched.",)


async def _until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT_S):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


async def _running(rec: Reconciler, body: Callable[[], Any]) -> None:
    task = asyncio.create_task(rec.run())
    try:
        await body()
    finally:
        rec.stop()
        await asyncio.wait_for(task, WAIT_S)


def test_polling_picks_up_new_commits(remote: Remote, tmp_path: Path) -> None:
    rig = make_rig(remote, tmp_path, config=LoopConfig(poll_interval=0.1, debounce=0.01))
    first = remote.commit({"mesh.yaml": "good: 1\n"})

    async def body() -> None:
        await _until(lambda: rig.cache.revisions == [first], "first commit served")
        second = remote.commit({"mesh.yaml": "good: 2\n"})
        await _until(lambda: rig.cache.revisions == [first, second], "second commit served by polling")

    asyncio.run(_running(rig.reconciler, body))


def test_trigger_fetches_immediately_and_bursts_are_debounced(remote: Remote, tmp_path: Path) -> None:
    rig = make_rig(remote, tmp_path, config=LoopConfig(poll_interval=3600, debounce=1.0))
    first = remote.commit({"mesh.yaml": "good: 1\n"})

    async def body() -> None:
        await _until(lambda: rig.cache.revisions == [first], "first commit served")
        second = remote.commit({"mesh.yaml": "good: 2\n"})
        for _ in range(10):  # a burst spread over ~0.2 s, well inside the debounce window
            rig.reconciler.trigger()
            await asyncio.sleep(0.02)
        await _until(lambda: rig.cache.revisions == [first, second], "second commit served after trigger")
        assert rig.source.polls == 2  # the initial fetch, then one for the whole burst

    asyncio.run(_running(rig.reconciler, body))


def test_trigger_from_another_thread(remote: Remote, tmp_path: Path) -> None:
    rig = make_rig(remote, tmp_path, config=LoopConfig(poll_interval=3600, debounce=0.01))
    first = remote.commit({"mesh.yaml": "good: 1\n"})

    async def body() -> None:
        await _until(lambda: rig.cache.revisions == [first], "first commit served")
        second = remote.commit({"mesh.yaml": "good: 2\n"})
        thread = threading.Thread(target=rig.reconciler.trigger)
        thread.start()
        thread.join(WAIT_S)
        await _until(lambda: rig.cache.revisions == [first, second], "second commit served after trigger")

    asyncio.run(_running(rig.reconciler, body))
