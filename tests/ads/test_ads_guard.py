"""Caps on ADS clients (reconciler/xds/ads_guard.py), with real gRPC clients on 127.0.0.1: streams per address,
node-id length, subscribed names per stream, unknown type URLs and the response rate. Over a hard cap the stream
ends with a status naming the cap; every breach is counted and logged at most once per limit and interval."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging

import grpc
import pytest
from ads_harness import TEST_OPTIONS, Client, ProtocolError, mesh, names_of, run, serving, static, until

from meshward import cli
from meshxds import type_urls as T
from reconciler import serve
from reconciler.xds.ads_guard import ClientCaps, Limit, TokenBucket
from reconciler.xds.cache import SnapshotCache


class Limits:
    """An observer that counts only breaches (the other hooks are optional for the guard, required by the server)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def on_limit(self, limit: str) -> None:
        self.counts[limit] += 1

    def on_connect(self, node_id: str, mode: str) -> None: ...
    def on_disconnect(self, node_id: str, mode: str) -> None: ...
    def on_push(self, type_url: str, nbytes: int) -> None: ...
    def on_ack(self, type_url: str) -> None: ...
    def on_nack(self, type_url: str) -> None: ...


def capped(**caps: object) -> object:
    return dataclasses.replace(TEST_OPTIONS, caps=dataclasses.replace(ClientCaps(), **caps))


def cache() -> SnapshotCache:
    c = SnapshotCache()
    c.publish("rev1", static(mesh("a", "b")))
    return c


async def ended(client: Client) -> tuple[grpc.StatusCode, str]:
    """The status the server ended the stream with."""
    with pytest.raises(ProtocolError):
        while True:
            await client.recv()
    return await client.call.code(), await client.call.details()


def test_streams_per_address_are_capped() -> None:
    async def body() -> None:
        limits = Limits()
        async with serving(cache(), capped(max_streams_per_peer=3), limits) as (server, address):
            clients: list[Client] = []
            try:
                for i in range(3):  # one after the other: a call's handler starts when the call is made
                    clients.append(Client(address, node_id=f"sidecar~10.0.0.{i}~a.ns~ns.svc"))
                    await clients[i].send(T.CLUSTER)
                    assert names_of(await clients[i].recv()) == ["a", "b"]
                clients.append(Client(address))
                await clients[3].send(T.CLUSTER)
                assert await ended(clients[3]) == (grpc.StatusCode.RESOURCE_EXHAUSTED, ("127.0.0.1 has 3 ADS streams "
                                                   "open; the limit is 3 (serve --max-streams-per-peer)"))
                await clients[0].close()
                await until(lambda: len(server.status()) == 2, "the closed stream's handler ends")
                async with Client(address) as again:  # a slot is free again
                    await again.send(T.CLUSTER)
                    assert names_of(await again.recv()) == ["a", "b"]
            finally:
                for client in clients:
                    await client.close()
        assert limits.counts == {Limit.STREAMS_PER_PEER: 1}
    run(body)


def test_a_long_node_id_is_refused_and_unknown_types_do_not_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        limits = Limits()
        async with serving(cache(), observer=limits) as (_, address):
            async with Client(address, node_id="x" * 1_000_000) as client:
                await client.send(T.CLUSTER)
                assert await ended(client) == (grpc.StatusCode.INVALID_ARGUMENT,
                                               "node.id is 1000000 bytes; the limit is 1024 (serve --max-node-id-bytes)")
            async with Client(address) as client:
                for i in range(2000):
                    await client.send(f"type.googleapis.com/unknown.{i}." + "y" * 1000)
                await client.send(T.CLUSTER)  # still served
                assert names_of(await client.recv()) == ["a", "b"]
        assert limits.counts == {Limit.NODE_ID: 1, Limit.UNKNOWN_TYPE: 2000}
    with caplog.at_level(logging.INFO, logger="reconciler.xds"):
        run(body)
    assert len(caplog.text) < 4000, f"{len(caplog.text)} bytes of log"
    assert "unsupported type" in caplog.text and "node.id is 1000000 bytes" in caplog.text


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_subscribed_names_per_stream_are_capped(delta: bool) -> None:
    async def body() -> None:
        limits = Limits()
        async with serving(cache(), capped(max_resource_names=1000), limits) as (server, address):
            async with Client(address, delta=delta) as client:
                await client.send(T.ENDPOINT, [f"unknown-{i}" for i in range(600)])
                await client.recv()
                # SotW replaces the type's names; delta adds to them (a client growing its set a chunk at a time).
                await client.send(T.CLUSTER, [f"more-{i}" for i in range(600)])
                assert await ended(client) == (grpc.StatusCode.RESOURCE_EXHAUSTED, ("sidecar~10.0.0.1~a.ns~ns.svc "
                                               "subscribed to 1200 resource names; the limit is 1000 "
                                               "(serve --max-resource-names)"))
            await until(lambda: server.status() == [], "the capped stream is removed")
        assert limits.counts == {Limit.RESOURCE_NAMES: 1}
    run(body)


def test_a_client_re_requesting_every_10ms_is_throttled_and_coalesced() -> None:
    rate, burst, seconds = 10.0, 5, 2.0

    async def body() -> None:
        limits = Limits()
        options = capped(responses_per_second=rate, response_burst=burst)
        async with serving(cache(), options, limits) as (_, address), Client(address) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            deadline = started + seconds
            while loop.time() < deadline:
                await client.send(T.CLUSTER)  # no nonce: a fresh request, which the server must answer
                await asyncio.sleep(0.01)
            await asyncio.sleep(2 / rate)  # the coalesced answer to the last requests
            received = 0
            with pytest.raises(TimeoutError):
                while True:
                    await asyncio.wait_for(client._inbox.get(), 0.3)
                    received += 1
            # the bucket's budget over the time that really passed (a loaded machine stretches it), not over 2 s
            budget = burst + rate * (loop.time() - started)
        # Unthrottled, each of the ~190 requests got its own response.
        assert 2 <= received <= budget + 1, (received, budget)
        assert limits.counts[Limit.RESPONSE_RATE] >= 1
    run(body)


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        assert bucket.wait() == 0
        bucket.spend()
    assert bucket.wait() == 0.5
    now[0] = 0.5
    assert bucket.wait() == 0
    now[0] = 100.0
    bucket.spend()
    assert bucket.wait() == 0  # saved up to the burst, not beyond
    bucket.spend()
    bucket.spend()
    assert bucket.wait() == 0.5


def test_serve_flags_default_to_the_caps_and_refuse_nonsense() -> None:
    # The parser does not import the reconciler (`meshward validate` must not load gRPC), so it repeats the
    # defaults; they must agree.
    parser = cli._parser()
    assert serve.config_from_args(parser.parse_args(["serve", "--repo", "x"])).client_caps == ClientCaps()
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["serve", "--repo", "x", "--max-responses-per-second", "0"])
    assert exit_.value.code == 2
