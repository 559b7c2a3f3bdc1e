"""The ADS gRPC server: StreamAggregatedResources (state of the world) and DeltaAggregatedResources (incremental).

It knows the cache only through `SnapshotCache.watch`, and the protocol only through the session state machines in
`ads_sotw` / `ads_delta`; this module wires them to grpc.aio and keeps the table of live streams for status.

Usage (the reconciler):

    cache = SnapshotCache()
    server = AdsServer(cache, observer=metrics_observer, options=AdsOptions(max_connection_age=1800))
    port = await server.start("0.0.0.0:15010")
    await cache.publish(revision, resolve)    # after each good compile; streams wake as their proxy is resolved
    server.status()                           # list[ProxyStatus] for the admin pages
    await server.stop(grace=5)

Rebalancing: with `max_connection_age` set, gRPC itself sends GOAWAY after that age with +/-10% random jitter
(the `grpc.max_connection_age_ms` channel argument), and closes the connection `max_connection_age_grace` later,
so proxies reconnect and spread over the replicas behind a load balancer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from reconciler.xds import ads_common, ads_guard, ads_status
from reconciler.xds.ads_delta import DeltaSession
from reconciler.xds.ads_sotw import SotwSession
from reconciler.xds.ads_stream import PushSlots, Session, Stream, StreamLimits
from reconciler.xds.cache import SnapshotCache

log = logging.getLogger(__name__)

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"


@dataclasses.dataclass(frozen=True)
class MutualTls:
    """`serve --xds-tls`: the server's key and chain, and the trust bundle every client certificate must chain to
    (gRPC refuses a client without one at the handshake); `ads_auth` reads the identity of those that pass."""

    key_pem: bytes = dataclasses.field(repr=False)
    chain_pem: bytes
    roots_pem: bytes
    trust_domain: str

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key_pem, self.chain_pem)], root_certificates=self.roots_pem,
                                           require_client_auth=True)


@dataclasses.dataclass(frozen=True)
class AdsOptions:
    debounce: float = 0.1                  # seconds a stream waits after a snapshot change before pushing
    max_concurrent_pushes: int = 64        # responses being encoded and written at once, across all streams
    push_slot_hold: float = 1.0            # seconds a slow write may keep its slot before finishing outside it
    send_timeout: float | None = 60.0      # a proxy that does not read for this long loses its stream
    max_connection_age: float | None = None   # seconds; None: connections live forever
    max_connection_age_grace: float = 10.0    # seconds streams get to finish after GOAWAY
    # Streams gRPC core holds before our handler has taken them; beyond it, core cancels new ones at once.
    # grpc.aio takes one call from core per event-loop turn, so a fleet connecting while the loop is busy waits
    # here. gRPC's own default (1,000, then cancelling at random up to 3,000) cancelled about 1 in 8 of 2,000
    # proxies connecting at once (`bench/push.py`). A waiting stream costs less memory than a served one.
    max_pending_streams: int = 10_000
    # what one client may make the server hold or do
    caps: ads_guard.ClientCaps = dataclasses.field(default_factory=ads_guard.ClientCaps)
    tls: MutualTls | None = None  # `serve --xds-tls`; None: plain ADS

    def grpc_options(self) -> list[tuple[str, int]]:
        options = [("grpc.server.max_pending_requests", self.max_pending_streams),
                   ("grpc.server.max_pending_requests_hard_limit", self.max_pending_streams)]
        if self.max_connection_age is not None:
            options += [("grpc.max_connection_age_ms", int(self.max_connection_age * 1000)),
                        ("grpc.max_connection_age_grace_ms", int(self.max_connection_age_grace * 1000))]
        return options


class AdsServer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, cache: SnapshotCache, *, observer: ads_status.AdsObserver | None = None,
                 options: AdsOptions = AdsOptions()):
        self.cache = cache
        self.options = options
        self._observer: ads_status.AdsObserver = observer or ads_status.NullObserver()
        # Optional hooks of richer observers (reconciler.ops.metrics.XdsObserver): publish timings, sharing figures.
        on_publish = getattr(self._observer, "on_publish", None)
        if on_publish is not None:
            cache.on_published(on_publish)
        watch_cache = getattr(self._observer, "watch_cache", None)
        if watch_cache is not None:
            watch_cache(cache)
        self._encoder = ads_common.Encoder()  # its caches of encoded resources live as long as the server
        self._guard = ads_guard.Guard(options.caps, self._observer)
        self._streams: dict[int, Stream] = {}
        self._ids = itertools.count(1)
        self._server: grpc.aio.Server | None = None
        self._limits: StreamLimits | None = None
        self.push_slots: PushSlots | None = None
        self._draining: asyncio.Future[None] | None = None  # done when stop() starts; every stream waits on it
        self._drain_grace = 0.0

    async def start(self, address: str = "127.0.0.1:0") -> int:
        """Listen on `address` (host:port, port 0 picks a free one); returns the bound port."""
        self.push_slots = PushSlots(self.options.max_concurrent_pushes, hold=self.options.push_slot_hold)
        self._draining = asyncio.get_running_loop().create_future()
        self._limits = StreamLimits(self.options.debounce, self.push_slots, self.options.send_timeout, self._guard)
        self._server = grpc.aio.server(options=self.options.grpc_options())
        self._server.add_generic_rpc_handlers((self._handlers(),))
        tls = self.options.tls
        port = int(self._server.add_secure_port(address, tls.credentials()) if tls is not None
                   else self._server.add_insecure_port(address))
        await self._server.start()
        log.info("ADS listening on %s (port %d%s)", address, port, ", mTLS" if tls is not None else "")
        return port

    def _handlers(self) -> grpc.GenericRpcHandler:
        """The ADS service with responses sent as the bytes the sessions encoded (`ads_common.Encoder`):
        the generated `add_..._to_server` would serialize a DiscoveryResponse message instead."""
        def passthrough(data: bytes) -> bytes:
            return data
        methods = {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self.StreamAggregatedResources, request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=passthrough),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self.DeltaAggregatedResources, request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                response_serializer=passthrough),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    async def stop(self, grace: float | None = 1.0) -> None:
        """Drain: every stream finishes the response it is writing (up to `grace` seconds) and ends with
        UNAVAILABLE, which Envoy answers by keeping its config and reconnecting (to another replica, behind a
        Service). Handlers that end by themselves are not cancelled by gRPC, which would log each one's
        CancelledError as an error with a traceback."""
        if self._server is None:
            return
        assert self._draining is not None
        self._draining.set_result(None)
        self._drain_grace = grace or 0.0
        # gRPC cancels what is left a little after our own grace, so every handler has ended by then.
        await self._server.stop(None if grace is None else grace + 1.0)
        self._server = None

    def status(self) -> list[ads_status.ProxyStatus]:
        """One entry per live stream, ordered by node id then stream id."""
        return sorted((s.status() for s in self._streams.values() if s.node is not None),
                      key=lambda p: (p.node_id, p.stream_id))

    async def StreamAggregatedResources(
            self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
            context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await self._serve(SotwSession(self._observer, self._encoder), request_iterator, context)

    async def DeltaAggregatedResources(
            self, request_iterator: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
            context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await self._serve(DeltaSession(self._observer, self._encoder), request_iterator, context)

    async def _serve(self, session: Session, requests: AsyncIterator[Any],
                     context: grpc.aio.ServicerContext[Any, Any]) -> None:
        assert self._limits is not None, "start() the server first"
        peer = ads_guard.peer_host(context.peer())
        try:
            self._guard.open_stream(peer)
        except ads_guard.Refused as refused:
            await context.abort(refused.code, refused.details)
        try:
            await self._serve_stream(session, requests, context)
        finally:
            self._guard.close_stream(peer)

    async def _serve_stream(self, session: Session, requests: AsyncIterator[Any],
                            context: grpc.aio.ServicerContext[Any, Any]) -> None:
        assert self._limits is not None and self._draining is not None
        stream = Stream(next(self._ids), session, context, cache=self.cache, observer=self._observer,
                        limits=self._limits, trust_domain=self.options.tls.trust_domain if self.options.tls else None)
        self._streams[stream.id] = stream
        run = asyncio.ensure_future(stream.run(requests))
        try:
            # a shared future, not an Event: waiting on it costs each stream a callback, not a task
            await asyncio.wait({run, self._draining}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                await self._drain(stream, run, context)
            if not run.cancelled():
                run.result()  # what the stream raised (an abort) is the handler's outcome
        finally:
            run.cancel()
            del self._streams[stream.id]

    async def _drain(self, stream: Stream, run: asyncio.Future[None],
                     context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """End one stream for a shutdown: let it finish the write in flight, then stop it ourselves."""
        stream.close()
        await asyncio.wait({run}, timeout=self._drain_grace if stream.node is not None else 0)
        run.cancel()
        await asyncio.wait({run})
        context.set_code(grpc.StatusCode.UNAVAILABLE)
        context.set_details("meshward is shutting down; reconnect")
