"""The snapshot cache alone (no gRPC): readiness, connected-only resolution, interning, wake-ups, unknown proxies."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from ads_harness import mesh
from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from compiler.model import ProxyKind
from meshxds.snapshot import Snapshot
from reconciler.xds.cache import PublishResult, SnapshotCache
from reconciler.xds.xds_node import NodeInfo, parse_istio_node_id


def published(cache: SnapshotCache, revision: str, resolve: Callable[[NodeInfo], Snapshot]) -> PublishResult:
    """Publish with no event loop running: done before `publish` returns."""
    result = cache.publish(revision, resolve).result
    assert result is not None
    return result


WAIT_S = 10.0
A = NodeInfo("sidecar~10.0.0.1~a.ns~ns.svc.cluster.local")
B = NodeInfo("sidecar~10.0.0.2~b.ns~ns.svc.cluster.local")


class Wakes(Counter[str]):
    def callback(self, name: str):  # type: ignore[no-untyped-def]
        return lambda: self.update([name])


def test_not_ready_until_first_publish_and_watches_start_empty() -> None:
    cache = SnapshotCache()
    watch = cache.watch(A, lambda: None)
    assert not cache.ready and watch.snapshot is None
    cache.publish("r1", lambda node: mesh("a"))
    assert cache.ready and cache.revision == "r1" and watch.snapshot is not None


def test_resolves_connected_nodes_only_once_each() -> None:
    calls: Counter[str] = Counter()

    def resolve(node: NodeInfo) -> Snapshot:
        calls[node.id] += 1
        return mesh("a")

    cache = SnapshotCache()
    cache.watch(A, lambda: None)
    cache.watch(A, lambda: None)  # the same proxy on two streams
    result = published(cache, "r1", resolve)
    assert calls == {A.id: 1} and result.resolved == 1
    cache.watch(B, lambda: None)  # connects later: resolved on connect with the last resolve
    assert calls == {A.id: 1, B.id: 1}


def test_identical_snapshots_are_shared_and_unchanged_ones_do_not_wake() -> None:
    wakes = Wakes()
    cache = SnapshotCache()
    wa, wb = cache.watch(A, wakes.callback("a")), cache.watch(B, wakes.callback("b"))
    result = published(cache, "r1", lambda node: mesh("a"))  # a fresh but equal Snapshot per call
    assert wa.snapshot is wb.snapshot and result.distinct_snapshots == 1 and result.woken == 2
    first = wa.snapshot
    cache.publish("r2", lambda node: mesh("a"))
    assert wakes == {"a": 1, "b": 1} and wa.snapshot is first
    result = published(cache, "r3", lambda node: mesh("b") if node == B else mesh("a"))
    assert wakes == {"a": 1, "b": 2} and result.woken == 1 and result.distinct_snapshots == 2


def test_unknown_proxy_keeps_its_snapshot_and_is_resolved_again() -> None:
    cache = SnapshotCache()
    wa = cache.watch(A, lambda: None)
    cache.publish("r1", lambda node: mesh("a"))
    kept = wa.snapshot

    def nobody(node: NodeInfo) -> Snapshot:
        raise LookupError(node.id)

    result = published(cache, "r2", nobody)
    assert result.unknown == (A.id,) and wa.unknown and wa.snapshot is kept
    assert cache.unknown_nodes() == {A.id}
    fresh = cache.watch(B, lambda: None)
    assert fresh.snapshot is None and fresh.unknown
    cache.publish("r3", lambda node: mesh("c"))
    assert cache.unknown_nodes() == frozenset() and not wa.unknown and fresh.snapshot is not None


def test_a_failing_resolver_keeps_previous_snapshots() -> None:
    cache = SnapshotCache()
    wa = cache.watch(A, lambda: None)
    cache.publish("r1", lambda node: mesh("a"))
    kept = wa.snapshot

    def broken(node: NodeInfo) -> Snapshot:
        raise RuntimeError("emitter bug")

    result = published(cache, "r2", broken)
    assert result.failed == (A.id,) and wa.snapshot is kept and not wa.unknown


def test_closed_watches_are_forgotten() -> None:
    cache = SnapshotCache()
    watch = cache.watch(A, lambda: None)
    cache.publish("r1", lambda node: (_ for _ in ()).throw(LookupError("x")))
    assert cache.unknown_nodes() == {A.id}
    watch.close()
    assert cache.connected() == 0 and cache.unknown_nodes() == frozenset()
    assert published(cache, "r2", lambda node: mesh("a")).resolved == 0


def test_node_info_from_proto_has_plain_metadata() -> None:
    metadata = struct_pb2.Struct()
    metadata.update({"LABELS": {"app": "reviews"}, "ISTIO_VERSION": "1.22"})
    info = NodeInfo.from_proto(base_pb2.Node(id=A.id, cluster="a.ns", metadata=metadata))
    assert info == NodeInfo(A.id, "a.ns", {"LABELS": {"app": "reviews"}, "ISTIO_VERSION": "1.22"})
    assert hash(info) == hash(NodeInfo(A.id, "a.ns"))


@pytest.mark.parametrize(("node_id", "expected"), [
    ("sidecar~10.0.0.1~reviews-v1.shop~shop.svc.cluster.local", (ProxyKind.SIDECAR, "10.0.0.1", "reviews-v1", "shop")),
    ("router~10.0.0.9~gw.v2.istio-system~x", (ProxyKind.ROUTER, "10.0.0.9", "gw.v2", "istio-system")),
    # no `.NAMESPACE` in the name: Pilot takes the namespace from the domain's first label
    ("sidecar~10.0.0.1~reviews~shop.svc", (ProxyKind.SIDECAR, "10.0.0.1", "reviews", "shop")),
    ("waypoint~10.0.0.1~a.b~c", None),
    ("a~b~c", None),
])
def test_parse_istio_node_id(node_id: str, expected: tuple[ProxyKind, str, str, str] | None) -> None:
    parsed = parse_istio_node_id(node_id)
    assert (parsed and (parsed.kind, parsed.ip, parsed.name, parsed.namespace)) == expected


def held(cache: SnapshotCache, node: NodeInfo) -> Snapshot | None:
    return asyncio.run(asyncio.wait_for(cache.held(node), WAIT_S))


def test_held_is_the_connected_snapshot_else_what_a_publish_would_give() -> None:
    cache = SnapshotCache()
    assert held(cache, A) is None
    watch = cache.watch(A, lambda: None)
    cache.publish("r1", lambda node: mesh(node.id[-30:]))
    assert held(cache, A) is watch.snapshot
    assert held(cache, B) is not None and held(cache, B) != watch.snapshot  # not connected: resolved on demand

    def unknown(node: NodeInfo) -> Snapshot:
        raise LookupError(node.id)

    cache.publish("r2", unknown)
    assert held(cache, A) is watch.snapshot  # a connected proxy keeps its config on a lookup miss
    with pytest.raises(LookupError):
        held(cache, B)


class SlowResolve:
    """A resolve that blocks on an event until the test releases it (bounded, so a broken cache fails, not hangs)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, node: NodeInfo) -> Snapshot:
        self.entered.set()
        if not self.release.wait(WAIT_S):
            raise TimeoutError("never released")
        if node.id == B.id:
            raise LookupError(node.id)
        return mesh("a")


async def _loop_runs_while(slow: SlowResolve) -> None:
    """The resolve has started and is blocked; another coroutine still gets the loop (many times over)."""
    assert await asyncio.wait_for(asyncio.to_thread(slow.entered.wait, WAIT_S), WAIT_S)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(20):
            await asyncio.sleep(0.001)
            ticks += 1

    await asyncio.wait_for(ticker(), WAIT_S)
    assert ticks == 20


def test_a_connecting_proxy_is_resolved_off_the_event_loop() -> None:
    """A snapshot compiles on connect: on a worker thread, so ACKs, health checks and other streams carry on, and
    the stream is woken (with nothing to send before) once its snapshot is there; an unknown proxy is still
    reported as such."""
    async def scenario() -> None:
        cache, slow, wakes = SnapshotCache(), SlowResolve(), Wakes()
        cache.publish("r1", slow)  # nobody connected: nothing resolved yet
        known, unknown = cache.watch(A, wakes.callback("a")), cache.watch(B, wakes.callback("b"))
        await _loop_runs_while(slow)
        assert known.snapshot is None and unknown.snapshot is None and not wakes
        slow.release.set()
        for _ in range(int(WAIT_S / 0.01)):
            if known.snapshot is not None and unknown.unknown:
                break
            await asyncio.sleep(0.01)
        assert known.snapshot is not None and wakes == {"a": 1}
        assert unknown.unknown and unknown.snapshot is None and cache.unknown_nodes() == {B.id}

    asyncio.run(scenario())


def test_held_resolves_off_the_event_loop() -> None:
    async def scenario() -> None:
        cache, slow = SnapshotCache(), SlowResolve()
        cache.publish("r1", slow)
        config = asyncio.ensure_future(cache.held(A))
        await _loop_runs_while(slow)
        assert not config.done()
        slow.release.set()
        assert await asyncio.wait_for(config, WAIT_S) is not None

    asyncio.run(scenario())
