"""Drives one ADS stream: a reader task feeds requests to the protocol session, a writer loop sends what the
session says is due whenever a request arrives or the proxy's snapshot changes.

Why the writer pulls instead of queueing: a proxy that stops reading must not make us buffer responses. Responses
are computed from the current snapshot only when the previous write finished, so each stream holds at most one
response in flight and any number of snapshot changes meanwhile collapse into the next response.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc

from meshxds.snapshot import Snapshot
from reconciler.identity.spiffe import Identity
from reconciler.xds import ads_common, ads_guard, ads_status
from reconciler.xds.cache import SnapshotCache, Watch
from reconciler.xds.xds_node import NodeInfo

log = logging.getLogger(__name__)


class Session(Protocol):
    """What `ads_sotw.SotwSession` and `ads_delta.DeltaSession` have in common."""

    mode: str

    def handle(self, request: Any) -> None: ...
    def subscribed(self) -> int: ...
    def next_response(self, snapshot: Snapshot, published_at: float | None = None) -> ads_common.Response | None:
        ...
    def status(self, snapshot: Snapshot | None) -> dict[str, ads_status.TypeStatus]: ...


class PushSlots:
    """Bounds the responses being encoded and written at once across all streams, so that a thousand proxies
    reconnecting (or one commit that touches all of them) are served a few at a time instead of all encoding at
    once. A write that takes longer than `hold` gives its slot back and finishes outside: a proxy that reads slowly
    must not starve the others (its stream still holds at most that one response)."""

    def __init__(self, size: int, *, hold: float = 1.0) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self.size, self.hold = size, hold
        self.in_use = 0
        self.peak = 0  # the most slots ever held at once (tests and benchmarks)

    async def acquire(self) -> None:
        await self._semaphore.acquire()
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def release(self) -> None:
        self.in_use -= 1
        self._semaphore.release()


@dataclasses.dataclass(frozen=True)
class StreamLimits:
    debounce: float                     # seconds to wait after a snapshot change, so bursts make one push
    push_slots: PushSlots               # bounds responses being encoded and written at once, across streams
    send_timeout: float | None          # a write stuck this long (proxy not reading) ends the stream
    guard: ads_guard.Guard              # what one client may make the server hold, log or compute


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


class _Stuck(Exception):
    """The proxy did not read a response within the send timeout."""


class _Gone(Exception):
    """The call ended while a response was being written; there is nobody to tell anything."""


class Stream:
    def __init__(self, stream_id: int, session: Session, context: grpc.aio.ServicerContext[Any, Any], *,
                 cache: SnapshotCache, observer: ads_status.AdsObserver, limits: StreamLimits,
                 trust_domain: str | None = None):
        self.id = stream_id
        self._trust_domain = trust_domain  # mTLS ADS: clients are workloads of this trust domain; None: plain ADS
        self.identity: Identity | None = None  # who the client's certificate says it is (mTLS ADS)
        self.session = session
        self.connected_since = time.time()
        self.node: NodeInfo | None = None
        self.watch: Watch | None = None
        self._context = context
        self._cache = cache
        self._observer = observer
        self._limits = limits
        self._wake = asyncio.Event()
        self._snapshot_changed = False
        self._closing = False
        self._refused: ads_guard.Refused | None = None
        self._bucket = limits.guard.bucket()

    async def run(self, requests: AsyncIterator[Any]) -> None:
        first = await anext(aiter(requests), None)
        if first is None:
            return
        if not first.node.id:
            # "Basic Protocol Overview": the first request on a stream carries the node identifier.
            await self._context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry node.id")
        node = await self._admit(first.node)
        self.node = node
        self.watch = self._cache.watch(node, self._on_snapshot_change)
        self._observer.on_connect(node.id, self.session.mode)
        reader = asyncio.create_task(self._read(first, requests))
        try:
            await self._write_loop(reader)
        except _Stuck:
            # Ending the handler frees this stream at once; gRPC sends the status after what is already buffered
            # (context.abort would wait behind the stuck write), and the proxy reconnects when it reads it.
            self._context.set_code(grpc.StatusCode.UNAVAILABLE)
            self._context.set_details("the proxy stopped reading; reconnect")
        except _Gone:
            log.info("stream %d from %s ended by the proxy during a write", self.id, node.id)
        finally:
            reader.cancel()
            self.watch.close()
            self._observer.on_disconnect(node.id, self.session.mode)
        if self._refused is not None:
            await self._context.abort(self._refused.code, self._refused.details)

    async def _admit(self, proto: Any) -> NodeInfo:
        """The node of the stream's first request, unless a cap or (mTLS) the client's identity refuses it: then the
        stream ends with that status before anything is looked up for the node. Authenticated here rather than
        when the stream opens, so that the client reads the status after its first request (a grpc.aio client
        whose first write raced a status sent at once reported INTERNAL instead)."""
        guard = self._limits.guard
        try:
            guard.check_node_id(proto.id)  # before it is parsed, logged or used as a key
            node = NodeInfo.from_proto(proto)
            if self._trust_domain is not None:
                self.identity = guard.authenticate(self._context.auth_context(), self._trust_domain)
                guard.authorize(self.identity, node)
        except ads_guard.Refused as refused:
            await self._context.abort(refused.code, refused.details)
        return node

    def close(self) -> None:
        """End after the response being written, if any (a server shutdown)."""
        self._closing = True
        self._wake.set()

    def _on_snapshot_change(self) -> None:
        self._snapshot_changed = True
        self._wake.set()

    async def _read(self, first: Any, requests: AsyncIterator[Any]) -> None:
        try:
            self._handle(first)
            async for request in requests:
                self._handle(request)
        except ads_guard.Refused as refused:
            self._refused = refused  # run() ends the stream with its status

    def _handle(self, request: Any) -> None:
        guard, node_id = self._limits.guard, self.node and self.node.id
        if request.type_url not in ads_common.KNOWN_TYPES:
            guard.breach(ads_guard.Limit.UNKNOWN_TYPE, "ignoring ADS requests for unsupported type %r from %s",
                         request.type_url[:200], node_id)
            return
        try:
            self.session.handle(request)
        except Exception:  # noqa: BLE001 - a malformed request costs that request, never the stream or server
            guard.breach(ads_guard.Limit.BAD_REQUEST, "ignoring a request from %s that could not be handled",
                         node_id, exc_info=True)
        guard.check_names(str(node_id), self.session.subscribed())
        self._wake.set()

    async def _write_loop(self, reader: asyncio.Task[None]) -> None:
        while not reader.done() and not self._closing:
            waiter = asyncio.create_task(self._wake.wait())
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if reader.done() or self._closing:
                break
            self._wake.clear()
            if self._snapshot_changed and self._limits.debounce > 0:
                await asyncio.sleep(self._limits.debounce)  # later changes in the window ride along
            self._snapshot_changed = False
            await self._push()
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            log.info("stream %d from %s ended: %r", self.id, self.node and self.node.id, reader.exception())

    async def _push(self) -> None:
        assert self.watch is not None
        while self.watch.snapshot is not None:
            await self._throttle()
            published_at = self.watch.published_at
            response = await self._encode_and_write()
            if response is None:
                return
            self._bucket.spend()
            self._observer.on_push(response.type_url, response.ByteSize())
            if published_at is not None:
                ads_status.report_timing(self._observer, ads_status.Timing.PUSH, response.type_url,
                                         time.monotonic() - published_at)

    async def _throttle(self) -> None:
        """Past its burst, a stream waits for its next token; what it asks for meanwhile is coalesced into the
        one response computed after the wait (the session holds state, not a queue of requests)."""
        wait = self._bucket.wait()
        if wait > 0:
            self._limits.guard.breach(ads_guard.Limit.RESPONSE_RATE,
                                      "stream %d from %s is past %s responses/s; coalescing its requests", self.id,
                                      self.node and self.node.id, self._limits.guard.caps.responses_per_second)
            await asyncio.sleep(wait)

    async def _encode_and_write(self) -> ads_common.Response | None:
        """Encode the next response and write it, holding a push slot until the write is done or `hold` passed."""
        assert self.watch is not None
        slots = self._limits.push_slots
        await slots.acquire()
        held = True
        try:
            # Computed inside the slot, from the snapshot current now: a proxy waiting for a slot gets the newest
            # config, never one that was superseded while it queued.
            # thread_time: the CPU this encode cost, not time other processes or threads had the core.
            snapshot, started = self.watch.snapshot, time.thread_time()
            response = self.session.next_response(snapshot, self.watch.published_at) if snapshot else None
            if response is None:
                return None
            ads_status.report_timing(self._observer, ads_status.Timing.ENCODE, response.type_url,
                                     time.thread_time() - started)
            write = asyncio.ensure_future(self._write(response))
            try:
                await asyncio.wait({write}, timeout=slots.hold)
                if not write.done():
                    held = False
                    slots.release()  # a slow reader: finish its write without blocking everyone else
                await write
            finally:
                write.cancel()
                # Cancelled mid-write (the stream ended, or a shutdown's grace ran out), gRPC fails the write
                # instead of cancelling it; that is expected, and unretrieved it is logged as an ERROR.
                write.add_done_callback(_retrieve)
            return response
        finally:
            if held:
                slots.release()

    async def _write(self, response: ads_common.Response) -> None:
        try:
            # The bytes are the response already encoded; the method handler's serializer passes them through.
            await asyncio.wait_for(self._context.write(response.data), self._limits.send_timeout)
        except TimeoutError:
            log.warning("proxy %s did not read for %ss; closing its stream", self.node and self.node.id,
                        self._limits.send_timeout)
            raise _Stuck() from None
        except grpc.aio.InternalError:  # gRPC core failed the write: the call ended under it (the proxy left)
            raise _Gone() from None

    def status(self) -> ads_status.ProxyStatus:
        snapshot = self.watch.snapshot if self.watch else None
        types = self.session.status(snapshot)
        if self.watch is not None and self.watch.unknown:
            state = ads_status.SyncState.UNKNOWN
        elif snapshot is None or not types:
            state = ads_status.SyncState.STALE
        else:
            state = ads_status.overall([t.state for t in types.values()])
        return ads_status.ProxyStatus(
            node_id=self.node.id if self.node else "", stream_id=self.id, mode=self.session.mode,
            connected_since=self.connected_since, snapshot_version=snapshot.version if snapshot else None,
            types=types, state=state, identity=self.identity.uri if self.identity else None)
