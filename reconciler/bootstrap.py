"""Envoy bootstraps that connect to meshward over ADS (`meshward bootstrap`).

Everything a proxy learns comes over one ADS stream (state of the world, or delta with `delta=True`); the only
static piece is the cluster that reaches the xDS server itself (HTTP/2, as gRPC needs).
"""

from __future__ import annotations

from typing import Any

XDS_CLUSTER = "xds-grpc"


def node_cluster(node_id: str) -> str:
    """Istio's node.cluster is `<workload>.<namespace>`; take it from the node id's third part."""
    parts = node_id.split("~")
    if len(parts) != 4 or parts[0] not in ("sidecar", "router") or "." not in parts[2]:
        raise ValueError(f"invalid node id {node_id!r}: want TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local")
    return parts[2]


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid xDS address {address!r}: want HOST:PORT")
    return host, int(port)


def render(node_id: str, xds_address: str, *, delta: bool = False, admin_port: int | None = None) -> dict[str, Any]:
    host, port = _split(xds_address)
    config_source = {"ads": {}, "resource_api_version": "V3"}
    doc: dict[str, Any] = {
        "node": {"id": node_id, "cluster": node_cluster(node_id)},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if delta else "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "lds_config": config_source,
            "cds_config": config_source,
        },
        "static_resources": {"clusters": [{
            "name": XDS_CLUSTER,
            "type": "STRICT_DNS" if not host.replace(".", "").isdigit() else "STATIC",
            "connect_timeout": "1s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": XDS_CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": host, "port_value": port}}}}]}]},
        }]},
    }
    if admin_port is not None:
        doc["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}
    return doc
