"""DestinationRule traffic policies -> cluster settings, with Istio's merge rules.

Istio (MergeTrafficPolicy): a port-level setting replaces all four of load balancer, connection pool, outlier
detection and TLS for its port (unset ones fall back to defaults, not to the top level); a subset's policy then
overrides the result field by field, and the subset's own port-level settings replace the four again.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from compiler import model, naming, units
from compiler.api.common import ConnectionPoolSettings, HTTPSettings
from compiler.api.destination_rule import (
    ClientTLSSettings,
    LoadBalancerSettings,
    LocalityLoadBalancerSetting,
    OutlierDetection,
    TrafficPolicy,
)
from compiler.api.mesh_config import MeshConfig

UINT32_MAX = 4_294_967_295

_FIELDS = ("load_balancer", "connection_pool", "outlier_detection", "tls")


class Effective(NamedTuple):
    """A NamedTuple, not a frozen dataclass: built twice per cluster, and a frozen dataclass's __init__ costs 10x."""

    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


def _for_port(policy: TrafficPolicy, port: int) -> Effective:
    eff = Effective(**{f: getattr(policy, f) for f in _FIELDS})
    for pl in policy.port_level_settings or ():
        if pl.port is not None and pl.port.number == port:
            return Effective(**{f: getattr(pl, f) for f in _FIELDS})
    return eff


def effective(policy: TrafficPolicy | None, subset_policy: TrafficPolicy | None, port: int) -> Effective:
    eff = _for_port(policy, port) if policy is not None else Effective()
    if subset_policy is None:
        return eff
    sub = _for_port(subset_policy, port)
    overridden = any(pl.port is not None and pl.port.number == port for pl in subset_policy.port_level_settings or ())
    if overridden:
        return sub
    return Effective(**{f: getattr(sub, f) if getattr(sub, f) is not None else getattr(eff, f) for f in _FIELDS})


@dataclasses.dataclass(frozen=True, slots=True)
class MeshDefaults:
    """What MeshConfig gives a cluster whose DestinationRule leaves it unset: the connect timeout (Pilot's
    applyDefaultConnectionPool: MeshConfig connectTimeout, Istio's default 10s), the upgrade of HTTP/1.1
    upstreams to HTTP/2 (shouldH2Upgrade: h2UpgradePolicy UPGRADE, outbound clusters only) and the locality load
    balancing setting."""

    connect_timeout_ms: int
    h2_upgrade: bool
    locality: LocalityLoadBalancerSetting | None  # localityLbSetting (compiler.translate.locality)


def mesh_defaults(config: MeshConfig) -> MeshDefaults:
    timeout = units.duration_ms(config.connect_timeout) if config.connect_timeout else model.CONNECT_TIMEOUT_MS
    return MeshDefaults(timeout, config.h2_upgrade_policy == "UPGRADE", config.locality_lb_setting)


# -- load balancing ------------------------------------------------------------------------------------------------

_SIMPLE = {"ROUND_ROBIN": model.LbPolicy.ROUND_ROBIN, "LEAST_CONN": model.LbPolicy.LEAST_REQUEST,
           "LEAST_REQUEST": model.LbPolicy.LEAST_REQUEST, "RANDOM": model.LbPolicy.RANDOM}
DEFAULT_LB = model.LbPolicy.LEAST_REQUEST  # Istio's default since 1.14


DEFAULT_RING_SIZE = 1024  # Istio writes it explicitly when the rule gives none


def lb_policy(lb: LoadBalancerSettings | None) -> tuple[model.LbPolicy, int | None]:
    """The policy and its size: the ring hash's minimum ring size, or the Maglev table size (None: Envoy's)."""
    if lb is None:
        return DEFAULT_LB, None
    ch = lb.consistent_hash
    if ch is not None:
        if ch.maglev is not None:
            return model.LbPolicy.MAGLEV, ch.maglev.table_size or None
        ring = ch.ring_hash.minimum_ring_size if ch.ring_hash is not None else ch.minimum_ring_size
        return model.LbPolicy.RING_HASH, ring or DEFAULT_RING_SIZE
    return _SIMPLE.get(lb.simple or "", DEFAULT_LB), None


def hash_policy(lb: LoadBalancerSettings | None) -> model.HashPolicy | None:
    ch = lb.consistent_hash if lb is not None else None
    if ch is None:
        return None
    if ch.http_header_name:
        return model.HashPolicy(header=ch.http_header_name.lower())
    if ch.http_cookie is not None:
        ttl = units.duration_ms(ch.http_cookie.ttl) if ch.http_cookie.ttl else None
        return model.HashPolicy(cookie=ch.http_cookie.name, cookie_ttl_ms=ttl, cookie_path=ch.http_cookie.path or "")
    if ch.use_source_ip:
        return model.HashPolicy(source_ip=True)
    if ch.http_query_parameter_name:
        return model.HashPolicy(query_parameter=ch.http_query_parameter_name)
    return None


# -- connection pool -----------------------------------------------------------------------------------------------


def circuit_breakers(pool: ConnectionPoolSettings | None) -> model.CircuitBreakers:
    """Istio raises Envoy's low defaults (1024 connections, 3 retries) to the maximum unless the rule says otherwise."""
    tcp = pool.tcp if pool is not None else None
    http = pool.http if pool is not None else None

    def pick(value: int | None) -> int:
        return value if value else UINT32_MAX

    return model.CircuitBreakers(
        max_connections=pick(tcp.max_connections if tcp else None),
        max_pending_requests=pick(http.http1_max_pending_requests if http else None),
        max_requests=pick(http.http2_max_requests if http else None),
        max_retries=pick(http.max_retries if http else None),
    )


def tcp_options(pool: ConnectionPoolSettings | None, defaults: MeshDefaults) -> model.TcpOptions:
    tcp = pool.tcp if pool is not None else None
    if tcp is None:
        return model.TcpOptions(defaults.connect_timeout_ms)
    ka = tcp.tcp_keepalive
    return model.TcpOptions(
        connect_timeout_ms=units.duration_ms(tcp.connect_timeout) if tcp.connect_timeout else defaults.connect_timeout_ms,
        keepalive_time_s=_seconds(ka.time) if ka is not None else None,
        keepalive_interval_s=_seconds(ka.interval) if ka is not None else None,
        keepalive_probes=ka.probes if ka is not None else None,
    )


def http_options(pool: ConnectionPoolSettings | None, protocol: model.Protocol,
                 defaults: MeshDefaults) -> model.HttpOptions | None:
    """As Pilot's applyConnectionPool (pilot/pkg/networking/core/cluster_traffic_policy.go): the tcp idleTimeout
    applies when the http one is unset; concurrent streams and PING keepalive only to HTTP/2 upstreams."""
    if not protocol.is_http:
        return None
    http = pool.http if pool is not None else None
    tcp = pool.tcp if pool is not None else None
    http2 = protocol.is_http2 or _upgrades(http, defaults)
    idle = (http.idle_timeout if http is not None else None) or (tcp.idle_timeout if tcp is not None else None)
    ka = http.http2_keep_alive if http is not None and http2 else None
    ka = ka if ka is not None and ka.timeout else None  # Envoy's KeepaliveSettings requires the timeout
    return model.HttpOptions(
        http2=http2,
        idle_timeout_ms=_ms(idle),
        max_requests_per_connection=(http.max_requests_per_connection or None) if http is not None else None,
        max_connection_duration_ms=_ms(tcp.max_connection_duration) if tcp is not None else None,
        max_concurrent_streams=(http.max_concurrent_streams or None) if http is not None and http2 else None,
        keepalive_interval_ms=_ms(ka.interval) if ka is not None else None,
        keepalive_timeout_ms=_ms(ka.timeout) if ka is not None else None,
        use_client_protocol=bool(http is not None and http.use_client_protocol),
    )


def _upgrades(http: HTTPSettings | None, defaults: MeshDefaults) -> bool:
    """Pilot's shouldH2Upgrade (cluster_traffic_policy.go): never with useClientProtocol; else the rule's
    h2UpgradePolicy when it says UPGRADE or DO_NOT_UPGRADE; else (unset or DEFAULT) MeshConfig's."""
    if http is not None and http.use_client_protocol:
        return False
    if http is not None and http.h2_upgrade_policy in ("UPGRADE", "DO_NOT_UPGRADE"):
        return http.h2_upgrade_policy == "UPGRADE"
    return defaults.h2_upgrade


def _ms(duration: str | None) -> int | None:
    return units.duration_ms(duration) if duration else None


def _seconds(text: str | None) -> int | None:
    return max(1, units.duration_ms(text) // 1000) if text else None


# -- outlier detection ---------------------------------------------------------------------------------------------


def outlier(od: OutlierDetection | None) -> model.OutlierDetection | None:
    if od is None:
        return None
    return model.OutlierDetection(
        consecutive_5xx=od.consecutive_5xx_errors,
        consecutive_gateway_errors=od.consecutive_gateway_errors if od.consecutive_gateway_errors is not None
        else od.consecutive_errors,
        interval_ms=units.duration_ms(od.interval) if od.interval else None,
        base_ejection_time_ms=units.duration_ms(od.base_ejection_time) if od.base_ejection_time else None,
        max_ejection_percent=od.max_ejection_percent,
        min_health_percent=od.min_health_percent,
    )


# -- upstream TLS --------------------------------------------------------------------------------------------------


def istio_mutual(*, host: str, port: int, subset: str, protocol: model.Protocol, sni: str = "",
                 sans: tuple[str, ...] = ()) -> model.UpstreamTls:
    """The mesh identity toward a sidecar: SNI `outbound_.PORT_.SUBSET_.HOST` unless given, the agent's secrets."""
    return model.UpstreamTls(model.TlsMode.ISTIO_MUTUAL, sni=sni or naming.outbound_sni(port, subset, host),
                             subject_alt_names=sans, credential_secret=naming.ISTIO_DEFAULT_SECRET,
                             ca_secret=naming.ISTIO_ROOT_SECRET, alpn=("h2",) if protocol.is_http2 else (),
                             secrets_from=model.SecretSource.AGENT)


def upstream_tls(tls: ClientTLSSettings | None, *, host: str, port: int, subset: str,
                 protocol: model.Protocol, identities: tuple[str, ...] = ()) -> model.UpstreamTls | None:
    """`identities`: the SPIFFE ids of the destination's service accounts, which ISTIO_MUTUAL verifies when the
    rule names no subjectAltNames (Pilot's buildUpstreamTLSSettings, cluster_tls.go)."""
    if tls is None or tls.mode in (None, "DISABLE"):
        return None
    alpn = ("h2",) if protocol.is_http2 else ()
    sans = tuple(tls.subject_alt_names or ())
    if tls.mode == "ISTIO_MUTUAL":
        return istio_mutual(host=host, port=port, subset=subset, protocol=protocol, sni=tls.sni or "",
                            sans=tuple(tls.subject_alt_names) if tls.subject_alt_names is not None else identities)
    credential = tls.credential_name or ""
    return model.UpstreamTls(
        model.TlsMode(tls.mode), sni=tls.sni or ("" if host.startswith("*") else host), subject_alt_names=sans,
        ca_certificates=tls.ca_certificates or "", client_certificate=tls.client_certificate or "",
        private_key=tls.private_key or "", credential_secret=credential if tls.mode == "MUTUAL" else "",
        ca_secret=naming.credential_ca_secret(credential) if credential else "", alpn=alpn,
        insecure_skip_verify=bool(tls.insecure_skip_verify),
    )
