"""ClusterLoadAssignment: the endpoints of a cluster, grouped by locality.

Used for EDS resources and, in the same shape, inline in STATIC / DNS clusters and in static bootstraps.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from envoy.config.core.v3 import address_pb2, base_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf import wrappers_pb2

from compiler import model
from compiler.emit import tls


def locality_of(text: str) -> base_pb2.Locality:
    region, zone, sub_zone = (text.split("/") + ["", "", ""])[:3]
    return base_pb2.Locality(region=region, zone=zone, sub_zone=sub_zone)


def lb_endpoint(ep: model.Endpoint) -> endpoint_components_pb2.LbEndpoint:
    """Inline endpoints (STATIC and DNS clusters, static bootstraps, proxyless gRPC); EDS load assignments are
    written from bytes (compiler.emit.assembled)."""
    address = address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=ep.address, port_value=ep.port)
    )
    status = health_check_pb2.HEALTHY if ep.healthy else health_check_pb2.UNHEALTHY
    out = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=address),
        health_status=status,
        load_balancing_weight=wrappers_pb2.UInt32Value(value=ep.weight),
    )
    if ep.tls_mode:  # what a cluster's transport_socket_matches choose by (Pilot's util.AppendLbEndpointMetadata)
        out.metadata.filter_metadata[tls.TLS_MODE_MATCH].update({"tlsMode": ep.tls_mode})
    return out


def group_key(ep: model.Endpoint) -> tuple[str, int, int]:
    """What one LocalityLbEndpoints shares: the locality, and its priority and weight (locality load balancing)."""
    return ep.locality, ep.priority, ep.locality_weight


def load_assignment(
    cluster_name: str, endpoints: Iterable[model.Endpoint]
) -> endpoint_pb2.ClusterLoadAssignment:
    """One LocalityLbEndpoints per locality, in locality order; endpoints keep the model's order inside it."""
    by_locality = sorted(endpoints, key=group_key)  # stable: the model's order within a locality
    groups = [
        endpoint_components_pb2.LocalityLbEndpoints(
            locality=locality_of(locality) if locality else None,
            lb_endpoints=[lb_endpoint(ep) for ep in eps],
            load_balancing_weight=wrappers_pb2.UInt32Value(value=weight) if weight else None,
            priority=priority,
        )
        for (locality, priority, weight), eps in itertools.groupby(by_locality, key=group_key)
    ]
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name, endpoints=groups)


def of(assignment: model.LoadAssignment) -> endpoint_pb2.ClusterLoadAssignment:
    return load_assignment(assignment.cluster_name, assignment.endpoints)
