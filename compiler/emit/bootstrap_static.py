"""A self-contained static Envoy bootstrap of one proxy's config, for `meshward compile --format bootstrap`
and for checking emitted config with the real Envoy (`envoy --mode validate -c FILE`).

The same emitters run in static mode: route tables go inline into their connection managers (route_config
instead of rds), EDS clusters become STATIC with their load assignment inline, and SDS secrets are static
secrets.
"""

from __future__ import annotations

from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import address_pb2, base_pb2

from compiler import model
from compiler.emit import cluster, common, dump, listener, route, secret


def _node(proxy: model.Proxy) -> base_pb2.Node:
    # Istio's service cluster for a workload: name.namespace
    return base_pb2.Node(
        id=proxy.node_id, cluster=f"{proxy.name}.{proxy.namespace}" if proxy.name else "meshward"
    )


def bootstrap(
    cfg: model.ProxyConfig, *, admin_address: str = "127.0.0.1", admin_port: int = 0
) -> bootstrap_pb2.Bootstrap:
    mode = common.STATIC_MODE
    routes = {r.name: route.of(r) for r in cfg.route_configs}
    assignments = {la.cluster_name: la for la in cfg.load_assignments}
    out = bootstrap_pb2.Bootstrap(node=_node(cfg.proxy))
    out.admin.address.CopyFrom(
        address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=admin_address, port_value=admin_port)
        )
    )
    static = out.static_resources
    static.secrets.extend(secret.of(s) for s in cfg.secrets)
    static.clusters.extend(cluster.of(c, mode=mode, assignments=assignments) for c in cfg.clusters)
    static.listeners.extend(listener.of(li, mode=mode, inline_routes=routes) for li in cfg.listeners)
    return out


def static_bootstrap(
    cfg: model.ProxyConfig, *, admin_address: str = "127.0.0.1", admin_port: int = 0
) -> dict[str, Any]:
    """The bootstrap as a JSON-ready dict (Envoy reads it as .json or .yaml)."""
    return dump.message_dict(bootstrap(cfg, admin_address=admin_address, admin_port=admin_port))
