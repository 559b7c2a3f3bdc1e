"""Test harness for the ADS server: hand-built xDS resources, a scripted grpc.aio client that checks protocol
invariants on every response, and helpers to run an ADS server on 127.0.0.1 inside one asyncio.run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Self, TypeVar

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2, duration_pb2
from google.rpc import status_pb2

from meshxds import type_urls as T
from meshxds.snapshot import Snapshot, XdsResource
from reconciler.ops import envoy_process
from reconciler.xds.ads import AdsOptions, AdsServer
from reconciler.xds.cache import SnapshotCache
from reconciler.xds.xds_node import NodeInfo

R = TypeVar("R")
TEST_OPTIONS = AdsOptions(debounce=0.0, send_timeout=None)


free_port = envoy_process.free_port


def run(body: Callable[[], Awaitable[R]], timeout: float = 30.0) -> R:
    async def bounded() -> R:
        return await asyncio.wait_for(body(), timeout)
    return asyncio.run(bounded())


# ---- resources -------------------------------------------------------------------------------------------------

def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource(),
                                          resource_api_version=config_source_pb2.V3)


def cluster(name: str, *, timeout_ms: int = 1000) -> XdsResource:
    msg = cluster_pb2.Cluster(
        name=name, type=cluster_pb2.Cluster.EDS,
        connect_timeout=duration_pb2.Duration(seconds=timeout_ms // 1000, nanos=timeout_ms % 1000 * 1_000_000),
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()))
    return XdsResource.of(name, T.CLUSTER, msg)


def endpoints(name: str, *ports: int, host: str = "127.0.0.1") -> XdsResource:
    lb = [endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))))
        for port in ports]
    msg = endpoint_pb2.ClusterLoadAssignment(
        cluster_name=name, endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=lb)])
    return XdsResource.of(name, T.ENDPOINT, msg)


def listener(name: str, port: int, route_name: str) -> XdsResource:
    router = any_pb2.Any()
    router.Pack(router_pb2.Router())
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=name, rds=hcm_pb2.Rds(config_source=_ads(), route_config_name=route_name),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router", typed_config=router)])
    typed = any_pb2.Any()
    typed.Pack(manager)
    msg = listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address="127.0.0.1", port_value=port)),
        filter_chains=[listener_components_pb2.FilterChain(filters=[listener_components_pb2.Filter(
            name="envoy.filters.network.http_connection_manager", typed_config=typed)])])
    return XdsResource.of(name, T.LISTENER, msg)


def route(name: str, cluster_name: str, *, header: str = "") -> XdsResource:
    headers = [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key="x-meshward", value=header))] if header else []
    msg = route_pb2.RouteConfiguration(name=name, virtual_hosts=[route_components_pb2.VirtualHost(
        name="all", domains=["*"], response_headers_to_add=headers,
        routes=[route_components_pb2.Route(match=route_components_pb2.RouteMatch(prefix="/"),
                                           route=route_components_pb2.RouteAction(cluster=cluster_name))])])
    return XdsResource.of(name, T.ROUTE, msg)


def mesh(*clusters: str, listener_port: int = 15001, backend_port: int = 9, route_cluster: str = "",
         header: str = "") -> Snapshot:
    """A listener `in` on `listener_port` with RDS route `r` to `route_cluster` (default: the first cluster)."""
    resources = [r for c in clusters for r in (cluster(c), endpoints(c, backend_port))]
    resources += [listener("in", listener_port, "r"), route("r", route_cluster or clusters[0], header=header)]
    return Snapshot.of(resources)


def static(snapshot: Snapshot) -> Callable[[NodeInfo], Snapshot]:
    return lambda node: snapshot


# ---- server and scripted client ----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def serving(cache: SnapshotCache, options: AdsOptions = TEST_OPTIONS,
                  observer: Any = None) -> AsyncIterator[tuple[AdsServer, str]]:
    server = AdsServer(cache, observer=observer, options=options)
    port = await server.start("127.0.0.1:0")
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=0.1)


class ProtocolError(AssertionError):
    pass


class Client:
    """A scripted ADS client (SotW or delta) that asserts protocol invariants on every response."""

    def __init__(self, address: str, *, delta: bool = False, node_id: str = "sidecar~10.0.0.1~a.ns~ns.svc",
                 reading: bool = True):
        self.delta = delta
        self.node = base_pb2.Node(id=node_id, cluster="a.ns")
        self._channel = grpc.aio.insecure_channel(address)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        self.call = stub.DeltaAggregatedResources() if delta else stub.StreamAggregatedResources()
        self._sent_node = False
        self._last_nonce = 0
        self.requested: set[str] = set()
        self.responses: list[Any] = []
        # Reading in a task: cancelling a pending grpc.aio read would cancel the whole call.
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        if reading:
            self.start_reading()

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read_all())

    async def _read_all(self) -> None:
        try:
            async for response in self.call:
                self._inbox.put_nowait(response)
        except grpc.aio.AioRpcError as err:
            self._inbox.put_nowait(err)
        self._inbox.put_nowait(None)

    async def close(self) -> None:
        self.call.cancel()
        if self._reader is not None:
            self._reader.cancel()
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(self, type_url: str, names: Iterable[str] = (), *, version: str = "", nonce: str = "",
                   error: str | None = None, unsubscribe: Iterable[str] = (),
                   initial: dict[str, str] | None = None) -> None:
        node = None if self._sent_node else self.node
        self._sent_node = True
        detail = status_pb2.Status(code=3, message=error) if error is not None else None
        self.requested.add(type_url)
        if self.delta:
            await self.call.write(discovery_pb2.DeltaDiscoveryRequest(
                node=node, type_url=type_url, resource_names_subscribe=list(names),
                resource_names_unsubscribe=list(unsubscribe), initial_resource_versions=initial or {},
                response_nonce=nonce, error_detail=detail))
        else:
            await self.call.write(discovery_pb2.DiscoveryRequest(
                node=node, type_url=type_url, resource_names=list(names), version_info=version,
                response_nonce=nonce, error_detail=detail))

    async def recv(self, timeout: float = 20.0) -> Any:
        """The next response. The timeout only bounds a failure: on a loaded machine a handler can start or answer
        seconds after the call; `silent` is the check that nothing comes."""
        response = await asyncio.wait_for(self._inbox.get(), timeout)
        if response is None or isinstance(response, grpc.aio.AioRpcError):
            raise ProtocolError(f"stream ended: {response}")
        self._check(response)
        self.responses.append(response)
        return response

    async def silent(self, timeout: float = 0.3) -> None:
        """Assert nothing arrives within `timeout` seconds."""
        try:
            response = await asyncio.wait_for(self._inbox.get(), timeout)
        except TimeoutError:
            return
        raise ProtocolError(f"unexpected response: {response}")

    def _check(self, response: Any) -> None:
        nonce = int(response.nonce)
        if nonce <= self._last_nonce:
            raise ProtocolError(f"nonce did not increase: {nonce} after {self._last_nonce}")
        self._last_nonce = nonce
        if response.type_url not in self.requested:
            raise ProtocolError(f"response for {response.type_url}, which was never requested")
        version = response.system_version_info if self.delta else response.version_info
        if not version:
            raise ProtocolError("response without a version")
        for res in response.resources:
            inner = res.resource if self.delta else res
            if inner.type_url and inner.type_url != response.type_url:
                raise ProtocolError(f"{inner.type_url} resource in a {response.type_url} response")

    async def ack(self, response: Any, names: Iterable[str] = ()) -> None:
        """ACK; SotW repeats the subscribed `names`, delta ACKs carry no subscription change."""
        if self.delta:
            await self.send(response.type_url, nonce=response.nonce)
        else:
            await self.send(response.type_url, names, version=response.version_info, nonce=response.nonce)


def names_of(response: Any) -> list[str]:
    """Resource names in a SotW or delta response."""
    if isinstance(response, discovery_pb2.DeltaDiscoveryResponse):
        return [r.name for r in response.resources]
    return [_name_of(any_msg) for any_msg in response.resources]


def _name_of(any_msg: any_pb2.Any) -> str:
    for msg_type in (cluster_pb2.Cluster, endpoint_pb2.ClusterLoadAssignment, listener_pb2.Listener,
                     route_pb2.RouteConfiguration):
        if any_msg.type_url.endswith(msg_type.DESCRIPTOR.full_name):
            msg = msg_type()
            any_msg.Unpack(msg)
            return str(msg.cluster_name if isinstance(msg, endpoint_pb2.ClusterLoadAssignment) else msg.name)
    raise AssertionError(any_msg.type_url)


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll until `check()` holds: the server acts on a client's message or close when its loop gets to it, which
    on a loaded machine can be long after the client sent it; reading the state once would race it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise ProtocolError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def until_acked(server: AdsServer, type_url: str, version: str, timeout: float = 10.0) -> None:
    """Wait until the server has seen the ACK of `version`: a publish racing ahead of it would make it stale."""
    def acked() -> bool:
        return any((typed := status.types.get(type_url)) is not None and typed.acked_version == version
                   for status in server.status())
    await until(acked, f"the server never saw the ACK of {type_url} {version}", timeout)
