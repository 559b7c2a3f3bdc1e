"""State-of-the-world ADS against a scripted client on 127.0.0.1 (protocol invariants checked on every response)."""

from __future__ import annotations

from ads_harness import Client, mesh, names_of, run, serving, static, until, until_acked

from meshxds import type_urls as T
from reconciler.xds.ads_status import SyncState
from reconciler.xds.cache import SnapshotCache


def test_nothing_is_served_before_the_first_publish() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        async with serving(cache) as (_, address), Client(address) as client:
            await client.send(T.CLUSTER)
            await client.silent(0.3)
            cache.publish("rev1", static(mesh("a")))
            response = await client.recv()
            assert response.type_url == T.CLUSTER and names_of(response) == ["a"]
    run(body)


def test_wildcard_cds_then_named_eds_ack_is_synced() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        snap = mesh("a", "b")
        cache.publish("rev1", static(snap))
        async with serving(cache) as (server, address), Client(address) as client:
            await client.send(T.CLUSTER)
            cds = await client.recv()
            assert names_of(cds) == ["a", "b"] and cds.version_info == snap.versions[T.CLUSTER]
            await client.ack(cds)
            await client.send(T.ENDPOINT, ["b"])
            eds = await client.recv()
            assert names_of(eds) == ["b"]
            await client.ack(eds, ["b"])
            await client.silent()
            await until_acked(server, T.ENDPOINT, eds.version_info)
            (status,) = server.status()
            assert status.state is SyncState.SYNCED, status
            assert status.types[T.ENDPOINT].acked_version == eds.version_info
    run(body)


def test_named_request_is_answered_with_what_exists_now() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (_, address), Client(address) as client:
            await client.send(T.ENDPOINT, ["a", "missing"])
            eds = await client.recv()
            assert names_of(eds) == ["a"]
            await client.ack(eds, ["a", "missing"])
            await client.silent()
            cache.publish("rev2", static(mesh("a", "missing")))
            later = await client.recv()
            assert names_of(later) == ["a", "missing"]
    run(body)


def test_nack_parks_the_version_until_config_changes() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (server, address), Client(address) as client:
            await client.send(T.CLUSTER)
            good = await client.recv()
            await client.ack(good)
            await until_acked(server, T.CLUSTER, good.version_info)
            cache.publish("rev2", static(mesh("a", "bad")))
            bad = await client.recv()
            await client.send(T.CLUSTER, version=good.version_info, nonce=bad.nonce, error="cluster bad: nope")
            await client.silent(0.5)
            await until(lambda: server.status()[0].state is SyncState.NACKED, "the NACK is seen")
            (status,) = server.status()
            nack = status.types[T.CLUSTER].last_nack
            assert nack is not None and nack.version == bad.version_info and nack.message == "cluster bad: nope"
            assert status.types[T.CLUSTER].acked_version == good.version_info
            cache.publish("rev3", static(mesh("a", "bad")))  # same content: still parked
            await client.silent(0.3)
            cache.publish("rev4", static(mesh("a", "fixed")))
            fixed = await client.recv()
            assert names_of(fixed) == ["a", "bad", "fixed"]  # make before break: "bad" goes last
            await client.ack(fixed)
            final = await client.recv()
            assert names_of(final) == ["a", "fixed"]
            await client.ack(final)
            await client.silent()
            await until(lambda: server.status()[0].state is SyncState.SYNCED, "the ACK is seen")
    run(body)


def test_stale_nonce_is_ignored() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (server, address), Client(address) as client:
            await client.send(T.ENDPOINT, ["a"])
            first = await client.recv()
            cache.publish("rev2", static(mesh("a", backend_port=10)))
            second = await client.recv()
            # A NACK and a names change both answering the older response: neither counts.
            await client.send(T.ENDPOINT, ["a", "b"], nonce=first.nonce, error="late")
            await client.silent(0.3)
            assert server.status()[0].types[T.ENDPOINT].last_nack is None
            await client.ack(second, ["a"])
            await client.silent(0.3)
            await until(lambda: server.status()[0].state is SyncState.SYNCED, "the ACK is seen")
            assert server.status()[0].types[T.ENDPOINT].last_nack is None  # the stale NACK came before, ignored
    run(body)


def test_unsubscribe_and_resubscribe() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a", "b")))
        async with serving(cache) as (_, address), Client(address) as client:
            await client.send(T.ENDPOINT, ["a", "b"])
            both = await client.recv()
            await client.send(T.ENDPOINT, ["a"], version=both.version_info, nonce=both.nonce)
            only_a = await client.recv()
            assert names_of(only_a) == ["a"]
            await client.ack(only_a, ["a"])
            cache.publish("rev2", static(mesh("a", "b", route_cluster="b", backend_port=7)))
            changed = await client.recv()
            assert names_of(changed) == ["a"]  # b is no longer wanted
            await client.ack(changed, ["a"])
            await client.send(T.ENDPOINT, [], version=changed.version_info, nonce=changed.nonce)
            empty = await client.recv()
            assert names_of(empty) == []
    run(body)


def test_unknown_type_url_gets_nothing_but_the_stream_lives() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (_, address), Client(address) as client:
            await client.send("type.googleapis.com/envoy.service.runtime.v3.Runtime", ["rtds"])
            await client.silent(0.3)
            await client.send(T.CLUSTER)
            assert names_of(await client.recv()) == ["a"]
    run(body)


def test_reconnect_gets_everything_once() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (server, address):
            async with Client(address) as first:
                await first.send(T.CLUSTER)
                cds = await first.recv()
                await first.ack(cds)
            async with Client(address) as again:
                await again.send(T.CLUSTER, version=cds.version_info)
                cds2 = await again.recv()
                assert names_of(cds2) == ["a"] and cds2.version_info == cds.version_info
                await again.ack(cds2)
                await again.silent()
                await until(lambda: len(server.status()) == 1, "the closed stream is removed")
    run(body)


def test_unknown_proxy_gets_nothing_until_known() -> None:
    def only_b(node):  # type: ignore[no-untyped-def]
        if node.id.startswith("sidecar~10.0.0.2"):
            return mesh("b")
        raise LookupError(node.id)

    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", only_b)
        async with serving(cache) as (server, address), Client(address) as client:
            await client.send(T.CLUSTER)
            await client.silent(0.3)
            await until(lambda: [s.state for s in server.status()] == [SyncState.UNKNOWN], "the request is seen")
            assert cache.unknown_nodes() == {client.node.id}
            cache.publish("rev2", static(mesh("a")))
            assert names_of(await client.recv()) == ["a"]
            assert cache.unknown_nodes() == frozenset()
    run(body)
