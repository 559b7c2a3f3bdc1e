"""Pushing at scale: shared bytes across proxies, the wire encoder, publishing without blocking the event loop,
superseded publishes, debounce across streams, bounded push concurrency, publish->ACK timings."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

import pytest
from ads_harness import TEST_OPTIONS, Client, cluster, mesh, run, serving, static
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2

from meshxds import refs
from meshxds import type_urls as T
from meshxds.snapshot import Snapshot, XdsResource
from reconciler.ops import metrics
from reconciler.xds import ads_common
from reconciler.xds.ads_status import Timing
from reconciler.xds.cache import SnapshotCache
from reconciler.xds.xds_node import NodeInfo


def node(i: int) -> str:
    return f"sidecar~10.0.0.{i}~w{i}.ns~ns.svc.cluster.local"


@dataclasses.dataclass
class Timings:
    seen: list[tuple[Timing, str, float]] = dataclasses.field(default_factory=list)
    pushes: int = 0

    def on_connect(self, node_id: str, mode: str) -> None:
        pass

    def on_disconnect(self, node_id: str, mode: str) -> None:
        pass

    def on_push(self, type_url: str, nbytes: int) -> None:
        self.pushes += 1

    def on_ack(self, type_url: str) -> None:
        pass

    def on_nack(self, type_url: str) -> None:
        pass

    def on_timing(self, kind: Timing, type_url: str, seconds: float) -> None:
        self.seen.append((kind, type_url, seconds))


# ---- the wire encoder ---------------------------------------------------------------------------------------------

def test_sotw_encoding_is_protobufs_deterministic_serialization() -> None:
    snap = mesh("a", "b")
    resources = list(snap.get(T.CLUSTER).values())
    encoded = ads_common.Encoder().sotw_response("v1", T.CLUSTER, "7", resources)
    expected = discovery_pb2.DiscoveryResponse(version_info="v1", type_url=T.CLUSTER, nonce="7",
                                               resources=[r.to_any() for r in resources])
    assert encoded.data == expected.SerializeToString(deterministic=True)
    assert encoded.resources == 2 and encoded.ByteSize() == expected.ByteSize()


def test_delta_encoding_is_protobufs_deterministic_serialization() -> None:
    empty = XdsResource("e", T.CLUSTER, discovery_pb2.Resource, b"", "0", refs.NONE)  # an all-default message
    resources = [cluster("a"), empty]
    encoded = ads_common.Encoder().delta_response("v2", T.CLUSTER, "8", resources, ["gone", ""])
    expected = discovery_pb2.DeltaDiscoveryResponse(
        system_version_info="v2", type_url=T.CLUSTER, nonce="8", removed_resources=["gone", ""],
        resources=[discovery_pb2.Resource(name=r.name, version=r.version, resource=r.to_any()) for r in resources])
    assert encoded.data == expected.SerializeToString(deterministic=True)


# ---- sharing --------------------------------------------------------------------------------------------------------

def test_proxies_with_equal_snapshots_get_the_same_bytes_from_one_copy() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        await cache.publish("rev1", lambda node: mesh("a", "b"))  # a fresh, equal Snapshot per call
        async with serving(cache) as (_, address), \
                Client(address, node_id=node(1)) as one, Client(address, node_id=node(2)) as two:
            await one.send(T.CLUSTER)
            await two.send(T.CLUSTER)
            first, second = await one.recv(), await two.recv()
            assert [r.value for r in first.resources] == [r.value for r in second.resources]
            assert first.version_info == second.version_info
            assert cache.stats()[:2] == (1, 6)  # one snapshot; 2 clusters, 2 endpoints, a listener, a route: once
    run(body)


def test_proxies_with_different_snapshots_share_their_common_resources() -> None:
    cache = SnapshotCache()
    wa = cache.watch(NodeInfo(node(1)), lambda: None)
    wb = cache.watch(NodeInfo(node(2)), lambda: None)
    cache.publish("r1", lambda n: mesh("common", "own1" if n.id == node(1) else "own2"))
    assert wa.snapshot is not None and wb.snapshot is not None and wa.snapshot is not wb.snapshot
    assert wa.snapshot.get(T.CLUSTER)["common"] is wb.snapshot.get(T.CLUSTER)["common"]
    assert wa.snapshot.get(T.ROUTE) is wb.snapshot.get(T.ROUTE)  # equal type tables are shared whole
    snapshots, resources, _ = cache.stats()
    assert (snapshots, resources) == (2, 2 + 4 + 2)  # common cluster+endpoints once; listener, route shared too
    wa.close()
    assert cache.stats()[:2] == (1, 6)  # what only proxy 1 held is released
    wb.close()
    assert cache.stats() == (0, 0, 0)


# ---- publishing without blocking the loop ---------------------------------------------------------------------------

def test_publish_to_many_proxies_keeps_the_event_loop_responsive() -> None:
    """Per-proxy compiles run off the event loop's thread while the loop goes on (checked by where they run and
    by the loop ticking between them, not by timing gaps: a loaded machine stretches any gap)."""
    async def body() -> None:
        cache = SnapshotCache(slice_seconds=0.01)
        watches = [cache.watch(NodeInfo(node(i)), lambda: None) for i in range(150)]
        snap = mesh("a")
        loop_thread = threading.get_ident()
        ticks = 0
        seen: list[tuple[int, int]] = []  # (thread, loop ticks so far) at each compile

        def slow(_: NodeInfo) -> Snapshot:
            seen.append((threading.get_ident(), ticks))
            time.sleep(0.002)  # a per-proxy compile
            return snap

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        ticker = asyncio.create_task(tick())
        publication = cache.publish("r1", slow)
        assert publication.result is None  # not done yet: the work runs in slices
        result = await publication
        ticker.cancel()
        assert result.resolved == 150 and not result.superseded
        assert all(w.snapshot is watches[0].snapshot for w in watches)
        assert watches[0].snapshot is not None and watches[0].snapshot.version == snap.version
        assert len(seen) == 150 and all(thread != loop_thread for thread, _ in seen)
        # the loop ran while the compiles went on: it ticked between the first compile and the last
        assert seen[-1][1] > seen[0][1]
    run(body)


def test_a_newer_publish_supersedes_one_still_resolving() -> None:
    async def body() -> None:
        cache = SnapshotCache(slice_seconds=0.001)
        watches = [cache.watch(NodeInfo(node(i)), lambda: None) for i in range(50)]
        old, new = mesh("old"), mesh("new")

        def slow_old(_: NodeInfo) -> Snapshot:
            time.sleep(0.002)
            return old

        first = cache.publish("r1", slow_old)
        await asyncio.sleep(0.01)
        second = cache.publish("r2", static(new))
        assert (await first).superseded
        assert (await second).resolved == 50 and cache.revision == "r2"
        assert all(w.snapshot is not None and w.snapshot.version == new.version for w in watches)
        assert cache.stats()[0] == 1  # the old snapshot is released once nobody holds it
    run(body)


def test_resolve_is_never_called_concurrently_even_when_proxies_connect_during_a_publish() -> None:
    async def body() -> None:
        cache = SnapshotCache(slice_seconds=0.005)
        for i in range(40):
            cache.watch(NodeInfo(node(i)), lambda: None)
        snap = mesh("a")
        active, overlaps, calls = [0], [0], [0]

        def resolver(_: NodeInfo) -> Snapshot:
            active[0] += 1
            calls[0] += 1
            overlaps[0] += active[0] > 1
            time.sleep(0.002)  # releases the GIL: a concurrent call would overlap here
            active[0] -= 1
            return snap

        publication = cache.publish("r1", resolver)
        for i in range(40, 60):  # connecting while the worker thread resolves the others
            cache.watch(NodeInfo(node(i)), lambda: None)
            await asyncio.sleep(0.003)
        result = await publication
        assert overlaps[0] == 0 and calls[0] == 60 and result.resolved == 40
    run(body)


# ---- debounce and bounded concurrency over gRPC --------------------------------------------------------------------

def test_a_burst_of_publishes_is_one_push_per_stream() -> None:
    async def body() -> None:
        timings = Timings()
        cache = SnapshotCache()
        await cache.publish("rev0", static(mesh("a", backend_port=1)))
        # The burst takes about 0.1 s idle; a window ten times as long still holds it on a loaded machine, where a
        # 0.3 s window can close mid-burst (each stream then pushes an intermediate version first).
        options = dataclasses.replace(TEST_OPTIONS, debounce=1.0)
        async with serving(cache, options, observer=timings) as (_, address):
            clients = [Client(address, node_id=node(i)) for i in range(5)]
            for client in clients:
                await client.send(T.ENDPOINT, ["a"])
                await client.ack(await client.recv(), ["a"])
            pushed = timings.pushes
            for port in range(2, 12):
                cache.publish(f"rev{port}", static(mesh("a", backend_port=port)))
                await asyncio.sleep(0.01)
            latest = mesh("a", backend_port=11).versions[T.ENDPOINT]
            for client in clients:
                assert (await client.recv()).version_info == latest
                await client.silent(0.1)
                await client.close()
            assert timings.pushes - pushed == 5
    run(body)


def huge(generation: int) -> Snapshot:
    """Just under the client's 4 MB message limit; a few of these fill what the transports buffer."""
    msg = cluster_pb2.Cluster(name="huge", alt_stat_name=f"{generation}-" + "x" * 4_000_000)
    return Snapshot.of([XdsResource.of("huge", T.CLUSTER, msg)])


@pytest.mark.slow
def test_pushes_are_bounded_in_concurrency_with_clients_that_do_not_read() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        await cache.publish("rev0", static(huge(0)))
        options = dataclasses.replace(TEST_OPTIONS, max_concurrent_pushes=3, push_slot_hold=1.5)
        async with serving(cache, options) as (server, address):
            slots = server.push_slots
            assert slots is not None
            clients = [Client(address, node_id=node(i), reading=False) for i in range(6)]
            await asyncio.gather(*(c.send(T.CLUSTER) for c in clients))
            generation = 0
            while slots.peak < 3 and generation < 10:  # until writes pile up on clients that do not read
                generation += 1
                await cache.publish(f"rev{generation}", static(huge(generation)))
                await asyncio.sleep(0.1)
            assert slots.peak == 3
            # Past the hold, stuck writes finish outside their slots: the slots come free although nobody reads.
            for _ in range(100):
                if slots.in_use == 0:
                    break
                await asyncio.sleep(0.05)
            assert slots.in_use == 0 and slots.peak == 3
            for client in clients:
                client.start_reading()
            latest = huge(generation).versions[T.CLUSTER]
            for client in clients:
                while (await client.recv(timeout=20)).version_info != latest:
                    pass
            await asyncio.sleep(0.1)
            assert slots.in_use == 0 and slots.peak == 3
            for client in clients:
                await client.close()
    run(body, timeout=60)


def test_ack_latency_is_timed_from_the_publish_per_type() -> None:
    async def body() -> None:
        timings = Timings()
        cache = SnapshotCache()
        await cache.publish("rev1", static(mesh("a")))
        async with serving(cache, observer=timings) as (_, address), Client(address) as client:
            await client.send(T.CLUSTER)
            await client.ack(await client.recv())
            await client.silent(0.1)
            assert not [t for t in timings.seen if t[0] is Timing.ACK]  # a connect is not a publish
            published = time.monotonic()
            cache.publish("rev2", static(mesh("a", "b")))
            update = await client.recv()
            await asyncio.sleep(0.05)
            await client.ack(update)
            await client.silent(0.1)
            elapsed = time.monotonic() - published
            acks = [t for t in timings.seen if t[0] is Timing.ACK]
            assert [(kind, url) for kind, url, _ in acks] == [(Timing.ACK, T.CLUSTER)]
            assert 0.05 <= acks[0][2] <= elapsed
            assert any(kind is Timing.PUSH for kind, _, _ in timings.seen)
            assert any(kind is Timing.ENCODE for kind, _, _ in timings.seen)
    run(body)


def test_prometheus_has_ack_latency_per_type_and_the_cache_sharing_figures() -> None:
    async def body() -> None:
        m = metrics.Metrics()
        cache = SnapshotCache()
        await cache.publish("rev1", static(mesh("a")))
        async with serving(cache, observer=metrics.XdsObserver(m)) as (_, address), Client(address) as client:
            await client.send(T.CLUSTER)
            await client.ack(await client.recv())
            cache.publish("rev2", static(mesh("a", "b")))
            await client.ack(await client.recv())
            await client.silent(0.2)
            lines = m.render().decode().splitlines()
        assert f'meshward_xds_ack_latency_seconds_count{{type_url="{T.CLUSTER}"}} 1.0' in lines
        assert "meshward_snapshots 1.0" in lines  # the one connected proxy holds one snapshot
        assert any(line.startswith("meshward_last_publish_finished_timestamp_seconds ") for line in lines)
        assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
    run(body)
