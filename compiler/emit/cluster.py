"""Cluster resources: discovery type, load balancing, connection pool, outlier detection, upstream TLS and
HTTP protocol options, plus the meshward back-reference metadata.

EDS clusters take their endpoints over ADS (or inline as STATIC in a static bootstrap); other discovery types
carry an inline load assignment.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import base_pb2, protocol_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from compiler import model
from compiler.emit import common, endpoint, metadata, tls

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

_C = cluster_pb2.Cluster
_DISCOVERY = {
    model.Discovery.EDS: _C.EDS,
    model.Discovery.STATIC: _C.STATIC,
    model.Discovery.STRICT_DNS: _C.STRICT_DNS,
    model.Discovery.LOGICAL_DNS: _C.LOGICAL_DNS,
    model.Discovery.ORIGINAL_DST: _C.ORIGINAL_DST,
}
_LB = {
    model.LbPolicy.ROUND_ROBIN: _C.ROUND_ROBIN,
    model.LbPolicy.LEAST_REQUEST: _C.LEAST_REQUEST,
    model.LbPolicy.RANDOM: _C.RANDOM,
    model.LbPolicy.RING_HASH: _C.RING_HASH,
    model.LbPolicy.MAGLEV: _C.MAGLEV,
}


def _u32(value: int | None) -> wrappers_pb2.UInt32Value | None:
    return None if value is None else wrappers_pb2.UInt32Value(value=value)


def _set_discovery(
    out: cluster_pb2.Cluster,
    c: model.Cluster,
    *,
    mode: common.Mode,
    assignments: Mapping[str, model.LoadAssignment],
) -> None:
    if c.discovery is model.Discovery.EDS and not mode.static:
        out.type = _C.EDS
        out.eds_cluster_config.eds_config.CopyFrom(common.ads_source())
        return
    if c.discovery is model.Discovery.EDS:  # static bootstrap: the endpoints EDS would have sent, inline
        out.type = _C.STATIC
        la = assignments.get(c.name)
        out.load_assignment.CopyFrom(endpoint.load_assignment(c.name, la.endpoints if la else ()))
        return
    out.type = _DISCOVERY[c.discovery]
    if c.discovery is model.Discovery.ORIGINAL_DST:
        return  # the destination is the connection's original one: no endpoints
    if c.discovery in (model.Discovery.STRICT_DNS, model.Discovery.LOGICAL_DNS):
        out.dns_lookup_family = (
            _C.V4_PREFERRED
        )  # IPv4 where a name has both (most meshes are IPv4), IPv6 else
    eps = c.endpoints or ((model.Endpoint(c.dns_host, c.port),) if c.dns_host else ())
    out.load_assignment.CopyFrom(endpoint.load_assignment(c.name, eps))


def _set_lb(out: cluster_pb2.Cluster, c: model.Cluster) -> None:
    if c.discovery is model.Discovery.ORIGINAL_DST:
        out.lb_policy = _C.CLUSTER_PROVIDED  # Envoy requires it for ORIGINAL_DST
        return
    out.lb_policy = _LB[c.lb_policy]
    if c.lb_policy is model.LbPolicy.RING_HASH and c.minimum_ring_size is not None:
        out.ring_hash_lb_config.minimum_ring_size.value = c.minimum_ring_size
    if c.lb_policy is model.LbPolicy.MAGLEV and c.maglev_table_size is not None:
        out.maglev_lb_config.table_size.value = c.maglev_table_size


def _set_tcp(out: cluster_pb2.Cluster, tcp: model.TcpOptions) -> None:
    out.connect_timeout.CopyFrom(common.duration(tcp.connect_timeout_ms))
    if tcp.keepalive_time_s is None and tcp.keepalive_interval_s is None and tcp.keepalive_probes is None:
        return
    ka = out.upstream_connection_options.tcp_keepalive
    ka.SetInParent()
    if tcp.keepalive_time_s is not None:
        ka.keepalive_time.value = tcp.keepalive_time_s
    if tcp.keepalive_interval_s is not None:
        ka.keepalive_interval.value = tcp.keepalive_interval_s
    if tcp.keepalive_probes is not None:
        ka.keepalive_probes.value = tcp.keepalive_probes


def http_protocol_options(http: model.HttpOptions) -> http_protocol_options_pb2.HttpProtocolOptions:
    """HTTP/1.1 or HTTP/2 to the upstream, chosen explicitly (the model knows the port's protocol) or, with
    useClientProtocol, the version the client spoke."""
    opts = http_protocol_options_pb2.HttpProtocolOptions()
    if http.idle_timeout_ms is not None:
        opts.common_http_protocol_options.idle_timeout.CopyFrom(common.duration(http.idle_timeout_ms))
    if http.max_requests_per_connection is not None:
        opts.common_http_protocol_options.max_requests_per_connection.value = http.max_requests_per_connection
    if http.max_connection_duration_ms is not None:
        opts.common_http_protocol_options.max_connection_duration.CopyFrom(
            common.duration(http.max_connection_duration_ms))
    if http.use_client_protocol:
        # Pilot's setUseDownstreamProtocol (pilot/pkg/networking/core/cluster_builder.go): both versions offered,
        # HTTP/2 with Envoy's defaults
        downstream = opts.use_downstream_protocol_config
        downstream.http_protocol_options.SetInParent()
        downstream.http2_protocol_options.SetInParent()
    elif http.http2:
        h2 = opts.explicit_http_config.http2_protocol_options
        h2.SetInParent()
        if http.max_concurrent_streams is not None:
            h2.max_concurrent_streams.value = http.max_concurrent_streams
        if http.keepalive_interval_ms is not None:
            h2.connection_keepalive.interval.CopyFrom(common.duration(http.keepalive_interval_ms))
        if http.keepalive_timeout_ms is not None:
            h2.connection_keepalive.timeout.CopyFrom(common.duration(http.keepalive_timeout_ms))
    else:
        opts.explicit_http_config.http_protocol_options.CopyFrom(protocol_pb2.Http1ProtocolOptions())
    return opts


def _circuit_breakers(cb: model.CircuitBreakers) -> circuit_breaker_pb2.CircuitBreakers:
    threshold = circuit_breaker_pb2.CircuitBreakers.Thresholds(
        priority=base_pb2.RoutingPriority.DEFAULT,
        max_connections=_u32(cb.max_connections),
        max_pending_requests=_u32(cb.max_pending_requests),
        max_requests=_u32(cb.max_requests),
        max_retries=_u32(cb.max_retries),
        track_remaining=True,  # as Istio: the remaining_* gauges show how close a cluster is to its limits
    )
    return circuit_breaker_pb2.CircuitBreakers(thresholds=[threshold])


def _enforcing(consecutive: int | None) -> wrappers_pb2.UInt32Value | None:
    """Istio enforces a consecutive-errors check fully when it is set and > 0, and turns it off at 0."""
    return None if consecutive is None else wrappers_pb2.UInt32Value(value=100 if consecutive > 0 else 0)


def _set_outlier(out: cluster_pb2.Cluster, od: model.OutlierDetection) -> None:
    out.outlier_detection.CopyFrom(
        outlier_detection_pb2.OutlierDetection(
            consecutive_5xx=_u32(od.consecutive_5xx),
            enforcing_consecutive_5xx=_enforcing(od.consecutive_5xx),
            consecutive_gateway_failure=_u32(od.consecutive_gateway_errors),
            enforcing_consecutive_gateway_failure=_enforcing(od.consecutive_gateway_errors),
            interval=None if od.interval_ms is None else common.duration(od.interval_ms),
            base_ejection_time=None
            if od.base_ejection_time_ms is None
            else common.duration(od.base_ejection_time_ms),
            max_ejection_percent=_u32(od.max_ejection_percent),
            enforcing_success_rate=wrappers_pb2.UInt32Value(value=0),  # Istio never ejects on success rate
        )
    )
    # Istio (applyOutlierDetection) maps minHealthPercent to the panic threshold and otherwise sets 0: Envoy's 50%
    # default would send traffic back to ejected hosts once half of a small service is ejected
    out.common_lb_config.healthy_panic_threshold.CopyFrom(percent_pb2.Percent(value=od.min_health_percent or 0))


def of(
    c: model.Cluster,
    *,
    mode: common.Mode = common.ADS_MODE,
    assignments: Mapping[str, model.LoadAssignment] | None = None,
) -> cluster_pb2.Cluster:
    """`assignments` (by cluster name) is only read in static mode, to inline EDS endpoints."""
    out = cluster_pb2.Cluster(name=c.name)
    _set_discovery(out, c, mode=mode, assignments=assignments or {})
    _set_lb(out, c)
    _set_tcp(out, c.tcp)
    if c.http is not None:
        out.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(
            common.pack(http_protocol_options(c.http))
        )
    if c.circuit_breakers is not None:
        out.circuit_breakers.CopyFrom(_circuit_breakers(c.circuit_breakers))
    if c.outlier is not None:
        _set_outlier(out, c.outlier)
    if c.locality_weighted:  # Envoy reads the load assignment's locality weights only with it
        out.common_lb_config.locality_weighted_lb_config.SetInParent()
    if c.tls is not None:
        socket = tls.transport_socket(tls.upstream(c.tls, mode))
        if c.auto_mtls:
            out.transport_socket_matches.extend(tls.auto_mtls_matches(socket))
        else:
            out.transport_socket.CopyFrom(socket)
    meta = metadata.of(c.sources)
    if meta is not None:
        out.metadata.CopyFrom(meta)
    return out
