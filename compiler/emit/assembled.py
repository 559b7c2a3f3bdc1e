"""EDS clusters, load assignments and route tables written from cached serialized parts (meshxds.wire),
byte-identical to `SerializeToString(deterministic=True)` of what `cluster.of`, `endpoint.of` and `route.of` build,
with the same references (`meshxds.refs.of` of those messages; tests/emit/test_emit_wire.py).

A 10,000-service mesh has 80,000 outbound clusters but a handful of shapes (the same DestinationRule policy on
every service): a cluster is its name, the shape's bytes (everything but name and metadata, built once) cut around
the metadata field, and its sources' metadata (shared by the clusters of one service). A load assignment is its
cluster name and its endpoints' cached encodings. A route table is its virtual hosts' encodings, each written from
its routes' (a VirtualService's routes are shared by the virtual hosts of every port). Building and serializing
one protobuf message per resource is most of the emitter's time otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterable
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import wrappers_pb2

from compiler import model
from compiler.emit import cluster, endpoint, hooks, metadata, route
from compiler.reuse.memo import Part
from meshxds import refs, type_urls, wire
from meshxds.snapshot import XdsResource

_F = cluster_pb2.Cluster.DESCRIPTOR.fields_by_name
_NAME, _METADATA = _F["name"].number, _F["metadata"].number
_E = endpoint_pb2.ClusterLoadAssignment.DESCRIPTOR.fields_by_name
_CLUSTER_NAME, _ENDPOINTS = _E["cluster_name"].number, _E["endpoints"].number
_L = endpoint_components_pb2.LocalityLbEndpoints.DESCRIPTOR.fields_by_name
_LOCALITY, _LB_ENDPOINTS = _L["locality"].number, _L["lb_endpoints"].number
_LOCALITY_WEIGHT, _PRIORITY = _L["load_balancing_weight"].number, _L["priority"].number
_B = endpoint_components_pb2.LbEndpoint.DESCRIPTOR.fields_by_name
_ENDPOINT, _HEALTH_STATUS, _WEIGHT = (_B["endpoint"].number, _B["health_status"].number,
                                     _B["load_balancing_weight"].number)
_LB_METADATA = _B["metadata"].number
_ADDRESS = endpoint_components_pb2.Endpoint.DESCRIPTOR.fields_by_name["address"].number
_SOCKET = address_pb2.Address.DESCRIPTOR.fields_by_name["socket_address"].number
_SOCKET_ADDRESS = address_pb2.SocketAddress.DESCRIPTOR.fields_by_name["address"].number
_PORT_VALUE = address_pb2.SocketAddress.DESCRIPTOR.fields_by_name["port_value"].number
_WRAPPED_VALUE = wrappers_pb2.UInt32Value.DESCRIPTOR.fields_by_name["value"].number


def applies(c: model.Cluster) -> bool:
    """EDS clusters over ADS: their message depends on nothing else of the model than their shape."""
    return c.discovery is model.Discovery.EDS


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    head: bytes  # fields before metadata, name left out
    tail: bytes  # fields after metadata
    secrets: tuple[tuple[str, str], ...]  # the SDS secrets its transport socket names


def _shape_key(c: model.Cluster) -> tuple[Any, ...]:
    # every field `cluster.of` reads for an EDS cluster over ADS, but the name and the sources
    return (c.lb_policy, c.minimum_ring_size, c.maglev_table_size, c.tcp, c.http,
            c.circuit_breakers, c.outlier, c.tls, c.auto_mtls, c.locality_weighted)


def _shape(c: model.Cluster) -> _Shape:
    bare = dataclasses.replace(c, name="", sources=())
    message = cluster.of(bare)
    head, tail = wire.split_before(message.SerializeToString(deterministic=True), _METADATA)  # no name: "" is unset
    return _Shape(head, tail, refs.of(message).secrets)


def _metadata(sources: tuple[model.Source, ...]) -> bytes:
    meta = metadata.of(sources)
    return b"" if meta is None else wire.length_delimited(_METADATA, meta.SerializeToString(deterministic=True))


def eds_cluster(c: model.Cluster, reuse: hooks.Reuse) -> XdsResource:
    shape = reuse.part(Part.CLUSTER_SHAPE, _shape_key(c), functools.partial(_shape, c))
    meta = reuse.part(Part.CLUSTER_METADATA, c.sources, functools.partial(_metadata, c.sources))
    data = wire.length_delimited(_NAME, c.name.encode()) + shape.head + meta + shape.tail
    return XdsResource.parsed(c.name, type_urls.CLUSTER, data, cluster_pb2.Cluster,
                              refs=refs.Refs(endpoints=c.name, secrets=shape.secrets))


def _lb_endpoint(ep: model.Endpoint) -> bytes:
    """The lb_endpoints field of `endpoint.lb_endpoint(ep)`, written field by field in number order, without the
    message (60,000 of them on 10,000 services, each built and serialized otherwise):
    endpoint.address.socket_address {address, port_value}, health_status, metadata (the tlsMode auto mTLS
    matches on, when set), load_balancing_weight (a wrapper, written even when 0). Not cached: a load assignment
    is emitted once per value (compiler.reuse.memo), and the endpoint it shares with one other (its service's and
    its subset's cluster) costs less to write again."""
    socket = (wire.length_delimited(_SOCKET_ADDRESS, ep.address.encode()) if ep.address else b"") \
        + wire.varint_member(_PORT_VALUE, ep.port)  # port_specifier is a oneof: 0 is written too
    body = wire.length_delimited(_ENDPOINT, wire.length_delimited(_ADDRESS, wire.length_delimited(_SOCKET, socket))) \
        + wire.varint_field(_HEALTH_STATUS, health_check_pb2.HEALTHY if ep.healthy else health_check_pb2.UNHEALTHY) \
        + (wire.length_delimited(_LB_METADATA, endpoint.lb_endpoint(ep).metadata.SerializeToString(deterministic=True))
           if ep.tls_mode else b"") \
        + wire.length_delimited(_WEIGHT, wire.varint_field(_WRAPPED_VALUE, ep.weight))
    return wire.length_delimited(_LB_ENDPOINTS, body)


def _locality(text: str) -> bytes:
    return wire.length_delimited(_LOCALITY, endpoint.locality_of(text).SerializeToString(deterministic=True)) \
        if text else b""


def _group(key: tuple[str, int, int], eps: Iterable[model.Endpoint]) -> bytes:
    """One LocalityLbEndpoints, its fields in field-number order as protobuf writes them."""
    locality, priority, weight = key
    return wire.length_delimited(_ENDPOINTS, _locality(locality) + b"".join(map(_lb_endpoint, eps))
                                 + (wire.length_delimited(_LOCALITY_WEIGHT, wire.varint_field(_WRAPPED_VALUE, weight))
                                    if weight else b"")
                                 + wire.varint_field(_PRIORITY, priority))


def load_assignment(la: model.LoadAssignment) -> XdsResource:
    """As `endpoint.load_assignment`: one group per locality in locality order, the model's order inside. A load
    assignment needs nothing from the rest of its snapshot."""
    eps = la.endpoints
    first = endpoint.group_key(eps[0]) if eps else None
    if all(endpoint.group_key(ep) == first for ep in eps):  # the usual case: one locality (or none)
        groups = _group(first, eps) if first is not None else b""
    else:
        groups = b"".join(_group(key, group) for key, group in itertools.groupby(sorted(eps, key=endpoint.group_key),
                                                                                 key=endpoint.group_key))
    data = (wire.length_delimited(_CLUSTER_NAME, la.cluster_name.encode()) if la.cluster_name else b"") + groups
    return XdsResource.parsed(la.cluster_name, type_urls.ENDPOINT, data, endpoint_pb2.ClusterLoadAssignment,
                              refs=refs.NONE)


def route_table(rc: model.RouteConfig, reuse: hooks.Reuse) -> XdsResource:
    """Written from its virtual hosts' cached encodings: a changed route table re-encodes changed hosts only."""
    parts = _vhost_parts(rc, reuse)
    return XdsResource.parsed(rc.name, type_urls.ROUTE, route.serialized(rc, (p[0] for p in parts)),
                              route_pb2.RouteConfiguration,
                              refs=refs.Refs(per_route_filters=frozenset().union(*(p[1] for p in parts))))


_VhostPart = tuple[bytes, frozenset[str]]  # the encoded virtual_hosts field, the filters its routes configure


def _vhost_parts(rc: model.RouteConfig, reuse: hooks.Reuse) -> tuple[_VhostPart, ...]:
    """Each virtual host's part, those of unchanged virtual hosts by place (compiler.reuse.memo)."""
    return reuse.parts_by_place(Part.VHOST, rc.name, rc.virtual_hosts, lambda vh: _vhost_part(vh, reuse))


def _vhost_part(vh: model.VirtualHost, reuse: hooks.Reuse) -> _VhostPart:
    def make() -> _VhostPart:
        routes = [_route_part(r, reuse) for r in vh.routes]
        return route.vhost_field_of_parts(vh, (r[0] for r in routes)), frozenset().union(*(r[1] for r in routes))
    return reuse.part(Part.VHOST, vh, make)


def _route_part(r: model.Route, reuse: hooks.Reuse) -> _VhostPart:
    """A route's serialization and the filters it configures, once per route (shared by ports' virtual hosts)."""
    def make() -> _VhostPart:
        message = route.route(r)
        return message.SerializeToString(deterministic=True), frozenset(message.typed_per_filter_config)
    return reuse.part(Part.ROUTE, r, make)
