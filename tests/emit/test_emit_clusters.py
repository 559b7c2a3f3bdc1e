"""Clusters and endpoints: discovery types, load balancing, pools, outlier detection, protocols, TLS."""

from __future__ import annotations

import emit_factories as f
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2, health_check_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from compiler import model as m
from compiler.emit import cluster, common, endpoint

C = cluster_pb2.Cluster


def _clusters(cfg: m.ProxyConfig, mode: common.Mode = common.ADS_MODE) -> dict[str, cluster_pb2.Cluster]:
    las = {la.cluster_name: la for la in cfg.load_assignments}
    return {c.name: cluster.of(c, mode=mode, assignments=las) for c in cfg.clusters}


def _upstream_tls(c: cluster_pb2.Cluster) -> tls_pb2.UpstreamTlsContext:
    assert c.transport_socket.name == "envoy.transport_sockets.tls"
    return tls_pb2.UpstreamTlsContext.FromString(c.transport_socket.typed_config.value)


def test_eds_cluster_over_ads_with_http1_options() -> None:
    c = _clusters(f.basic())[f.CLUSTER]
    assert c.type == C.EDS and c.lb_policy == C.ROUND_ROBIN
    assert c.eds_cluster_config.eds_config.HasField("ads")
    assert c.eds_cluster_config.eds_config.resource_api_version == 2  # V3
    assert c.connect_timeout.seconds == 10
    opts = http_protocol_options_pb2.HttpProtocolOptions.FromString(
        c.typed_extension_protocol_options[cluster.HTTP_PROTOCOL_OPTIONS].value
    )
    assert opts.explicit_http_config.HasField("http_protocol_options")


def test_static_cluster_groups_endpoints_by_locality() -> None:
    c = _clusters(f.cluster_kinds())["outbound|80||static"]
    assert c.type == C.STATIC
    groups = c.load_assignment.endpoints
    assert [(g.locality.region, g.locality.zone, g.locality.sub_zone) for g in groups] == [
        ("", "", ""),
        ("us-east1", "a", ""),
        ("us-east1", "b", "rack1"),
    ]
    assert groups[0].lb_endpoints[0].health_status == health_check_pb2.UNHEALTHY
    rack = groups[2].lb_endpoints[0]
    assert rack.load_balancing_weight.value == 2 and rack.health_status == health_check_pb2.HEALTHY
    assert rack.endpoint.address.socket_address.address == "10.0.2.1"
    assert c.load_assignment.cluster_name == "outbound|80||static"


def test_dns_and_original_dst_clusters() -> None:
    cs = _clusters(f.cluster_kinds())
    strict = cs["outbound|443||strict"]
    assert strict.type == C.STRICT_DNS and strict.dns_lookup_family == C.V4_PREFERRED
    sock = strict.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (sock.address, sock.port_value) == ("localhost", 443)
    assert cs["outbound|443||logical"].type == C.LOGICAL_DNS
    odst = cs["passthrough"]
    assert odst.type == C.ORIGINAL_DST and odst.lb_policy == C.CLUSTER_PROVIDED
    assert not odst.HasField("load_assignment") and odst.connect_timeout.ToMilliseconds() == 2500


def test_lb_policies_pools_and_outlier_detection() -> None:
    cs = _clusters(f.cluster_kinds())
    ring = cs["outbound|1||ring"]
    assert ring.lb_policy == C.RING_HASH and ring.ring_hash_lb_config.minimum_ring_size.value == 2048
    assert cs["outbound|2||maglev"].lb_policy == C.MAGLEV
    least = cs["outbound|3||least"]
    assert least.lb_policy == C.LEAST_REQUEST
    t = least.circuit_breakers.thresholds[0]
    assert (
        t.max_connections.value,
        t.max_pending_requests.value,
        t.max_requests.value,
        t.max_retries.value,
    ) == (100, 10, 1000, 3)
    od = least.outlier_detection
    assert od.consecutive_5xx.value == 5 and od.enforcing_consecutive_5xx.value == 100
    assert od.HasField("consecutive_gateway_failure") and od.enforcing_consecutive_gateway_failure.value == 0
    assert (
        od.interval.seconds == 10
        and od.base_ejection_time.seconds == 30
        and od.max_ejection_percent.value == 50
    )
    assert od.HasField("enforcing_success_rate") and od.enforcing_success_rate.value == 0
    assert least.common_lb_config.healthy_panic_threshold.value == 20


def test_http2_keepalive_and_connection_options() -> None:
    c = _clusters(f.cluster_kinds())["outbound|4||h2"]
    assert c.lb_policy == C.RANDOM
    ka = c.upstream_connection_options.tcp_keepalive
    assert (ka.keepalive_time.value, ka.keepalive_interval.value, ka.keepalive_probes.value) == (300, 30, 3)
    opts = http_protocol_options_pb2.HttpProtocolOptions.FromString(
        c.typed_extension_protocol_options[cluster.HTTP_PROTOCOL_OPTIONS].value
    )
    assert opts.explicit_http_config.HasField("http2_protocol_options")
    assert opts.common_http_protocol_options.idle_timeout.seconds == 60
    assert opts.common_http_protocol_options.max_requests_per_connection.value == 100
    assert not _clusters(f.cluster_kinds())["outbound|5||tcp"].typed_extension_protocol_options


def test_cluster_metadata_names_every_source() -> None:
    cs = _clusters(f.cluster_kinds())
    meta = cs["outbound|1||ring"].metadata.filter_metadata["meshward"]
    assert meta["kind"] == "DestinationRule" and meta["file"] == "mesh/reviews-dr.yaml" and meta["line"] == 3
    assert [s["kind"] for s in meta["sources"]] == ["DestinationRule", "VirtualService"]
    assert "sources" not in cs["outbound|3||least"].metadata.filter_metadata["meshward"].fields
    assert not cs["outbound|2||maglev"].HasField("metadata")


def test_istio_mutual_takes_certificates_from_sds() -> None:
    ctx = _upstream_tls(_clusters(f.upstream_tls())["outbound|1||mtls"])
    assert ctx.sni == "outbound_.1_._.mtls"
    common_ctx = ctx.common_tls_context
    assert list(common_ctx.alpn_protocols) == ["istio-peer-exchange", "istio"]
    assert common_ctx.tls_certificate_sds_secret_configs[0].name == "default"
    agent = common_ctx.tls_certificate_sds_secret_configs[0].sds_config
    assert agent.api_config_source.grpc_services[0].envoy_grpc.cluster_name == "sds-grpc"
    assert agent.api_config_source.api_type == config_source_pb2.ApiConfigSource.GRPC
    assert agent.resource_api_version == config_source_pb2.ApiVersion.V3
    combined = common_ctx.combined_validation_context
    assert combined.validation_context_sds_secret_config.name == "ROOTCA"
    assert combined.validation_context_sds_secret_config.sds_config == agent
    san = combined.default_validation_context.match_typed_subject_alt_names[0]
    assert san.san_type == common_pb2.SubjectAltNameMatcher.URI
    assert san.matcher.exact == "spiffe://cluster.local/ns/shop/sa/reviews"


def test_mutual_with_files_simple_with_system_roots_and_insecure() -> None:
    cs = _clusters(f.upstream_tls())
    files = _upstream_tls(cs["outbound|2||files"]).common_tls_context
    assert files.tls_certificates[0].certificate_chain.filename == "/etc/certs/cert.pem"
    assert files.tls_certificates[0].private_key.filename == "/etc/certs/key.pem"
    assert files.validation_context.trusted_ca.filename == "/etc/certs/cert.pem"
    assert (
        files.validation_context.match_typed_subject_alt_names[0].san_type
        == common_pb2.SubjectAltNameMatcher.DNS
    )
    simple = _upstream_tls(cs["outbound|3||simple"]).common_tls_context
    assert (
        simple.validation_context.HasField("system_root_certs")
        and not simple.tls_certificate_sds_secret_configs
    )
    insecure = _upstream_tls(cs["outbound|4||insecure"]).common_tls_context
    assert insecure.WhichOneof("validation_context_type") is None


def test_static_mode_inlines_eds_endpoints_and_keeps_the_agents_secrets() -> None:
    cs = _clusters(f.upstream_tls(), mode=common.STATIC_MODE)
    c = cs["outbound|1||mtls"]
    assert c.type == C.STATIC and not c.HasField("eds_cluster_config")
    assert (
        c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address == "10.0.1.1"
    )
    sds = _upstream_tls(c).common_tls_context.tls_certificate_sds_secret_configs[0]
    assert sds.name == "default" and sds.sds_config == common.agent_source(), "no bootstrap holds the workload's key"


def test_load_assignment_resource() -> None:
    la = endpoint.of(f.basic().load_assignments[0])
    assert la.cluster_name == f.CLUSTER
    assert la.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value == 9080
    assert not la.endpoints[0].HasField("locality")
