"""MeshConfig (istio.io/api mesh/v1alpha1): Istio's mesh-wide settings, kept in the `mesh` key of the `istio`
ConfigMap, and that ConfigMap (a Kubernetes kind: fields meshward does not read are ignored).

Only the fields meshward reads are modeled; `compiler.mesh_config` reports every other key as a warning at its line
(Istio's MeshConfig has some eighty fields, most about istiod itself or Istio-only Envoy extensions).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from compiler.api.base import ApiModel, Duration, KubeModel, UInt32
from compiler.api.destination_rule import LocalityLoadBalancerSetting
from compiler.api.telemetry import EnvironmentTag, HeaderTag, LiteralTag

__all__ = ["BUILT_IN_PROVIDERS", "ConfigMap", "MeshConfig"]


class ConfigMap(KubeModel):
    data: dict[str, str] | None = None


class OutboundTrafficPolicy(ApiModel):
    mode: Literal["REGISTRY_ONLY", "ALLOW_ANY"] = "ALLOW_ANY"


class ProxyTracingTag(ApiModel):
    """ProxyConfig.tracing's custom tag: a literal, an environment variable or a request header."""

    literal: LiteralTag | None = None
    environment: EnvironmentTag | None = None
    header: HeaderTag | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ProxyTracingTag:
        if sum(kind is not None for kind in (self.literal, self.environment, self.header)) != 1:
            raise ValueError("a custom tag sets exactly one of literal, environment, header")
        return self


class TracingConfig(ApiModel):
    """ProxyConfig.tracing: what Telemetry tracing falls back to (the tracer itself comes from extensionProviders;
    the bootstrap tracers configured here are not modeled)."""

    sampling: float | None = Field(default=None, ge=0, le=100)
    custom_tags: dict[str, ProxyTracingTag] | None = None
    max_path_tag_length: UInt32 | None = None


class ProxyConfig(ApiModel):
    tracing: TracingConfig | None = None
    proxy_metadata: dict[str, str] | None = None


class FileAccessLogFormat(ApiModel):
    text: str | None = None
    labels: dict[str, str] | None = None


class FileAccessLogProvider(ApiModel):
    path: str = ""
    log_format: FileAccessLogFormat | None = None


class ServiceProvider(ApiModel):
    """A provider that sends to a service of the registry (a tracer, an OpenTelemetry log sink)."""

    service: str = ""
    port: UInt32 = 0


class ZipkinProvider(ServiceProvider):
    """A Zipkin collector: spans as Zipkin v2 JSON over HTTP to `path` (Istio's default /api/v2/spans)."""

    max_tag_length: UInt32 | None = None
    path: str = ""
    enable_64bit_trace_id: bool = Field(False, alias="enable64bitTraceId")


class ProviderHeader(ApiModel):
    """A header a provider's requests carry (its `envName` form, a variable of istiod's environment, is not
    modeled: compiler.mesh_config warns at it)."""

    name: str = Field(min_length=1)
    value: str = ""


class OtlpHttp(ApiModel):
    path: str = ""
    timeout: Duration | None = None
    headers: list[ProviderHeader] | None = None


class OtlpGrpc(ApiModel):
    timeout: Duration | None = None
    initial_metadata: list[ProviderHeader] | None = None


class OpenTelemetryProvider(ServiceProvider):
    """An OpenTelemetry collector: spans over OTLP/gRPC, or OTLP/HTTP when `http` is set."""

    max_tag_length: UInt32 | None = None
    http: OtlpHttp | None = None
    grpc: OtlpGrpc | None = None


class LightstepProvider(ServiceProvider):
    """lightstep: a tracer Istio deprecated for opentelemetry (telemetry.LightstepAnalyzer); modeled so that its
    Telemetry references are reported as such."""

    access_token: str = ""
    max_tag_length: UInt32 | None = None


class OtelAlsProvider(ServiceProvider):
    """envoyOtelAls: access logs as OTLP log records, over gRPC to the service's collector."""

    log_name: str = ""
    log_format: FileAccessLogFormat | None = None  # Istio's EnvoyOpenTelemetryLogProvider.LogFormat: the same two


class PrometheusProvider(ApiModel):
    pass


class ExtAuthzRequestBody(ApiModel):
    max_request_bytes: UInt32 = 0
    allow_partial_message: bool = False
    pack_as_bytes: bool = False


class ExtAuthzGrpcProvider(ServiceProvider):
    """envoyExtAuthzGrpc: the ext_authz filter of a CUSTOM AuthorizationPolicy, calling Envoy's gRPC check API."""

    timeout: Duration | None = None
    fail_open: bool = False
    status_on_error: str = ""
    include_request_body_in_check: ExtAuthzRequestBody | None = None


class ExtAuthzHttpProvider(ExtAuthzGrpcProvider):
    """envoyExtAuthzHttp: as the gRPC one, over plain HTTP (the check request mirrors the request's headers)."""

    path_prefix: str = ""
    include_request_headers_in_check: list[str] | None = None
    headers_to_upstream_on_allow: list[str] | None = None
    headers_to_downstream_on_deny: list[str] | None = None
    headers_to_downstream_on_allow: list[str] | None = None


class ExtensionProvider(ApiModel):
    name: str
    envoy_ext_authz_http: ExtAuthzHttpProvider | None = None
    envoy_ext_authz_grpc: ExtAuthzGrpcProvider | None = None
    envoy_file_access_log: FileAccessLogProvider | None = None
    envoy_otel_als: OtelAlsProvider | None = None
    zipkin: ZipkinProvider | None = None
    opentelemetry: OpenTelemetryProvider | None = None
    lightstep: LightstepProvider | None = None
    prometheus: PrometheusProvider | None = None


BUILT_IN_PROVIDERS = (ExtensionProvider(name="envoy", envoy_file_access_log=FileAccessLogProvider(path="/dev/stdout")),
                      ExtensionProvider(name="prometheus", prometheus=PrometheusProvider()))


class DefaultProviders(ApiModel):
    tracing: list[str] | None = None
    metrics: list[str] | None = None
    access_logging: list[str] | None = None


class MeshConfig(ApiModel):
    """The modeled fields, with Istio's defaults (pkg/config/mesh/mesh.go DefaultMeshConfig)."""

    root_namespace: str = "istio-system"
    trust_domain: str = "cluster.local"
    trust_domain_aliases: list[str] | None = None
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
    default_service_export_to: list[str] | None = None
    default_virtual_service_export_to: list[str] | None = None
    default_destination_rule_export_to: list[str] | None = None
    connect_timeout: Duration | None = None
    access_log_file: str = ""
    access_log_format: str = ""
    access_log_encoding: Literal["TEXT", "JSON"] = "TEXT"
    enable_tracing: bool = True
    default_config: ProxyConfig | None = None
    extension_providers: list[ExtensionProvider] | None = None
    default_providers: DefaultProviders | None = None
    locality_lb_setting: LocalityLoadBalancerSetting | None = None
    h2_upgrade_policy: Literal["DO_NOT_UPGRADE", "UPGRADE"] | None = None

    @property
    def auto_allocates_addresses(self) -> bool:
        """DNS capture with address auto-allocation (proxyMetadata ISTIO_META_DNS_AUTO_ALLOCATE), which
        serviceentry.ProtocolAddressesAnalyzer reads: ServiceEntries then need no addresses."""
        metadata = self.default_config.proxy_metadata if self.default_config is not None else None
        return (metadata or {}).get("ISTIO_META_DNS_AUTO_ALLOCATE", "").lower() == "true"

    def provider(self, name: str) -> ExtensionProvider | None:
        """The extension provider named so, compared case-insensitively as Pilot's fetchProvider does, else one of
        Istio's built-in ones (pkg/config/mesh/mesh.go DefaultMeshConfig: `envoy`, a file access log to
        /dev/stdout in Istio's default format, and `prometheus`, which a mesh's own extensionProviders may
        replace)."""
        wanted = name.lower()
        found = [p for p in (*(self.extension_providers or ()), *BUILT_IN_PROVIDERS) if p.name.lower() == wanted]
        return found[0] if found else None

    @property
    def service_exports(self) -> list[str]:
        """The exportTo of a Service or ServiceEntry that gives none (pilot/pkg/model/push_context.go
        initDefaultExportMaps and serviceExportTo: defaultServiceExportTo, else `*`)."""
        return self.default_service_export_to or ["*"]

    @property
    def virtual_service_exports(self) -> list[str]:
        """The exportTo of a VirtualService that gives none (defaultVirtualServiceExportTo, else `*`; pilot/pkg/
        model/virtualservice_controller.go copyDefaultExportToSet reads `.` as the VirtualService's namespace)."""
        return self.default_virtual_service_export_to or ["*"]

    @property
    def destination_rule_exports(self) -> list[str]:
        """The exportTo of a DestinationRule that gives none. Pilot honours only `.` and `*` here
        (push_context.go initDestinationRules): private when defaultDestinationRuleExportTo lists `.`, else public."""
        return ["."] if "." in (self.default_destination_rule_export_to or ()) else ["*"]

    @property
    def registry_only(self) -> bool:
        return self.outbound_traffic_policy is not None and self.outbound_traffic_policy.mode == "REGISTRY_ONLY"
