"""DestinationRule (networking.istio.io): policies applied to traffic for a host after routing."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from compiler.api.base import ApiModel, Duration, Int32, UInt32
from compiler.api.common import ConnectionPoolSettings, PortSelector, TypeWorkloadSelector

WorkloadSelector = TypeWorkloadSelector  # DestinationRule uses istio.type.v1beta1.WorkloadSelector (matchLabels)


class Attribute(ApiModel):
    """ConsistentHashLB.HTTPCookie.Attribute."""

    name: str
    value: str | None = None


class HTTPCookie(ApiModel):
    name: str
    path: str | None = None
    ttl: Duration | None = None
    attributes: list[Attribute] | None = None


class RingHash(ApiModel):
    minimum_ring_size: Annotated[int, Field(ge=0)] | None = None


class MagLev(ApiModel):
    table_size: Annotated[int, Field(ge=0)] | None = None


class ConsistentHashLB(ApiModel):
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: MagLev | None = None
    minimum_ring_size: Annotated[int, Field(ge=0)] | None = None  # deprecated: ringHash


class BackendUtilization(ApiModel):
    error_utilization_penalty_percent: UInt32 | None = None
    metric_names_for_computing_utilization: list[str] | None = None
    weight_expiration_period: Duration | None = None
    weight_stabilization_period: Duration | None = None
    weight_update_period: Duration | None = None


class Distribute(ApiModel):
    from_: str | None = Field(None, alias="from")
    to: dict[str, UInt32] | None = None


class Failover(ApiModel):
    from_: str | None = Field(None, alias="from")
    to: str | None = None


class LocalityLoadBalancerSetting(ApiModel):
    distribute: list[Distribute] | None = None
    failover: list[Failover] | None = None
    failover_priority: list[str] | None = None
    enabled: bool | None = None


class ZoneAwareLoadBalancerSetting(ApiModel):
    enabled: bool | None = None
    failover: list[Failover] | None = None
    failover_priority: list[str] | None = None
    min_cluster_size: Annotated[int, Field(ge=1, le=4_294_967_295)] | None = None


class WarmupConfiguration(ApiModel):
    duration: Duration
    minimum_percent: Annotated[float, Field(ge=0, le=100)] | None = None
    aggression: Annotated[float, Field(ge=0)] | None = None


class LoadBalancerSettings(ApiModel):
    """oneof simple / consistentHash / backendUtilization."""

    simple: Literal["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"] | None = None
    consistent_hash: ConsistentHashLB | None = None
    backend_utilization: BackendUtilization | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    zone_aware_lb_setting: ZoneAwareLoadBalancerSetting | None = None
    warmup_duration_secs: Duration | None = None
    warmup: WarmupConfiguration | None = None


class OutlierDetection(ApiModel):
    split_external_local_origin_errors: bool | None = None
    consecutive_local_origin_failures: UInt32 | None = None
    consecutive_gateway_errors: UInt32 | None = None
    consecutive_5xx_errors: UInt32 | None = Field(None, alias="consecutive5xxErrors")
    consecutive_errors: Int32 | None = None  # deprecated
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Int32 | None = None
    min_health_percent: Int32 | None = None
    outlier_detection_http_error_codes: list[Annotated[int, Field(ge=100, le=599)]] | None = None


class ClientTLSSettings(ApiModel):
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: list[str] | None = None
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None


class TunnelSettings(ApiModel):
    protocol: str | None = None
    target_host: str
    target_port: UInt32


class ProxyProtocol(ApiModel):
    version: Literal["V1", "V2"] | None = None


class RetryBudget(ApiModel):
    percent: Annotated[float, Field(ge=0, le=100)] | None = None
    min_retry_concurrency: UInt32 | None = None
    budget_interval: Duration | None = None


class PortTrafficPolicy(ApiModel):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(ApiModel):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: list[PortTrafficPolicy] | None = Field(None, max_length=4096)
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None


class Subset(ApiModel):
    name: str
    labels: dict[str, str] | None = None
    traffic_policy: TrafficPolicy | None = None


class DestinationRule(ApiModel):
    host: str
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] | None = None
    export_to: list[str] | None = None
    workload_selector: TypeWorkloadSelector | None = None
