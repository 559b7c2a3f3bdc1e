"""Incremental (delta) ADS against a scripted client on 127.0.0.1."""

from __future__ import annotations

from ads_harness import Client, mesh, names_of, run, serving, static, until

from meshxds import type_urls as T
from reconciler.xds.ads_status import SyncState
from reconciler.xds.cache import SnapshotCache


def test_wildcard_cds_sends_all_then_only_changes() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a", "b")))
        async with serving(cache) as (server, address), Client(address, delta=True) as client:
            await client.send(T.CLUSTER)
            first = await client.recv()
            assert names_of(first) == ["a", "b"] and list(first.removed_resources) == []
            await client.ack(first)
            cache.publish("rev2", static(mesh("a", "b", "c")))
            second = await client.recv()
            assert names_of(second) == ["c"]
            await client.ack(second)
            await client.silent()
            await until(lambda: server.status()[0].state is SyncState.SYNCED, "the ACK is seen")
    run(body)


def test_subscribe_unsubscribe_and_phantom_unsubscribe() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a", "b")))
        async with serving(cache) as (_, address), Client(address, delta=True) as client:
            await client.send(T.ENDPOINT, ["a"])
            assert names_of(await client.recv()) == ["a"]
            await client.send(T.ENDPOINT, ["b"], unsubscribe=["a", "never-subscribed"])
            assert names_of(await client.recv()) == ["b"]
            # a is no longer subscribed: its change is not sent; b's change is.
            cache.publish("rev2", static(mesh("a", "b", backend_port=11)))
            changed = await client.recv()
            assert names_of(changed) == ["b"] and list(changed.removed_resources) == []
            await client.send(T.ENDPOINT, ["b"])  # already has it: "Subscribing to Resources" says send anyway
            assert names_of(await client.recv()) == ["b"]
    run(body)


def test_initial_resource_versions_on_reconnect() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        snap = mesh("a", "b", "c")
        cache.publish("rev1", static(snap))
        clusters = snap.get(T.CLUSTER)
        has = {"a": clusters["a"].version, "b": "old", "gone": "x"}
        async with serving(cache) as (_, address), Client(address, delta=True) as client:
            await client.send(T.CLUSTER, initial=has)
            response = await client.recv()
            assert names_of(response) == ["b", "c"]  # a is current: not resent
            await client.ack(response)
            removal = await client.recv()  # removed clusters come last, after the ACK
            assert names_of(removal) == [] and list(removal.removed_resources) == ["gone"]
            await client.ack(removal)
            await client.silent()
    run(body)


def test_reconnect_with_everything_current_gets_one_empty_answer() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        snap = mesh("a")
        cache.publish("rev1", static(snap))
        has = {name: res.version for name, res in snap.get(T.ENDPOINT).items()}
        async with serving(cache) as (_, address), Client(address, delta=True) as client:
            await client.send(T.ENDPOINT, ["a"], initial=has)
            response = await client.recv()
            assert names_of(response) == [] and list(response.removed_resources) == []
            await client.ack(response)
            await client.silent()
    run(body)


def test_removed_resources_for_deleted_names() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a", "b")))
        async with serving(cache) as (_, address), Client(address, delta=True) as client:
            await client.send(T.ENDPOINT, ["a", "b"])
            await client.ack(await client.recv())
            cache.publish("rev2", static(mesh("a")))
            gone = await client.recv()
            assert names_of(gone) == [] and list(gone.removed_resources) == ["b"]
    run(body)


def test_delta_nack_parks_resources() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (server, address), Client(address, delta=True) as client:
            await client.send(T.CLUSTER)
            await client.ack(await client.recv())
            cache.publish("rev2", static(mesh("a", "bad")))
            bad = await client.recv()
            await client.send(T.CLUSTER, nonce=bad.nonce, error="bad cluster")
            await client.silent(0.4)
            await until(lambda: server.status()[0].state is SyncState.NACKED, "the NACK is seen")
            cache.publish("rev3", static(mesh("a", "bad", "c")))
            assert names_of(await client.recv()) == ["c"]
    run(body)


def test_delta_unknown_type_is_ignored() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (_, address), Client(address, delta=True) as client:
            await client.send("type.googleapis.com/nope.Nope", ["x"])
            await client.silent(0.3)
            await client.send(T.LISTENER)
            assert names_of(await client.recv()) == ["in"]
    run(body)
