"""A self-contained static Envoy bootstrap of one proxy's config, for `meshward compile --format bootstrap`
and for checking emitted config with the real Envoy (`envoy --mode validate -c FILE`).

The same emitters run in static mode: route tables go inline into their connection managers (route_config
instead of rds), EDS clusters become STATIC with their load assignment inline, and SDS secrets are static
secrets, except the mesh identity (`default`, `ROOTCA`), which only the agent beside the proxy holds: a config
that needs it gets Istio's static `sds-grpc` cluster to the agent's socket, as every bootstrap of Istio has.
"""

from __future__ import annotations

from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from compiler import model
from compiler.emit import cluster, common, dump, listener, prometheus_stats, route, secret

# Where Istio's bootstrap finds the agent's SDS socket (pkg/security WorkloadIdentitySocketPath), relative to the
# proxy's working directory; `--sds-socket` names another.
AGENT_SDS_SOCKET = "./var/run/secrets/workload-spiffe-uds/socket"


def _node(proxy: model.Proxy) -> base_pb2.Node:
    # Istio's service cluster for a workload: name.namespace
    return base_pb2.Node(
        id=proxy.node_id, cluster=f"{proxy.name}.{proxy.namespace}" if proxy.name else "meshward"
    )


def agent_sds_cluster(socket_path: str) -> cluster_pb2.Cluster:
    """Istio's `sds-grpc`: the agent's SDS over its Unix socket (a pipe address), HTTP/2 for gRPC."""
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.CopyFrom(protocol_pb2.Http2ProtocolOptions())
    endpoint = endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(
        address=address_pb2.Address(pipe=address_pb2.Pipe(path=socket_path))))
    out = cluster_pb2.Cluster(
        name=common.AGENT_SDS_CLUSTER, type=cluster_pb2.Cluster.STATIC, connect_timeout=common.seconds(1),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=common.AGENT_SDS_CLUSTER,
            endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint])]))
    out.typed_extension_protocol_options[cluster.HTTP_PROTOCOL_OPTIONS].CopyFrom(common.pack(options))
    return out


def bootstrap(
    cfg: model.ProxyConfig, *, admin_address: str = "127.0.0.1", admin_port: int = 0,
    sds_socket: str = AGENT_SDS_SOCKET, stats_address: tuple[str, int] | None = None
) -> bootstrap_pb2.Bootstrap:
    """With `stats_address` (HOST, PORT), Istio's metrics endpoint there; it reads the admin interface, so
    `admin_port` must then be a real port, not 0."""
    mode = common.STATIC_MODE
    routes = {r.name: route.of(r) for r in cfg.route_configs}
    assignments = {la.cluster_name: la for la in cfg.load_assignments}
    out = bootstrap_pb2.Bootstrap(node=_node(cfg.proxy), stats_config=prometheus_stats.stats_config(
        workload=cfg.proxy.name or "unknown", namespace=cfg.proxy.namespace or "unknown", metrics=cfg.metrics))
    flush = prometheus_stats.flush_interval(cfg.metrics)
    if flush is not None:
        out.stats_flush_interval.CopyFrom(flush)
    out.admin.address.CopyFrom(
        address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=admin_address, port_value=admin_port)
        )
    )
    static = out.static_resources
    static.secrets.extend(secret.of(s) for s in cfg.secrets)
    static.clusters.extend(cluster.of(c, mode=mode, assignments=assignments) for c in cfg.clusters)
    if cfg.secret_references(model.SecretSource.AGENT):
        static.clusters.append(agent_sds_cluster(sds_socket))
    static.listeners.extend(listener.of(li, mode=mode, inline_routes=routes) for li in cfg.listeners)
    if stats_address is not None:
        if not admin_port:
            raise ValueError("the metrics endpoint reads Envoy's admin interface: give its port")
        static.clusters.append(prometheus_stats.admin_cluster(admin_address, admin_port))
        static.listeners.append(prometheus_stats.listener(*stats_address))
    return out


def static_bootstrap(
    cfg: model.ProxyConfig, *, admin_address: str = "127.0.0.1", admin_port: int = 0,
    sds_socket: str = AGENT_SDS_SOCKET, stats_address: tuple[str, int] | None = None
) -> dict[str, Any]:
    """The bootstrap as a JSON-ready dict (Envoy reads it as .json or .yaml)."""
    return dump.message_dict(bootstrap(cfg, admin_address=admin_address, admin_port=admin_port,
                                       sds_socket=sds_socket, stats_address=stats_address))
