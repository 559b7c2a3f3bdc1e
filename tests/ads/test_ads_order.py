"""Make-before-break push order and endpoint re-sends after cluster changes, in both protocol variants."""

from __future__ import annotations

from typing import Any

from ads_harness import Client, cluster, endpoints, listener, mesh, names_of, route, run, serving, static

from meshxds import type_urls as T
from meshxds.snapshot import Snapshot
from reconciler.xds.cache import SnapshotCache


async def _subscribe_all(client: Client) -> None:
    """Subscribe like Envoy: CDS and LDS wildcard, EDS and RDS by name; ACK until quiet."""
    await client.send(T.CLUSTER)
    await client.send(T.ENDPOINT, ["a"])
    await client.send(T.LISTENER)
    await client.send(T.ROUTE, ["r"])
    await _ack_until_quiet(client, {T.ENDPOINT: ["a", "b"], T.ROUTE: ["r"]})


async def _ack_until_quiet(client: Client, names: dict[str, list[str]]) -> list[Any]:
    seen: list[Any] = []
    while True:
        try:
            response = await client.recv(timeout=0.5)
        except TimeoutError:
            return seen
        seen.append(response)
        await client.ack(response, names.get(response.type_url, []))


def test_sotw_make_before_break_order() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (_, address), Client(address) as client:
            await _subscribe_all(client)
            # Move the route from cluster a to a new cluster b and drop a; change the listener too.
            cache.publish("rev2", static(mesh("b", listener_port=15002)))
            seen = await _ack_until_quiet(client, {T.ENDPOINT: ["a", "b"], T.ROUTE: ["r"]})
            order = [r.type_url for r in seen]
            assert order == [T.CLUSTER, T.ENDPOINT, T.LISTENER, T.ROUTE, T.CLUSTER], order
            assert names_of(seen[0]) == ["a", "b"] and names_of(seen[-1]) == ["b"]
    run(body)


def test_delta_make_before_break_order() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (_, address), Client(address, delta=True) as client:
            await _subscribe_all(client)
            await client.send(T.ENDPOINT, ["b"])
            await _ack_until_quiet(client, {})
            cache.publish("rev2", static(mesh("b", listener_port=15002)))
            seen = await _ack_until_quiet(client, {})
            order = [(r.type_url, names_of(r), list(r.removed_resources)) for r in seen]
            assert order == [(T.CLUSTER, ["b"], []), (T.ENDPOINT, ["b"], ["a"]), (T.LISTENER, ["in"], []),
                             (T.ROUTE, ["r"], []), (T.CLUSTER, [], ["a"])], order
    run(body)


def _changed_cluster() -> Snapshot:
    return Snapshot.of([cluster("a", timeout_ms=250), endpoints("a", 9), listener("in", 15001, "r"), route("r", "a")])


def test_sotw_changed_cluster_resends_unchanged_endpoints() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (_, address), Client(address) as client:
            await _subscribe_all(client)
            eds_before = [r for r in client.responses if r.type_url == T.ENDPOINT][-1]
            cache.publish("rev2", static(_changed_cluster()))
            seen = await _ack_until_quiet(client, {T.ENDPOINT: ["a", "b"], T.ROUTE: ["r"]})
            assert [r.type_url for r in seen] == [T.CLUSTER, T.ENDPOINT]
            assert seen[1].version_info == eds_before.version_info  # same endpoints, sent again for warming
    run(body)


def test_delta_changed_cluster_resends_unchanged_endpoints() -> None:
    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(mesh("a")))
        async with serving(cache) as (_, address), Client(address, delta=True) as client:
            await _subscribe_all(client)
            cache.publish("rev2", static(_changed_cluster()))
            seen = await _ack_until_quiet(client, {})
            assert [(r.type_url, names_of(r)) for r in seen] == [(T.CLUSTER, ["a"]), (T.ENDPOINT, ["a"])]
    run(body)
