"""Listeners: connection managers over RDS, the HTTP filter order, TCP proxies, SNI chains, downstream TLS."""

from __future__ import annotations

import dataclasses

import emit_factories as f
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from compiler import model as m
from compiler.emit import common, listener, route
from compiler.emit.filters import http_filters

HCM = hcm_pb2.HttpConnectionManager


def _listeners(cfg: m.ProxyConfig) -> dict[str, listener_pb2.Listener]:
    return {li.name: listener.of(li) for li in cfg.listeners}


def _hcm(li: listener_pb2.Listener, chain: int = 0) -> hcm_pb2.HttpConnectionManager:
    flt = li.filter_chains[chain].filters[0]
    assert flt.name == "envoy.filters.network.http_connection_manager"
    return HCM.FromString(flt.typed_config.value)


def _downstream(chain: object) -> tls_pb2.DownstreamTlsContext:
    return tls_pb2.DownstreamTlsContext.FromString(chain.transport_socket.typed_config.value)  # type: ignore[attr-defined]


def test_http_listener_uses_rds_over_ads_and_only_the_router() -> None:
    li = _listeners(f.basic())["0.0.0.0_9080"]
    sock = li.address.socket_address
    assert (sock.address, sock.port_value) == ("0.0.0.0", 9080)
    hcm = _hcm(li)
    assert hcm.rds.route_config_name == "9080" and hcm.rds.config_source.HasField("ads")
    assert hcm.codec_type == HCM.AUTO and hcm.stat_prefix == "outbound_0.0.0.0_9080"
    assert [x.name for x in hcm.http_filters] == ["envoy.filters.http.router"]
    assert not li.listener_filters and not li.filter_chains[0].HasField("filter_chain_match")


@pytest.mark.parametrize(
    ("faults", "cors", "expected"),
    [
        (False, False, ["router"]),
        (True, False, ["fault", "router"]),
        (False, True, ["cors", "router"]),
        (True, True, ["cors", "fault", "router"]),
    ],
)
def test_http_filter_order(faults: bool, cors: bool, expected: list[str]) -> None:
    chain = m.HttpFilterChain("s", "r", faults=faults, cors=cors)
    assert [x.name.removeprefix("envoy.filters.http.") for x in http_filters(chain)] == expected


def test_fault_and_cors_filters_installed_when_routes_use_them() -> None:
    hcm = _hcm(_listeners(f.fault_and_cors())["0.0.0.0_9080"])
    assert [x.name for x in hcm.http_filters] == [
        "envoy.filters.http.cors",
        "envoy.filters.http.fault",
        "envoy.filters.http.router",
    ]


def test_gateway_sni_chains_tls_inspector_and_default_chain() -> None:
    ls = _listeners(f.gateway())
    li = ls["0.0.0.0_8443"]
    assert [x.name for x in li.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    https = li.filter_chains[0]
    assert list(https.filter_chain_match.server_names) == ["bookinfo.example", "*.bookinfo.example"]
    assert https.filter_chain_match.transport_protocol == "tls"
    assert https.metadata.filter_metadata["meshward"]["name"] == "reviews"
    passthrough = li.filter_chains[3]
    assert passthrough.filter_chain_match.destination_port.value == 443
    tcp = tcp_proxy_pb2.TcpProxy.FromString(passthrough.filters[0].typed_config.value)
    assert [(c.name, c.weight) for c in tcp.weighted_clusters.clusters] == [(f.V1, 80), (f.V2, 20)]
    default = tcp_proxy_pb2.TcpProxy.FromString(li.default_filter_chain.filters[0].typed_config.value)
    assert default.cluster == f.CLUSTER and default.stat_prefix == "tcp.443.default"
    plain = ls["0.0.0.0_8080"]
    assert not plain.listener_filters and _hcm(plain).codec_type == HCM.HTTP2


def test_downstream_tls_modes() -> None:
    chains = _listeners(f.gateway())["0.0.0.0_8443"].filter_chains
    simple = _downstream(chains[0])
    ctx = simple.common_tls_context
    assert ctx.tls_certificate_sds_secret_configs[0].name == "gw-cert"
    assert list(ctx.alpn_protocols) == ["h2", "http/1.1"]
    assert ctx.tls_params.tls_minimum_protocol_version == common_pb2.TlsParameters.TLSv1_2
    assert ctx.tls_params.tls_maximum_protocol_version == common_pb2.TlsParameters.TLSv1_3
    assert ctx.WhichOneof("validation_context_type") is None and not simple.require_client_certificate.value
    mutual = _downstream(chains[1])
    assert mutual.require_client_certificate.value
    combined = mutual.common_tls_context.combined_validation_context
    assert combined.validation_context_sds_secret_config.name == "gw-cert-cacert"
    assert (
        combined.default_validation_context.match_typed_subject_alt_names[0].matcher.exact == "client.example"
    )
    optional = _downstream(chains[2])
    assert optional.HasField("require_client_certificate") and not optional.require_client_certificate.value
    assert optional.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name


def test_mutual_without_ca_is_an_emit_error() -> None:
    chain = m.FilterChain(
        "x", m.TcpFilterChain("x", (m.WeightedCluster("c", 1),)), tls=m.DownstreamTls("MUTUAL", "cert")
    )
    li = m.Listener("l", "0.0.0.0", 1, m.TrafficDirection.OUTBOUND, (chain,))
    with pytest.raises(common.EmitError, match="CA secret"):
        listener.of(li)


def test_inbound_listener_raw_buffer_and_destination_port() -> None:
    li = _listeners(f.inbound())["virtualInbound"]
    assert li.traffic_direction == base_pb2.INBOUND
    tcp = li.filter_chains[1].filter_chain_match
    assert tcp.transport_protocol == "raw_buffer" and tcp.destination_port.value == 9090
    assert [x.name for x in li.listener_filters] == ["envoy.filters.listener.tls_inspector"]


def test_static_mode_puts_routes_inline() -> None:
    cfg = f.basic()
    routes = {r.name: route.of(r) for r in cfg.route_configs}
    li = listener.of(cfg.listeners[0], mode=common.STATIC_MODE, inline_routes=routes)
    hcm = _hcm(li)
    assert not hcm.HasField("rds") and hcm.route_config.name == "9080"
    assert hcm.route_config.virtual_hosts[0].routes[0].route.cluster == f.CLUSTER


def test_virtual_listener_does_not_bind() -> None:
    li = dataclasses.replace(f.inbound().listeners[0], bind_to_port=False)
    out = listener.of(li)
    assert out.HasField("bind_to_port") and not out.bind_to_port.value
    assert not listener.of(f.inbound().listeners[0]).HasField("bind_to_port")
