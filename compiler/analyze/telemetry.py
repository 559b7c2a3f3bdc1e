"""Telemetry providers that MeshConfig does not define, of a kind that does not do what the Telemetry asks
(access logging, metrics), or whose access-log collector the registry lacks.

Pilot drops such a provider silently (pilot/pkg/model/telemetry.go fetchProvider, telemetryAccessLog; for an
envoyOtelAls provider, telemetry_logging.go openTelemetryLog: "could not find cluster"): the proxy then logs less
than the Telemetry says, so meshward reports it at the provider's line instead: at the Telemetry's provider name,
or at the OpenTelemetry provider's service in MeshConfig.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import mesh_config
from compiler.analyze.context import Context
from compiler.api.mesh_config import MeshConfig
from compiler.api.telemetry import Telemetry
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource


def check_providers(ctx: Context) -> Iterator[Diagnostic]:
    config = mesh_config.config_of(ctx.of_kind("ConfigMap"))
    for res in ctx.of_kind("Telemetry"):
        spec: Telemetry = res.spec
        for i, entry in enumerate(spec.access_logging or ()):
            for j, ref in enumerate(entry.providers or ()):
                path = ("spec", "accessLogging", i, "providers", j, "name")
                provider = config.provider(ref.name)
                if provider is None:
                    yield res.diag("MW0329", f'access logging provider "{ref.name}" is not defined by MeshConfig '
                                             "extensionProviders (nor built into Istio): Pilot would skip it", path)
                elif provider.envoy_file_access_log is None and provider.envoy_otel_als is None:
                    yield res.diag("MW0330", f'provider "{ref.name}" is not an access logger (envoyFileAccessLog '
                                             "or envoyOtelAls): Pilot would skip it", path)
        yield from _metrics_providers(res, spec, config)


def _metrics_providers(res: Resource, spec: Telemetry, config: MeshConfig) -> Iterator[Diagnostic]:
    """Pilot reports metrics to prometheus providers only (buildHTTPTelemetryFilter; stackdriver is not modeled)."""
    for i, entry in enumerate(spec.metrics or ()):
        for j, ref in enumerate(entry.providers or ()):
            path = ("spec", "metrics", i, "providers", j, "name")
            provider = config.provider(ref.name)
            if provider is None:
                yield res.diag("MW0329", f'metrics provider "{ref.name}" is not defined by MeshConfig '
                                         "extensionProviders (nor built into Istio): Pilot would skip it", path)
            elif provider.prometheus is None:
                yield res.diag("MW0335", f'provider "{ref.name}" is not a metrics provider (prometheus): Pilot would '
                                         "skip it", path)


def check_default_providers(ctx: Context) -> Iterator[Diagnostic]:
    """telemetry.ProviderAnalyzer (IST0157): an enabled accessLogging entry that names no provider inherits
    MeshConfig defaultProviders.accessLogging; with none there, it logs nothing (Pilot's mergeLogs)."""
    config = mesh_config.config_of(ctx.of_kind("ConfigMap"))
    if config.default_providers is not None and config.default_providers.access_logging:
        return
    for res in ctx.of_kind("Telemetry"):
        spec: Telemetry = res.spec
        for i, entry in enumerate(spec.access_logging or ()):
            if not entry.disabled and not entry.providers:
                yield res.diag("MW0334", "access logging names no provider and MeshConfig "
                                         "defaultProviders.accessLogging is empty: this entry logs nothing",
                               ("spec", "accessLogging", i))


def check_lightstep(ctx: Context) -> Iterator[Diagnostic]:
    """telemetry.LightstepAnalyzer (IST0002): Istio deprecated its Lightstep tracer for OpenTelemetry."""
    config = mesh_config.config_of(ctx.of_kind("ConfigMap"))
    lightstep = {p.name for p in config.extension_providers or () if p.lightstep is not None}
    if not lightstep:
        return
    for res in ctx.of_kind("Telemetry"):
        spec: Telemetry = res.spec
        for i, entry in enumerate(spec.tracing or ()):
            for j, ref in enumerate(entry.providers or ()):
                if ref.name in lightstep:
                    yield res.diag("MW0323", f"the Lightstep provider {ref.name} is deprecated: move to an "
                                             "opentelemetry provider", ("spec", "tracing", i, "providers", j, "name"))


def check_collectors(ctx: Context) -> Iterator[Diagnostic]:
    """The services of the envoyOtelAls providers in use, against the registry (model.LookupCluster), at the
    provider's service: a port the service lacks has no cluster either."""
    res = mesh_config.find(ctx.of_kind("ConfigMap"))
    config = mesh_config.config_of(ctx.of_kind("ConfigMap"))
    used = _used(ctx, config)
    for i, provider in enumerate(config.extension_providers or ()):
        als = provider.envoy_otel_als
        if res is None or als is None or provider.name.lower() not in used or not als.service:
            continue  # compiler.mesh_config reports a provider without a service
        problem = ctx.registry.provider_problem(als.service, als.port)
        if problem:
            yield mesh_config.diagnostic_at(res, "MW0340", f'access logging provider "{provider.name}" {problem}',
                                            ("extensionProviders", i, "envoyOtelAls", "service"))


def _used(ctx: Context, config: MeshConfig) -> set[str]:
    """The provider names (lower case: fetchProvider compares so) some Telemetry or defaultProviders.accessLogging
    logs to."""
    defaults = config.default_providers.access_logging if config.default_providers is not None else None
    used = {name.lower() for name in defaults or ()}
    used.update(ref.name.lower() for res in ctx.of_kind("Telemetry") for entry in res.spec.access_logging or ()
                for ref in entry.providers or ())
    return used
