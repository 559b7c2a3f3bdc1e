"""Telemetry access-logging providers that MeshConfig does not define, or that log no access.

Pilot drops such a provider silently (pilot/pkg/model/telemetry.go fetchProvider, telemetryAccessLog): the proxy
then logs less than the Telemetry says, so meshward reports it at the provider's line instead. An envoyOtelAls
provider logs in Istio, but meshward does not build OpenTelemetry access logs yet (MW0403).
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import mesh_config
from compiler.analyze.context import Context
from compiler.api.telemetry import Telemetry
from compiler.diagnostics import Diagnostic


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
                elif provider.envoy_otel_als is not None:
                    yield res.diag("MW0403", f'access logging provider "{ref.name}" (envoyOtelAls) is not compiled '
                                             "yet: this Telemetry logs nothing to it", path)
                elif provider.envoy_file_access_log is None:
                    yield res.diag("MW0330", f'provider "{ref.name}" is not an access logger (envoyFileAccessLog): '
                                             "Pilot would skip it", path)


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
