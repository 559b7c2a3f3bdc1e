"""What one resource needs from the rest of its snapshot: the route tables and secrets a listener names, the load
assignment an EDS cluster waits for, the HTTP filters a route table configures per route.

Envoy waits for every resource a listener or cluster references (a listener or cluster stays warming until they
arrive), so the consistency check (meshxds.consistency) and ADS's "after a cluster changed, resend its endpoints"
(reconciler.ads_common.eds_names) both need them. They are found once, when a resource is built, and kept on it
(`XdsResource.refs`): go-control-plane's `GetResourceReferences` (pkg/cache/v3/resource.go) finds the same by
decoding the messages each time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2
from google.protobuf.message import Message

# The well-known names references are found under (Envoy's extension names; go-control-plane's pkg/wellknown).
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
TLS_TRANSPORT_SOCKET = "envoy.transport_sockets.tls"


@dataclasses.dataclass(frozen=True, slots=True)
class Refs:
    """What one resource needs from the rest of its snapshot."""

    routes: tuple[tuple[str, frozenset[str]], ...] = ()  # listener: (RDS name, http filters that run) per HCM
    endpoints: str | None = None  # EDS cluster: its load assignment
    secrets: tuple[tuple[str, str], ...] = ()  # (chain name or "", SDS secret name) the snapshot must hold
    per_route_filters: frozenset[str] = frozenset()  # route config: filters its routes configure


NONE = Refs()  # a secret's, a load assignment's: they need nothing else


def of(message: Message) -> Refs:
    """The references of a resource message (any other type than these has none)."""
    if isinstance(message, listener_pb2.Listener):
        routes = tuple((hcm.rds.route_config_name, frozenset(f.name for f in hcm.http_filters))
                       for hcm in _connection_managers(message) if hcm.HasField("rds"))
        secrets = tuple((chain.name, sds) for chain in _chains(message)
                        for sds in _sds_names(chain.transport_socket, upstream=False))
        return Refs(routes=routes, secrets=secrets)
    if isinstance(message, cluster_pb2.Cluster):
        eds = str(message.eds_cluster_config.service_name or message.name) \
            if message.type == cluster_pb2.Cluster.EDS else None
        sockets = (message.transport_socket, *(m.transport_socket for m in message.transport_socket_matches))
        return Refs(endpoints=eds, secrets=tuple(("", sds) for socket in sockets
                                                 for sds in _sds_names(socket, upstream=True)))
    if isinstance(message, route_pb2.RouteConfiguration):
        return Refs(per_route_filters=frozenset(key for vh in message.virtual_hosts for r in vh.routes
                                                for key in r.typed_per_filter_config))
    return NONE


def _chains(listener: listener_pb2.Listener) -> Iterator[listener_components_pb2.FilterChain]:
    yield from listener.filter_chains
    if listener.HasField("default_filter_chain"):
        yield listener.default_filter_chain


def _connection_managers(listener: listener_pb2.Listener) -> Iterator[hcm_pb2.HttpConnectionManager]:
    for chain in _chains(listener):
        for f in chain.filters:
            if f.name == HTTP_CONNECTION_MANAGER:
                yield hcm_pb2.HttpConnectionManager.FromString(f.typed_config.value)


def _sds_names(socket: base_pb2.TransportSocket, upstream: bool) -> Iterator[str]:
    if socket.name != TLS_TRANSPORT_SOCKET:
        return
    kind = tls_pb2.UpstreamTlsContext if upstream else tls_pb2.DownstreamTlsContext
    ctx = kind.FromString(socket.typed_config.value).common_tls_context
    configs = [*ctx.tls_certificate_sds_secret_configs]
    if ctx.HasField("validation_context_sds_secret_config"):
        configs.append(ctx.validation_context_sds_secret_config)
    if ctx.combined_validation_context.HasField("validation_context_sds_secret_config"):
        configs.append(ctx.combined_validation_context.validation_context_sds_secret_config)
    yield from (sds.name for sds in configs if _from_snapshot(sds))


def _from_snapshot(sds: secret_pb2.SdsSecretConfig) -> bool:
    """A secret over ADS, or with no config source (a static secret of a bootstrap), is the snapshot's to hold.
    One from another source is that source's: the agent's `default` and `ROOTCA` over its `sds-grpc` cluster
    (Pilot's ConstructSdsSecretConfig), which no control plane serves."""
    return not sds.HasField("sds_config") or sds.sds_config.HasField("ads")
