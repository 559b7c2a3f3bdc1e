"""The loop with a cluster: a cluster change recompiles the same commit without a fetch, a refused head is retried
with the new cluster state, a cluster state that breaks the serving commit is refused and reported, nothing is
compiled before the registry's first complete listing, and per-proxy resolve failures reach /status."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from gitops_fakes import FakeBuild, FakeCache
from gitops_repos import Remote

from compiler import diagnostics
from reconciler.git.source import GitSource, SourceConfig
from reconciler.loop import LoopConfig, Reconciler
from reconciler.ops.status import SyncResult, Trigger

WAIT_S = 10.0


@dataclasses.dataclass(frozen=True)
class State:
    generation: int
    documents: tuple[str, ...] = ()
    synced: bool = True
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"generation": self.generation, "synced": self.synced, "problems": list(self.problems)}


class FakeCluster:
    def __init__(self, state: State) -> None:
        self.current = state

    def state(self) -> State:
        return self.current


class ClusterCompiler:
    """Invalid when the tree holds `NEEDS` and the cluster lacks "svc", or when the cluster holds "bad"."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, int]] = []

    def build(self, root: Path, state: State) -> FakeBuild:
        self.calls.append((root, state.generation))
        missing = (root / "NEEDS").exists() and "svc" not in state.documents
        if missing or "bad" in state.documents:
            pos = diagnostics.Position(str(root / "mesh.yaml"), 1, 1)
            return FakeBuild(False, [diagnostics.make("MW0001", f"cluster generation {state.generation}", pos)],
                             None)
        return FakeBuild(True, [], ((root / "mesh.yaml").read_text(), state.generation))


def snapshot_for(build: FakeBuild, node: str) -> Any:
    if node == "broken-proxy":
        raise RuntimeError("referenced secret shop-cert is missing")
    return build.model


@dataclasses.dataclass
class Rig:
    remote: Remote
    cluster: FakeCluster
    compiler: ClusterCompiler
    cache: FakeCache
    rec: Reconciler
    polls: list[int]


@pytest.fixture
def rig(remote: Remote, tmp_path: Path) -> Rig:
    source = GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work"))
    polls: list[int] = []

    class Counting:
        def poll(self) -> Any:
            polls.append(1)
            return source.poll()

    cluster, compiler, cache = FakeCluster(State(1, ("svc",))), ClusterCompiler(), FakeCache()
    rec = Reconciler(Counting(), build=compiler.build, snapshot_for=snapshot_for, publisher=cache, cluster=cluster,
                     config=LoopConfig(poll_interval=3600, debounce=0.01))
    return Rig(remote, cluster, compiler, cache, rec, polls)


async def until(predicate: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {WAIT_S}s") from None


def running(rig: Rig, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        task = asyncio.create_task(rig.rec.run())
        try:
            await body()
        finally:
            rig.rec.stop()
            await asyncio.wait_for(task, WAIT_S)

    asyncio.run(main())


def change(rig: Rig, **fields: Any) -> None:
    rig.cluster.current = dataclasses.replace(rig.cluster.current, generation=rig.cluster.current.generation + 1,
                                              **fields)
    rig.rec.cluster_changed()


def test_cluster_change_recompiles_the_same_commit_without_fetching(rig: Rig) -> None:
    sha = rig.remote.commit({"mesh.yaml": "good\n"})

    async def body() -> None:
        await until(lambda: rig.cache.revisions == [sha], "first publish")
        polls = len(rig.polls)
        change(rig, documents=("svc", "more"))
        await until(lambda: len(rig.cache.revisions) == 2, "republished")
        assert rig.cache.revisions == [sha, sha] and len(rig.polls) == polls
        assert rig.cache.published[-1][1]("n") == ("good\n", 2)
        status = rig.rec.status
        assert status.serving is not None and status.serving.sha == sha and status.serving_generation == 2
        assert status.to_json()["servingClusterGeneration"] == 2 and status.to_json()["cluster"]["generation"] == 2

    running(rig, body)
    assert [gen for _, gen in rig.compiler.calls] == [1, 2]


def test_cluster_state_that_breaks_the_serving_commit_is_refused_and_reported(rig: Rig) -> None:
    sha = rig.remote.commit({"mesh.yaml": "good\n"})

    async def body() -> None:
        await until(lambda: rig.rec.status.ready, "first publish")
        change(rig, documents=("svc", "bad"))
        await until(lambda: rig.rec.status.cluster_rejection is not None, "refused")
        status = rig.rec.status
        assert rig.cache.revisions == [sha]  # nothing published: proxies keep generation 1
        assert status.serving_generation == 1 and status.last_result is SyncResult.VALIDATION_FAILED
        assert status.commit_result is SyncResult.SYNCED and status.cluster_result is SyncResult.VALIDATION_FAILED
        rejection = status.cluster_rejection
        assert rejection is not None and rejection.trigger is Trigger.CLUSTER and rejection.cluster_generation == 2
        assert len(status.errors) == 1 and status.errors[0].startswith("mesh.yaml:1:1: error MW0001: cluster generation 2")
        assert status.to_json()["clusterRejected"]["clusterGeneration"] == 2
        change(rig, documents=("svc",))
        await until(lambda: rig.rec.status.cluster_result is SyncResult.SYNCED, "recovered")
        assert rig.rec.status.serving_generation == 3 and rig.rec.status.last_result is SyncResult.SYNCED
        assert rig.rec.status.cluster_rejection is None

    running(rig, body)


def test_refused_head_is_retried_when_the_cluster_has_what_it_missed(rig: Rig) -> None:
    rig.cluster.current = State(1, ())
    good = rig.remote.commit({"mesh.yaml": "good\n"})

    async def body() -> None:
        await until(lambda: rig.cache.revisions == [good], "first publish")
        head = rig.remote.commit({"mesh.yaml": "new\n", "NEEDS": ""})
        rig.rec.trigger()
        await until(lambda: rig.rec.status.commit_result is SyncResult.VALIDATION_FAILED, "head refused")
        change(rig, documents=("svc",))  # the Service the new routes name is deployed
        await until(lambda: rig.cache.revisions == [good, head], "head served")
        status = rig.rec.status
        assert status.serving is not None and status.serving.sha == head and status.serving_generation == 2
        assert status.last_result is SyncResult.SYNCED

    running(rig, body)


def test_nothing_is_compiled_before_the_cluster_is_synced(rig: Rig) -> None:
    rig.cluster.current = State(0, (), synced=False)
    sha = rig.remote.commit({"mesh.yaml": "good\n"})

    async def body() -> None:
        await asyncio.sleep(0.3)
        assert rig.compiler.calls == [] and rig.polls == [] and not rig.rec.status.ready
        assert rig.rec.status.to_json()["cluster"] == {"generation": 0, "synced": False, "problems": []}
        change(rig, documents=("svc",), synced=True)
        await until(lambda: rig.cache.revisions == [sha], "published once synced")

    running(rig, body)
    assert rig.compiler.calls[0][1] == 1


def test_proxy_resolve_failures_reach_the_status(rig: Rig) -> None:
    rig.remote.commit({"mesh.yaml": "good\n"})

    async def body() -> None:
        await until(lambda: rig.rec.status.ready, "first publish")
        resolve = rig.cache.published[-1][1]
        with pytest.raises(RuntimeError):
            resolve("broken-proxy")
        assert resolve("fine") == ("good\n", 1)
        assert rig.rec.status.proxy_errors == (("broken-proxy", "RuntimeError: referenced secret shop-cert is missing"),)
        assert rig.rec.status.to_json()["proxyErrors"] == [
            {"node": "broken-proxy", "error": "RuntimeError: referenced secret shop-cert is missing"}]

    running(rig, body)
