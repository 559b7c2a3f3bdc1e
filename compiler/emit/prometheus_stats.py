"""What makes a proxy's Envoy metrics answer Istio's dashboard questions, without Istio's `istio.stats` extension
(an Istio-only Envoy build; upstream Envoy has no `istio_requests_total`).

Two bootstrap parts:
- `stats_config`: tag extraction (`stats_config.stats_tags`, envoy/config/metrics/v3/stats.proto TagSpecifier)
  that turns the names of Envoy's upstream cluster stats into Istio's labels. Pilot names a cluster
  `outbound|PORT|SUBSET|HOST` (pilot/pkg/model/service.go BuildSubsetKey), so
  `cluster.outbound|9080|v1|reviews.shop.svc.cluster.local.upstream_rq_200` becomes
  `envoy_cluster_upstream_rq{destination_service="reviews.shop.svc.cluster.local", destination_port="9080",
  destination_subset="v1", destination_service_namespace="shop", response_code="200", ...}`. Each regex is matched
  against the whole stat name; its first group is cut from the name and its second is the tag's value
  (TagSpecifier.regex), so every cluster regex cuts the same span, the cluster name. The proxy's own labels
  (`reporter`, `source_workload`, `source_workload_namespace`) are fixed values on every stat. The proxy's
  Telemetry metrics settings (`model.Metrics`) take labels out and exclude the stats of disabled metrics
  (`stats_matcher`, matched against the full stat name, before tag extraction).
- `listener` + `admin_cluster`: Istio's `prometheus_stats` endpoint on port 15090 (tools/packaging/common/
  envoy_bootstrap.json: a static listener whose only route sends `/stats/prometheus` to a static cluster of the
  admin address), so Prometheus scrapes the proxy without reaching the admin interface itself.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.metrics.v3 import stats_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import duration_pb2

from compiler import model
from compiler.emit import common

PORT = 15090  # Istio's proxies: pod annotation prometheus.io/port
PATH = "/stats/prometheus"
CLUSTER = "prometheus_stats"  # Istio's name for the admin address as a cluster

# What follows the cluster name in the name of one of Envoy's cluster stats (source/common/upstream: cluster stats,
# circuit_breakers.<priority>.*, outlier_detection.*, ssl.*, the router's internal./external./canary./zone.*
# request stats). A host is a DNS name, so it has no `_`, and a stat's last token has no `.`: the shortest host
# that leaves one of these is the host. A host whose last label is one of these scopes (`db.internal`) is cut
# one label short (README, Limitations).
_STAT_SUFFIX = (
    r"(?:(?:circuit_breakers\.[a-z]+|client_ssl_socket_factory|default|external|internal|canary|health_check"
    r"|http[123]|outlier_detection|ssl|zone\.[^.]+\.[^.]+)\.)?[A-Za-z0-9_]+$"
    r"|ssl\.(?:ciphers|curves|sigalgs|versions)\..+$"
)


def _outbound(fields: str) -> str:
    """A regex over `cluster.outbound|PORT|SUBSET|HOST.<stat>` whose first group is the cluster name and its
    dot, and whose second group is the one capture in `fields`."""
    return rf"^cluster\.(outbound\|{fields}\.)(?:{_STAT_SUFFIX})"


# tag name -> regex, in Istio's label names (istio.io/latest/docs/reference/config/metrics/)
_REGEX_TAGS = {
    "destination_port": _outbound(r"([0-9]+)\|[^|]*\|[^|]+?"),
    "destination_subset": _outbound(r"[0-9]+\|([^|]*)\|[^|]+?"),
    "destination_service": _outbound(r"[0-9]+\|[^|]*\|([^|]+?)"),
    # only a Kubernetes service's host (NAME.NAMESPACE.svc.DOMAIN) names a namespace
    "destination_service_namespace": _outbound(r"[0-9]+\|[^|]*\|[^.|]+\.([^.|]+)\.svc\.[^|]+?"),
    # the router's per-code counters (upstream_rq_503, upstream_rq_5xx), as Envoy's own envoy.response_code[_class]
    "response_code": r"_rq(_([0-9]{3}))$",
    "response_code_class": r"_rq(_([0-9]xx))$",
}


# The scopes the router adds before a cluster's request stats (source/common/router: internal./external./canary./
# zone.<from>.<to>.), so that a disabled metric loses them too.
_RQ_SCOPE = r"(?:(?:internal|external|canary)\.|zone\.[^.]+\.[^.]+\.)?"
# Istio metric -> the regex of the full names of the outbound cluster stats that carry it (README, Metrics). The
# metrics missing here have no upstream stat: REQUEST_SIZE and RESPONSE_SIZE would need the clusters'
# request_response_sizes tracking, the gRPC message counts the grpc_stats filter; disabling them changes nothing.
_METRIC_STATS = {
    "REQUEST_COUNT": rf"{_RQ_SCOPE}upstream_rq_(?:total|completed|[0-9]{{3}}|[0-9]xx)",
    "REQUEST_DURATION": rf"{_RQ_SCOPE}upstream_rq_time",
    "TCP_OPENED_CONNECTIONS": "upstream_cx_total",
    "TCP_CLOSED_CONNECTIONS": "upstream_cx_destroy",
    "TCP_SENT_BYTES": "upstream_cx_tx_bytes_total",
    "TCP_RECEIVED_BYTES": "upstream_cx_rx_bytes_total",
}


# meshward's label -> Istio's name for it, which a Telemetry's tagOverrides may use instead
_ISTIO_LABEL = {"destination_subset": "destination_version"}


def _removed(name: str, metrics: model.Metrics) -> bool:
    return name in metrics.removed_tags or _ISTIO_LABEL.get(name) in metrics.removed_tags


def stats_config(*, workload: str, namespace: str, metrics: model.Metrics) -> stats_pb2.StatsConfig:
    """Istio's labels on this proxy's stats, without those the proxy's Telemetry removes, and no stats for the
    metrics it disables (`stats_matcher`: Envoy does not create an excluded stat). Every proxy reports the requests
    it sends (`reporter="source"`, as Istio's client sidecars and gateways do); Envoy's default tags stay on."""
    tags = [stats_pb2.TagSpecifier(tag_name=name, regex=regex) for name, regex in _REGEX_TAGS.items()
            if not _removed(name, metrics)]
    fixed = {"reporter": "source", "source_workload": workload, "source_workload_namespace": namespace}
    tags += [stats_pb2.TagSpecifier(tag_name=name, fixed_value=value) for name, value in fixed.items()
             if not _removed(name, metrics)]
    out = stats_pb2.StatsConfig(stats_tags=tags)
    excluded = [_METRIC_STATS[name] for name in _METRIC_STATS if name in metrics.disabled]
    if excluded:
        out.stats_matcher.exclusion_list.patterns.append(string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(
            regex=rf"^cluster\.outbound\|.*\.(?:{'|'.join(excluded)})$")))
    return out


def flush_interval(metrics: model.Metrics) -> duration_pb2.Duration | None:
    """Telemetry reportingInterval as Envoy's stats flush interval: how often histograms (REQUEST_DURATION) are
    merged into what /stats/prometheus shows; counters are read live. None: Envoy's default, 5 s."""
    return common.duration(metrics.flush_interval_ms) if metrics.flush_interval_ms else None


def _address(host: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))


def admin_cluster(admin_address: str, admin_port: int) -> cluster_pb2.Cluster:
    endpoint = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(address=_address(admin_address, admin_port)))
    return cluster_pb2.Cluster(
        name=CLUSTER, type=cluster_pb2.Cluster.STATIC, connect_timeout=common.duration(250),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=CLUSTER, endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint])]))


def listener(address: str, port: int) -> listener_pb2.Listener:
    """Only `/stats/prometheus` is reachable: the rest of the admin interface (config dumps, /quitquitquit)
    stays on the admin address."""
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix=PATH),
        route=route_components_pb2.RouteAction(cluster=CLUSTER))
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix="stats",
        route_config=route_pb2.RouteConfiguration(virtual_hosts=[
            route_components_pb2.VirtualHost(name="backend", domains=["*"], routes=[route])]),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router",
                                         typed_config=common.pack(router_pb2.Router()))])
    chain = listener_components_pb2.FilterChain(filters=[listener_components_pb2.Filter(
        name="envoy.filters.network.http_connection_manager", typed_config=common.pack(manager))])
    return listener_pb2.Listener(
        name=f"{address}_{port}", address=_address(address, port), filter_chains=[chain],
        ignore_global_conn_limit=True, bypass_overload_manager=True)
