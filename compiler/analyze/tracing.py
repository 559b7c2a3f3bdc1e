"""Tracing providers that Pilot cannot turn into a tracer, reported at their line.

Pilot drops the tracing of a proxy whose provider is not defined (pilot/pkg/model/telemetry.go fetchProvider: the
spec is then disabled), is not a tracer, or names a service the registry lacks
(pilot/pkg/networking/core/tracing.go configureFromProviderConfig: "does not support tracing", "could not find
cluster"), logging a warning in istiod: the mesh then traces less than the policy says. meshward reports each at the
Telemetry's provider name, or at the provider's service in MeshConfig, and serves nothing until it is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import mesh_config
from compiler.analyze.context import Context
from compiler.api.telemetry import Telemetry
from compiler.diagnostics import Diagnostic


def check(ctx: Context) -> Iterator[Diagnostic]:
    config = mesh_config.config_of(ctx.of_kind("ConfigMap"))
    defaults = config.default_providers.tracing if config.default_providers is not None else None
    used = {name.lower() for name in defaults or ()}  # provider names compare case-insensitively (fetchProvider)
    for res in ctx.of_kind("Telemetry"):
        spec: Telemetry = res.spec
        for i, entry in enumerate(spec.tracing or ()):
            for j, ref in enumerate(entry.providers or ()):
                path = ("spec", "tracing", i, "providers", j, "name")
                provider = config.provider(ref.name)
                if j > 0:
                    yield res.diag("MW0338", f'tracing provider "{ref.name}" is not used: Pilot traces to the '
                                             "first provider of an entry only", path)
                elif provider is None:
                    yield res.diag("MW0329", f'tracing provider "{ref.name}" is not defined by MeshConfig '
                                             "extensionProviders: Pilot would trace nothing", path)
                elif provider.zipkin is None and provider.opentelemetry is None:
                    yield res.diag("MW0336", f'provider "{ref.name}" is not a tracer (zipkin or opentelemetry): '
                                             "Pilot would trace nothing", path)
                else:
                    used.add(provider.name.lower())
    yield from _collectors(ctx, used)


def _collectors(ctx: Context, used: set[str]) -> Iterator[Diagnostic]:
    """The services of the tracing providers in use, against the registry (model.LookupCluster)."""
    res = mesh_config.find(ctx.of_kind("ConfigMap"))
    config = mesh_config.config_of(ctx.of_kind("ConfigMap"))
    for i, provider in enumerate(config.extension_providers or ()):
        settings = provider.zipkin or provider.opentelemetry
        if res is None or settings is None or provider.name.lower() not in used or not settings.service:
            continue  # compiler.mesh_config reports a provider without a service
        problem = ctx.registry.provider_problem(settings.service, settings.port)
        if problem:
            kind = "zipkin" if provider.zipkin is not None else "opentelemetry"
            yield mesh_config.diagnostic_at(res, "MW0337", f'tracing provider "{provider.name}" {problem}',
                                            ("extensionProviders", i, kind, "service"))
