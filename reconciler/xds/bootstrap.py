"""Envoy bootstraps that fetch everything over ADS from a meshward reconciler (`meshward bootstrap`).

Only the way to reach the control plane is static: a cluster `xds-grpc` (HTTP/2 to the xDS address); listeners and
clusters come over ADS (xds_protocol.rst, "Aggregated Discovery Service": cds_config/lds_config `ads: {}` plus one
`ads_config`), state of the world (`GRPC`) or incremental (`DELTA_GRPC`), transport API v3.

node.cluster (Envoy's "service cluster"): Istio derives it from the workload's `app` label and namespace; a node id
carries no labels, so for Istio-style ids (`sidecar~10.0.0.1~reviews-v1.shop~shop.svc.cluster.local`) we use the
workload name and namespace as written in the id (`reviews-v1.shop`), which is stable and unique per workload.
Callers who know better pass `cluster=`. A node id of another shape is refused: no proxy would get a config.
"""

from __future__ import annotations

from typing import Any

from compiler.build import (
    Metrics,
    agent_sds_cluster,
    agent_secret_config,
    is_ip,
    metrics_endpoint,
    metrics_stats_config,
    parse_node_id,
)
from reconciler.xds.xds_node import parse_istio_node_id

XDS_CLUSTER = "xds-grpc"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def render(node_id: str, xds_address: str, *, delta: bool = False, admin_port: int | None = None,
           cluster: str | None = None, sds_socket: str | None = None, xds_tls: bool = False,
           stats_address: str | None = None, metrics: Metrics | None = None) -> dict[str, Any]:
    """A JSON-able Envoy bootstrap. Raises ValueError for a node id that is not an Istio one (meshward would never
    serve it: `compiler.naming.parse_node_id`) or an address that is not HOST:PORT.
    With `sds_socket`, the static cluster `sds-grpc` reaches `meshward agent`'s SDS (secrets `default`, `ROOTCA`);
    with `xds_tls` too, `xds-grpc` connects over mTLS with them (`serve --xds-tls`).
    With `stats_address` (HOST:PORT; Istio's is 0.0.0.0:15090), Prometheus metrics at /stats/prometheus there,
    read from the admin interface, so `admin_port` is needed too. The stats carry Istio's labels either way;
    `metrics` (the proxy's Telemetry metrics settings, from the policy tree) leaves out what it disables. Envoy
    reads them at start only: a change takes a new bootstrap and a restart of the proxy."""
    parse_node_id(node_id)  # the compiler's check: a node id it cannot parse never gets a config
    parsed = parse_istio_node_id(node_id)
    source = (parsed.name, parsed.namespace) if parsed else ("unknown", "unknown")
    return {"node": {"id": node_id, "cluster": cluster or service_cluster(node_id)},
            **without_node(xds_address, delta=delta, admin_port=admin_port, sds_socket=sds_socket, xds_tls=xds_tls,
                           stats_address=stats_address, source=source, metrics=metrics)}


def without_node(xds_address: str, *, delta: bool = False, admin_port: int | None = None,
                 sds_socket: str | None = None, xds_tls: bool = False, stats_address: str | None = None,
                 source: tuple[str, str], metrics: Metrics | None = None) -> dict[str, Any]:
    """`render` without `node`, for a proxy whose node id is known only where it runs: Envoy's `--service-node`
    and `--service-cluster` give it (an injected pod's, from its name and IP; `reconciler/inject`). `source`:
    (workload, namespace), the `source_workload` and `source_workload_namespace` labels of its stats; `metrics`:
    as `render`'s (Istio's defaults when not given)."""
    host, port = split_address(xds_address)
    if stats_address is not None and admin_port is None:
        raise ValueError("the metrics endpoint reads Envoy's admin interface: give an admin port too")
    if xds_tls and not sds_socket:
        raise ValueError("--xds-tls authenticates with the agent's certificate: give --sds-socket too")
    xds = _xds_cluster(host, port)
    if xds_tls:
        xds["transport_socket"] = xds_transport_socket(host)
    bootstrap: dict[str, Any] = {
        **metrics_stats_config(workload=source[0], namespace=source[1], metrics=metrics or Metrics()),
        "dynamic_resources": _dynamic_resources(delta),
        "static_resources": {"clusters": [xds,
                                          *([sds_cluster(sds_socket)] if sds_socket else [])]},
    }
    if admin_port is not None:
        bootstrap["admin"] = {"address": _socket_address("127.0.0.1", admin_port)}
    if stats_address is not None and admin_port is not None:
        stats_listener, stats_cluster = metrics_endpoint(*split_address(stats_address, what="metrics"),
                                                         admin_address="127.0.0.1", admin_port=admin_port)
        bootstrap["static_resources"]["clusters"].append(stats_cluster)
        bootstrap["static_resources"]["listeners"] = [stats_listener]
    return bootstrap


def render_grpc(node_id: str, xds_address: str) -> dict[str, Any]:
    """gRPC's xDS bootstrap file (gRFC A27; `GRPC_XDS_BOOTSTRAP`) for a proxyless gRPC application, as Istio's agent
    writes it: metadata `GENERATOR: grpc` makes meshward send gRPC's shape of config (docs/proxyless-grpc.md)."""
    parse_node_id(node_id)  # the compiler's check: a node id it cannot parse never gets a config
    host, port = split_address(xds_address)
    parsed = parse_istio_node_id(node_id)
    metadata = {"GENERATOR": "grpc", **({"NAMESPACE": parsed.namespace} if parsed else {})}
    uri = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "xds_servers": [{"server_uri": uri, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
        "node": {"id": node_id, "cluster": service_cluster(node_id), "metadata": metadata, "locality": {}},
    }


def service_cluster(node_id: str) -> str:
    parsed = parse_istio_node_id(node_id)
    return f"{parsed.name}.{parsed.namespace}" if parsed else node_id


def split_address(address: str, *, what: str = "xDS") -> tuple[str, int]:
    """`HOST:PORT` or `[IPV6]:PORT` into its parts."""
    host, sep, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{what} address {address!r} is not HOST:PORT")
    return host, int(port_text)


def _dynamic_resources(delta: bool) -> dict[str, Any]:
    over_ads = {"ads": {}, "resource_api_version": "V3"}
    return {
        "ads_config": {
            "api_type": "DELTA_GRPC" if delta else "GRPC",
            "transport_api_version": "V3",
            "set_node_on_first_message_only": True,
            "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
        },
        "lds_config": dict(over_ads),
        "cds_config": dict(over_ads),
    }


def _xds_cluster(host: str, port: int) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": XDS_CLUSTER,
        "type": "STATIC" if is_ip(host) else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": XDS_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": _socket_address(host, port)}}]}]},
        # gRPC needs HTTP/2 to the control plane.
        "typed_extension_protocol_options": {_HTTP_OPTIONS: {
            "@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
            "explicit_http_config": {"http2_protocol_options": {}}}},
        # Notice a control plane that vanished without closing the connection.
        "upstream_connection_options": {"tcp_keepalive": {"keepalive_time": 300}},
    }
    if not is_ip(host):
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


def sds_cluster(socket_path: str) -> dict[str, Any]:
    """The agent's SDS over its Unix socket (a pipe address), HTTP/2 for gRPC, as Istio's bootstrap has it."""
    return agent_sds_cluster(socket_path)


def xds_transport_socket(host: str) -> dict[str, Any]:
    """mTLS to `serve --xds-tls`, as Istio's bootstraps had it before its agent proxied xDS (Istio 1.5-1.7
    `xds-grpc`): the client certificate is the agent's `default` and the server is verified with its `ROOTCA`,
    both over `sds-grpc` (Envoy fetches them before the static cluster connects). The server's certificate must
    also name `host`, since every workload's certificate chains to the same root."""
    san = {"san_type": "IP_ADDRESS" if is_ip(host) else "DNS", "matcher": {"exact": host}}
    context: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "tls_certificate_sds_secret_configs": [sds_secret_config("default")],
            "combined_validation_context": {
                "default_validation_context": {"match_typed_subject_alt_names": [san]},
                "validation_context_sds_secret_config": sds_secret_config("ROOTCA")}},
    }
    if not is_ip(host):
        context["sni"] = host
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def sds_secret_config(name: str) -> dict[str, Any]:
    """A TLS context's reference to one of the agent's secrets (`default` or `ROOTCA`) over `sds-grpc`."""
    return agent_secret_config(name)


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}
