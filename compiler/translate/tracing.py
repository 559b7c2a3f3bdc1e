"""Tracing on every HTTP connection manager of a proxy, as Pilot builds it: the Telemetry API's tracing (the root
namespace's, the proxy's namespace's and its workload's Telemetries, the more specific overriding field by field)
over MeshConfig's defaultProviders.tracing (pilot/pkg/model/telemetry.go Telemetries.Tracing), then the provider's
tracer, sampling and tags (pilot/pkg/networking/core/tracing.go configureTracingFromTelemetry).

Where neither a Telemetry nor defaultProviders.tracing says anything, Pilot's legacy path sets a tracing block
without a provider, for the tracer Istio's proxy bootstrap takes from ProxyConfig.tracing; meshward's bootstraps
have no tracer, so that block would trace nowhere and nothing is emitted (README Limitations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from compiler import model, naming, units
from compiler.api import telemetry as api
from compiler.api.mesh_config import (
    ExtensionProvider,
    MeshConfig,
    OpenTelemetryProvider,
    ProviderHeader,
    ProxyTracingTag,
    TracingConfig,
    ZipkinProvider,
)
from compiler.translate import telemetry
from compiler.translate.mesh import Mesh
from compiler.translate.provider_services import lookup
from compiler.translate.services import Service

Mode = Literal["CLIENT", "SERVER"]  # as compiler.translate.telemetry's: outbound and gateway CLIENT, inbound SERVER
Collector = ZipkinProvider | OpenTelemetryProvider

DEFAULT_SAMPLING = 1.0  # PILOT_TRACE_SAMPLING's default (pilot/pkg/features/telemetry.go)
ZIPKIN_PATH = "/api/v2/spans"  # tracing.go zipkinConfig: Envoy's v1 endpoint is gone
OTLP_HTTP_TIMEOUT_MS = 3000  # mesh/v1alpha1/config.proto HttpService.timeout: "If not specified, the default is 3s"
# tracing.go optionalPolicyTags: the RBAC filter's dry-run results (pilot/pkg/security/authz/model/model.go)
_POLICY_TAGS = tuple(
    model.SpanTag(f"istio.authorization.dry_run.{side}_policy.{what}", model.TagKind.RBAC_METADATA,
                  f"istio_dry_run_{side}_{key}")
    for side in ("allow", "deny") for what, key in (("name", "shadow_effective_policy_id"),
                                                    ("result", "shadow_engine_result")))


@dataclasses.dataclass(slots=True)
class Spec:
    """One side's merged settings (Pilot's TracingSpec); `provider` is a name, resolved afterwards."""

    provider: str | None = None
    disabled: bool = False
    sampling: float | None = None
    custom_tags: dict[str, api.CustomTag] | None = None
    use_request_id: bool = True
    istio_tags: bool = True


def tracing(mesh: Mesh, proxy: model.Proxy, mode: Mode) -> model.Tracing | None:
    """The proxy's tracing on one side, or None: not configured, disabled, or a provider that cannot trace (which
    compiler.analyze.tracing reports)."""
    entries = [entry for spec in telemetry.applicable_specs(mesh, proxy) for entry in spec.tracing or ()]
    defaults = mesh.config.default_providers.tracing if mesh.config.default_providers else None
    spec = merge(entries, defaults or (), mode)
    if spec is None or spec.disabled or spec.provider is None:
        return None
    found = collector(mesh, mesh.config.provider(spec.provider))
    if found is None:
        return None
    provider, service = found
    common = model.Tracing(
        tracer=model.Tracer.ZIPKIN, cluster=naming.outbound_cluster(provider.port, "", service.host),
        host=service.host, sampling=spec.sampling if spec.sampling is not None else mesh_sampling(mesh.config),
        tags=tags(spec, proxy, _proxy_tracing(mesh.config)), spawn_upstream_span=proxy.kind == model.ProxyKind.ROUTER,  # configureFromProviderConfig
        max_path_tag_length=provider.max_tag_length or _proxy_tracing(mesh.config).max_path_tag_length or 0,
        use_request_id_for_sampling=spec.use_request_id)
    if isinstance(provider, ZipkinProvider):  # zipkinConfig
        return dataclasses.replace(common, path=provider.path or ZIPKIN_PATH,
                                   trace_id_128bit=not provider.enable_64bit_trace_id)
    return _with_exporter(dataclasses.replace(common, tracer=model.Tracer.OPENTELEMETRY,
                                              service_name=service_cluster(proxy)), provider)


def merge(entries: Sequence[api.Tracing], defaults: Sequence[str], mode: Mode) -> Spec | None:
    """Telemetries.Tracing for one side: None when no Telemetry has tracing and defaultProviders.tracing is empty
    (the legacy path); otherwise defaultProviders' first provider, then each entry matching the side overriding
    the fields it sets, least specific first (the first provider of a list: Pilot supports one per side)."""
    if not entries and not defaults:
        return None
    spec = Spec(provider=defaults[0] if defaults else None)
    for entry in entries:
        if entry.match is not None and entry.match.mode not in ("CLIENT_AND_SERVER", mode):
            continue
        if entry.providers:
            spec.provider = entry.providers[0].name
        if entry.disable_span_reporting is not None:
            spec.disabled = entry.disable_span_reporting
        if entry.custom_tags is not None:
            spec.custom_tags = entry.custom_tags
        if entry.random_sampling_percentage is not None:
            spec.sampling = entry.random_sampling_percentage
        if entry.use_request_id_for_trace_sampling is not None:
            spec.use_request_id = entry.use_request_id_for_trace_sampling
        if entry.enable_istio_tags is not None:
            spec.istio_tags = entry.enable_istio_tags
    return spec


def collector(mesh: Mesh, provider: ExtensionProvider | None) -> tuple[Collector, Service] | None:
    """A tracing provider's settings and its service in the registry; None for a provider of another kind, or
    whose service or port the registry lacks (model.LookupCluster; a port the service lacks has no cluster)."""
    settings = (provider.zipkin or provider.opentelemetry) if provider is not None else None
    service = lookup(mesh, settings.service) if settings is not None else None
    if settings is None or service is None or service.port(settings.port) is None:
        return None
    return settings, service


def collector_services(mesh: Mesh) -> list[Service]:
    """The collectors' services of every tracing provider the revision names: a proxy's tracer names their
    cluster, which its CDS must hold (Envoy refuses a tracer whose cluster it does not know), even outside its
    Sidecar's egress hosts."""
    return mesh.memo(("tracing", "services"), lambda: _collector_services(mesh))


def mesh_sampling(config: MeshConfig) -> float:
    """proxyConfigSamplingValue: defaultConfig.tracing.sampling, unless unset or 0, else PILOT_TRACE_SAMPLING."""
    return _proxy_tracing(config).sampling or DEFAULT_SAMPLING


def tags(spec: Spec, proxy: model.Proxy, defaults: TracingConfig) -> tuple[model.SpanTag, ...]:
    """configureCustomTags: Istio's own tags (unless enableIstioTags is false), then the Telemetry's, or without
    any, defaultConfig.tracing's; by tag."""
    out = [*_istio_tags(proxy), *_POLICY_TAGS] if spec.istio_tags else []
    out += [_tag(name, tag) for name, tag in (spec.custom_tags or defaults.custom_tags or {}).items()]
    return tuple(sorted(out, key=lambda t: t.tag))


def with_tracing(listeners: Sequence[model.Listener], found: model.Tracing | None) -> list[model.Listener]:
    """The listeners with `found` on every HTTP connection manager (unchanged without tracing)."""
    if found is None:
        return list(listeners)

    def chain(c: model.FilterChain) -> model.FilterChain:
        if not isinstance(c.filter, model.HttpFilterChain):
            return c
        return dataclasses.replace(c, filter=dataclasses.replace(c.filter, tracing=found))

    return [dataclasses.replace(
        listener, filter_chains=tuple(chain(c) for c in listener.filter_chains),
        default_chain=chain(listener.default_chain) if listener.default_chain else None) for listener in listeners]


def _collector_services(mesh: Mesh) -> list[Service]:
    defaults = mesh.config.default_providers
    names = {*(defaults.tracing or () if defaults is not None else ())}
    names.update(ref.name for res in mesh.resources.of_kind(telemetry.KIND) for entry in res.spec.tracing or ()
                 for ref in entry.providers or ())
    found = {hit[1].host: hit[1] for name in sorted(names)
             if (hit := collector(mesh, mesh.config.provider(name))) is not None}
    return [found[host] for host in sorted(found)]


def _with_exporter(tracing: model.Tracing, provider: OpenTelemetryProvider) -> model.Tracing:
    """otelConfig's exporter: OTLP/HTTP to `http.path` (its timeout 3s unless set, as Istio's API documents it;
    Envoy requires one), or OTLP/gRPC with the `grpc` timeout and initial metadata."""
    if provider.http is not None:
        http = provider.http
        return dataclasses.replace(tracing, http=True, path=http.path, headers=_headers(http.headers),
                                   timeout_ms=units.duration_ms(http.timeout) if http.timeout else OTLP_HTTP_TIMEOUT_MS)
    if provider.grpc is not None:
        grpc = provider.grpc
        return dataclasses.replace(tracing, headers=_headers(grpc.initial_metadata),
                                   timeout_ms=units.duration_ms(grpc.timeout) if grpc.timeout else 0)
    return tracing


def _headers(headers: Sequence[ProviderHeader] | None) -> tuple[tuple[str, str], ...]:
    return tuple((h.name, h.value) for h in headers or ())


def service_cluster(proxy: model.Proxy) -> str:
    """otelConfig's service name, which Pilot takes from the node's service cluster: Istio's default for it
    (pkg/bootstrap/config.go serviceClusterOrDefault), `APP.NAMESPACE` from the workload's app labels, else
    `istio-proxy.NAMESPACE` (Istio would name the workload there: README Limitations)."""
    labels = proxy.label_map()
    app = next((labels[k] for k in naming.APP_LABELS if labels.get(k)), "istio-proxy")
    return f"{app}.{proxy.namespace}"


def _istio_tags(proxy: model.Proxy) -> list[model.SpanTag]:
    """buildServiceTags, for a node without Istio's metadata (mesh and cluster id): `unknown`, as Pilot's."""
    labels = proxy.label_map()
    values = {"istio.canonical_revision": labels.get(naming.CANONICAL_REVISION_LABEL) or "latest",
              "istio.canonical_service": labels.get(naming.CANONICAL_NAME_LABEL) or "unknown",
              "istio.mesh_id": "unknown", "istio.namespace": proxy.namespace, "istio.cluster_id": "unknown"}
    return [model.SpanTag(tag, model.TagKind.LITERAL, value) for tag, value in values.items()]


def _proxy_tracing(config: MeshConfig) -> TracingConfig:
    found = config.default_config.tracing if config.default_config is not None else None
    return found if found is not None else TracingConfig()


def _tag(name: str, tag: api.CustomTag | ProxyTracingTag) -> model.SpanTag:
    """buildCustomTagsFromProvider, buildCustomTagsFromProxyConfig (the API models have checked that one kind is
    set)."""
    if tag.literal is not None:
        return model.SpanTag(name, model.TagKind.LITERAL, tag.literal.value)
    if tag.environment is not None:
        return model.SpanTag(name, model.TagKind.ENVIRONMENT, tag.environment.name, tag.environment.default_value)
    if tag.header is not None:
        return model.SpanTag(name, model.TagKind.REQUEST_HEADER, tag.header.name, tag.header.default_value)
    assert isinstance(tag, api.CustomTag) and tag.formatter is not None
    return model.SpanTag(name, model.TagKind.FORMATTER, tag.formatter.value)
