"""Simulated proxies for the push benchmark: one process runs many ADS streams on one asyncio loop and speaks the
real protocol, SotW or delta, as Envoy does: CDS and LDS wildcard, EDS for the EDS clusters it got, RDS for the
route names its listeners refer to, every response ACKed. It decodes only what it must to know those names, and
decodes each distinct resource once per process (proxies share most of their config), so that the clients cost
the machine as little as possible next to the server they measure.

`run(...)` is a multiprocessing target: it reports over a pipe when every stream is in sync, then the receive
time of every later response (what the benchmark times), until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from multiprocessing.connection import Connection
from typing import Any

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
TYPES = (CDS, EDS, LDS, RDS)

_eds_of: dict[bytes, str | None] = {}
_rds_of: dict[bytes, tuple[str, ...]] = {}


def eds_name(value: bytes) -> str | None:
    if value not in _eds_of:
        c = cluster_pb2.Cluster.FromString(value)
        _eds_of[value] = (c.eds_cluster_config.service_name or c.name) if c.type == cluster_pb2.Cluster.EDS else None
    return _eds_of[value]


def rds_names(value: bytes) -> tuple[str, ...]:
    if value not in _rds_of:
        names = []
        listener = listener_pb2.Listener.FromString(value)
        for chain in [*listener.filter_chains, listener.default_filter_chain]:
            for f in chain.filters:
                if f.typed_config.type_url.endswith("HttpConnectionManager"):
                    hcm = hcm_pb2.HttpConnectionManager.FromString(f.typed_config.value)
                    if hcm.HasField("rds"):
                        names.append(hcm.rds.route_config_name)
        _rds_of[value] = tuple(names)
    return _rds_of[value]


@dataclasses.dataclass
class Received:
    stream: int
    type_url: str
    version: str
    nbytes: int
    at: float        # time.time() the response was read
    acked_at: float  # time.time() its ACK was written


class Proxy:
    """One ADS stream."""

    def __init__(self, index: int, node_id: str, channel: grpc.aio.Channel, *, delta: bool,
                 log: list[Received]) -> None:
        self.index, self.delta, self._log = index, delta, log
        self.node = base_pb2.Node(id=node_id, cluster=node_id.split("~")[2])
        self._channel = channel
        self.call: Any = None  # opened in run(), on the loop, right before its first write
        self.names: dict[str, set[str]] = {EDS: set(), RDS: set()}
        self.have: dict[str, dict[str, bytes]] = {t: {} for t in TYPES}  # delta: what we hold, by name
        self.acked: set[str] = set()
        self.recording = bool(os.environ.get("PUSH_DEBUG"))
        self._first = True

    async def _send(self, type_url: str, **fields: Any) -> None:
        node = self.node if self._first else None
        self._first = False
        if self.delta:
            await self.call.write(discovery_pb2.DeltaDiscoveryRequest(node=node, type_url=type_url, **fields))
        else:
            await self.call.write(discovery_pb2.DiscoveryRequest(node=node, type_url=type_url, **fields))

    async def run(self, errors: list[str]) -> None:
        """Follow the stream; when it fails, reconnect with a fresh one (as Envoy does) and count the failure."""
        while True:
            self._reset()
            try:
                await self._send(CDS)
                await self._send(LDS)
                async for raw in self.call:
                    await self._on_response(raw)
            except grpc.aio.AioRpcError as err:
                errors.append(f"{err.code()}: {err.details()}")
                if os.environ.get("PUSH_DEBUG") and len(errors) == 1:
                    import traceback
                    traceback.print_exc()
            except asyncio.InvalidStateError:  # a write after the server ended the stream
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self.call.code()
                code, details = await self.call.code(), await self.call.details()
                errors.append(f"{code}: {details}")
            self.call.cancel()
            await asyncio.sleep(0.5)

    def _reset(self) -> None:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        self.call = stub.DeltaAggregatedResources() if self.delta else stub.StreamAggregatedResources()
        self.names = {EDS: set(), RDS: set()}
        self.have = {t: {} for t in TYPES}
        self.acked = set()
        self._first = True

    async def _on_response(self, response: Any) -> None:
        at = time.time()
        t = response.type_url
        values = self._values(response)
        if t == CDS:
            await self._follow(EDS, {n for v in values for n in [eds_name(v)] if n})
        elif t == LDS:
            await self._follow(RDS, {n for v in values for n in rds_names(v)})
        if self.delta:
            await self._send(t, response_nonce=response.nonce)
        else:
            await self._send(t, version_info=response.version_info, response_nonce=response.nonce,
                             resource_names=sorted(self.names.get(t, ())))
        self.acked.add(t)
        if self.recording:
            version = response.system_version_info if self.delta else response.version_info
            self._log.append(Received(self.index, t, version, response.ByteSize(), at, time.time()))

    def _values(self, response: Any) -> list[bytes]:
        """Every resource of the type this proxy now holds (SotW: the response; delta: the merged state)."""
        if not self.delta:
            return [r.value for r in response.resources]
        have = self.have[response.type_url]
        for name in response.removed_resources:
            have.pop(name, None)
        for res in response.resources:
            have[res.name] = res.resource.value
        return list(have.values())

    async def _follow(self, type_url: str, names: set[str]) -> None:
        old = self.names[type_url]
        if names == old:
            return
        self.names[type_url] = names
        if self.delta:
            await self._send(type_url, resource_names_subscribe=sorted(names - old),
                             resource_names_unsubscribe=sorted(old - names))
        else:
            await self._send(type_url, resource_names=sorted(names))


async def _main(address: str, node_ids: list[tuple[int, str]], delta: bool, pipe: Connection,
                streams_per_channel: int) -> None:
    log: list[Received] = []
    channels = [grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 256 << 20)])
                for _ in range((len(node_ids) + streams_per_channel - 1) // streams_per_channel)]
    proxies = [Proxy(i, nid, channels[k // streams_per_channel], delta=delta, log=log)
               for k, (i, nid) in enumerate(node_ids)]
    await asyncio.gather(*(c.channel_ready() for c in channels))
    errors: list[str] = []
    tasks = [asyncio.create_task(p.run(errors)) for p in proxies]
    while True:
        if not pipe.poll():
            await asyncio.sleep(0.05)
            continue
        command = pipe.recv()
        if command == "status":
            failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
            synced = sum(len(p.acked) == 4 for p in proxies)
            pipe.send(("error", repr(failed[0])) if failed else ("synced", synced, len(errors), errors[:1]))
        elif command == "record":
            for p in proxies:
                p.recording = True
            pipe.send("ok")
        elif command == "report":
            pipe.send([dataclasses.astuple(r) for r in log])
            log.clear()
        elif command == "stop":
            break
    for t in tasks:
        t.cancel()
    for c in channels:
        await c.close()


def run(address: str, node_ids: list[tuple[int, str]], delta: bool, pipe: Connection,
        streams_per_channel: int = 50) -> None:
    asyncio.run(_main(address, node_ids, delta, pipe, streams_per_channel))
