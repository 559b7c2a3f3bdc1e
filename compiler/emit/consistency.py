"""Snapshot consistency, checked before a snapshot is published (go-control-plane's `Snapshot.Consistent()`).

Envoy waits for every resource a listener or cluster references: a missing route table, load assignment or
secret leaves the listener or cluster warming forever. Such a snapshot is an emitter or translator bug, a
system error that blocks publishing; the proxy keeps its last good snapshot.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from google.protobuf.message import Message

from compiler import model
from compiler.emit import type_urls
from compiler.emit.filters import http_connection_manager
from compiler.emit.snapshot import Snapshot, XdsResource
from compiler.emit.tls import TRANSPORT_SOCKET_TLS


def _chains(listener: listener_pb2.Listener) -> Iterator[listener_components_pb2.FilterChain]:
    yield from listener.filter_chains
    if listener.HasField("default_filter_chain"):
        yield listener.default_filter_chain


def _connection_managers(listener: listener_pb2.Listener) -> Iterator[hcm_pb2.HttpConnectionManager]:
    for chain in _chains(listener):
        for f in chain.filters:
            if f.name == http_connection_manager.NAME:
                yield hcm_pb2.HttpConnectionManager.FromString(f.typed_config.value)


def _per_filter_names(routes: route_pb2.RouteConfiguration) -> set[str]:
    return {key for vh in routes.virtual_hosts for r in vh.routes for key in r.typed_per_filter_config}


def _sds_names(socket: base_pb2.TransportSocket, upstream: bool) -> Iterator[str]:
    if socket.name != TRANSPORT_SOCKET_TLS:
        return
    kind = tls_pb2.UpstreamTlsContext if upstream else tls_pb2.DownstreamTlsContext
    ctx = kind.FromString(socket.typed_config.value).common_tls_context
    for sds in ctx.tls_certificate_sds_secret_configs:
        yield sds.name
    if ctx.HasField("validation_context_sds_secret_config"):
        yield ctx.validation_context_sds_secret_config.name
    if ctx.combined_validation_context.HasField("validation_context_sds_secret_config"):
        yield ctx.combined_validation_context.validation_context_sds_secret_config.name


def _eds_name(c: cluster_pb2.Cluster) -> str:
    return str(c.eds_cluster_config.service_name or c.name)


@dataclasses.dataclass(frozen=True, slots=True)
class _Refs:
    """What one resource needs from the rest of its snapshot."""

    routes: tuple[tuple[str, frozenset[str]], ...] = ()  # listener: (RDS name, http filters that run) per HCM
    endpoints: str | None = None  # EDS cluster: its load assignment
    secrets: tuple[tuple[str, str], ...] = ()  # (chain name or "", SDS secret name)
    per_route_filters: frozenset[str] = frozenset()  # route config: filters its routes configure


# Derived per resource content (type, name, content hash): a resource shared by a thousand proxies is decoded once.
_REFS: dict[tuple[str, str, str], _Refs] = {}
_REFS_MAX = 1 << 19


def _refs(res: XdsResource, message: Message | None = None) -> _Refs:
    found = _REFS.get((res.type_url, res.name, res.version))
    if found is None:
        found = _kept(res, _compute_refs(message if message is not None else res.message))
    return found


def _kept(res: XdsResource, refs: _Refs) -> _Refs:
    key = (res.type_url, res.name, res.version)
    if len(_REFS) >= _REFS_MAX:
        _REFS.clear()
    return _REFS.setdefault(key, refs)


def remember(res: XdsResource, message: Message) -> None:
    """Derive the resource's facts from the message it was emitted from, before the message is dropped (parsing
    the bytes back later would cost as much again)."""
    _refs(res, message)


def facts(message: Message) -> _Refs:
    """What a resource message needs from the rest of its snapshot."""
    return _compute_refs(message)


def remember_facts(res: XdsResource, *, eds: str | None, secrets: tuple[tuple[str, str], ...]) -> None:
    """The facts of a cluster written from parts, so that it is never parsed back."""
    _kept(res, _Refs(endpoints=eds, secrets=secrets))


def remember_route_filters(res: XdsResource, filters: frozenset[str]) -> None:
    """The facts of a route table written from parts (the filters its routes configure, gathered per virtual
    host), so that the table is never parsed back to find them."""
    _kept(res, _Refs(per_route_filters=filters))


def eds_name(res: XdsResource) -> str:
    """The load assignment an EDS cluster waits for, "" for any other resource."""
    return _refs(res).endpoints or ""


def _compute_refs(msg: Message) -> _Refs:
    if isinstance(msg, listener_pb2.Listener):
        routes = tuple((hcm.rds.route_config_name, frozenset(f.name for f in hcm.http_filters))
                       for hcm in _connection_managers(msg) if hcm.HasField("rds"))
        secrets = tuple((chain.name, sds) for chain in _chains(msg)
                        for sds in _sds_names(chain.transport_socket, upstream=False))
        return _Refs(routes=routes, secrets=secrets)
    if isinstance(msg, cluster_pb2.Cluster):
        eds = _eds_name(msg) if msg.type == cluster_pb2.Cluster.EDS else None
        return _Refs(endpoints=eds, secrets=tuple(("", sds) for sds in _sds_names(msg.transport_socket, upstream=True)))
    if isinstance(msg, route_pb2.RouteConfiguration):
        return _Refs(per_route_filters=frozenset(_per_filter_names(msg)))
    return _Refs()


def _listener_problems(listeners: Mapping[str, XdsResource], routes: Mapping[str, XdsResource],
                       secrets: Mapping[str, XdsResource]) -> Iterator[str]:
    for name, res in listeners.items():
        refs = _refs(res)
        for rds, filters in refs.routes:
            if rds not in routes:
                yield f"listener {name} references route config {rds!r}, which is not in the snapshot"
                continue
            # every filter the routes configure runs in the chain (else Envoy would quietly ignore, say, a
            # route's fault injection)
            for filter_name in sorted(_refs(routes[rds]).per_route_filters - filters):
                yield f"route config {rds!r} configures {filter_name} per route, but listener {name} does not run it"
        for chain, sds in refs.secrets:
            if sds not in secrets:
                yield f"listener {name} chain {chain!r} references secret {sds!r}, which is not in the snapshot"


def _cluster_problems(clusters: Mapping[str, XdsResource], endpoints: Mapping[str, XdsResource],
                      secrets: Mapping[str, XdsResource]) -> Iterator[str]:
    for name, res in clusters.items():
        refs = _refs(res)
        if refs.endpoints is not None and refs.endpoints not in endpoints:
            yield f"EDS cluster {name} has no load assignment {refs.endpoints!r} in the snapshot"
        for _, sds in refs.secrets:
            if sds not in secrets:
                yield f"cluster {name} references secret {sds!r}, which is not in the snapshot"


Memo = Callable[[Hashable, Callable[[], Any]], Any]


def check(snap: Snapshot, memo: Memo | None = None) -> list[str]:
    """Problems, empty when consistent: every route config a listener names over RDS, every EDS cluster's load
    assignment and every SDS secret a listener or cluster names is in the snapshot, and every filter a route
    configures runs in the connection managers that use the route table. With a memo (compiler.emit.memo), the
    checks of tables shared with another proxy's snapshot are not repeated: tables are keyed by identity (the entry
    keeps them alive)."""
    listeners, routes, clusters, endpoints, secrets = (
        snap.get(t) for t in (type_urls.LISTENER, type_urls.ROUTE, type_urls.CLUSTER, type_urls.ENDPOINT,
                              type_urls.SECRET))

    def memoized(tag: str, tables: tuple[Mapping[str, XdsResource], ...],
                 problems: Callable[..., Iterator[str]]) -> list[str]:
        if memo is None:
            return list(problems(*tables))
        entry = memo(("consistency", tag, tuple(map(id, tables))), lambda: (tables, list(problems(*tables))))
        return list(entry[1])

    return [*memoized("listeners", (listeners, routes, secrets), _listener_problems),
            *memoized("clusters", (clusters, endpoints, secrets), _cluster_problems)]


def duplicates(cfg: model.ProxyConfig) -> list[str]:
    """Two resources of one type with one name: the snapshot would silently keep only the last."""
    named = {
        "listener": [x.name for x in cfg.listeners],
        "route config": [x.name for x in cfg.route_configs],
        "cluster": [x.name for x in cfg.clusters],
        "load assignment": [x.cluster_name for x in cfg.load_assignments],
        "secret": [x.name for x in cfg.secrets],
    }
    return [
        f"{kind} {name!r} is defined {n} times"
        for kind, names in named.items()
        for name, n in sorted(Counter(names).items())
        if n > 1
    ]
