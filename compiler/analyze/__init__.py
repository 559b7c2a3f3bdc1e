"""Stage 1c: cross-resource analyzers, modeled on `istioctl analyze`.

Each analyzer looks at the whole revision (a ResourceSet) and reports what no single resource shows: references
to things that do not exist, resources that conflict, rules that can never apply. They run in a fixed order and
never stop early; each diagnostic points at the field it is about. `compiler.codes` maps every code to the Istio
message it matches (IST0101, IST0109, ...).

Most analyzers judge one resource at a time against indexes of a few other kinds (`PER_RESOURCE`). Given an
`AnalyzeCache` from the previous run, such an analyzer runs again only for the resources that are new or changed,
as long as the kinds it looks up are unchanged (same resource objects); the others always see the whole revision.
"""

from __future__ import annotations

from compiler.analyze import (
    authorization,
    deprecation,
    destination_rules,
    destinations,
    ext_authz,
    gateways,
    jwt_routes,
    matches,
    service_entries,
    services,
    sidecars,
    subsets,
    telemetry,
    telemetry_selectors,
    tracing,
    vs_conflicts,
    vs_gateways,
)
from compiler.analyze.cache import AnalyzeCache
from compiler.analyze.context import Analyzer, Context
from compiler.diagnostics import Diagnostic
from compiler.kinds import WORKLOAD_KINDS
from compiler.resources import ResourceSet

__all__ = ["ANALYZERS", "PER_RESOURCE", "WHOLE", "AnalyzeCache", "analyze"]

ANALYZERS: tuple[tuple[str, Analyzer], ...] = (
    ("virtualservice.gateways", vs_gateways.check),
    ("virtualservice.destination-hosts", destinations.check_hosts),
    ("virtualservice.destination-subsets", destinations.check_subsets),
    ("virtualservice.ingress-subsets", destinations.check_ingress_subsets),
    ("virtualservice.mesh-host-conflicts", vs_conflicts.check),
    ("virtualservice.matches", matches.check),
    ("gateway.conflicts", gateways.check_conflicts),
    ("gateway.certificates", gateways.check_certificates),
    ("destinationrule.ca-certificates", destination_rules.check_ca_certificates),
    ("destinationrule.unknown-hosts", destination_rules.check_unknown_hosts),
    ("destinationrule.merged", destination_rules.check_merged),
    ("destinationrule.subset-endpoints", subsets.check),
    ("serviceentry.addresses", service_entries.check_addresses),
    ("serviceentry.protocols", service_entries.check_protocols),
    ("service.port-names", services.check),
    ("sidecar.default-selectors", sidecars.check_default_selectors),
    ("authorizationpolicy.namespaces", authorization.check_namespaces),
    ("authorizationpolicy.workloads", authorization.check_workloads),
    ("authorizationpolicy.ext-authz-providers", ext_authz.check),
    ("virtualservice.jwt-claim-routes", jwt_routes.check),
    ("telemetry.providers", telemetry.check_providers),
    ("telemetry.default-providers", telemetry.check_default_providers),
    ("telemetry.lightstep", telemetry.check_lightstep),
    ("telemetry.default-selectors", telemetry_selectors.check_default_selectors),
    ("telemetry.selectors", telemetry_selectors.check_selectors),
    ("telemetry.tracing-providers", tracing.check),
    ("telemetry.collectors", telemetry.check_collectors),
    ("deprecation", deprecation.check),
)


# name -> (kinds it reports on, one resource at a time; kinds it looks up, or "namespaces" for the namespace set)
PER_RESOURCE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "virtualservice.gateways": (("VirtualService",), ("Gateway",)),
    "virtualservice.destination-hosts": (("VirtualService",), ("Service", "ServiceEntry", "ConfigMap")),
    "virtualservice.destination-subsets": (("VirtualService",), ("DestinationRule",)),
    "virtualservice.matches": (("VirtualService",), ()),
    "destinationrule.ca-certificates": (("DestinationRule",), ()),
    "destinationrule.unknown-hosts": (("DestinationRule",), ("Service", "ServiceEntry", "ConfigMap")),
    "destinationrule.subset-endpoints": (("DestinationRule",),
                                         ("Service", "ServiceEntry", "WorkloadEntry", "EndpointSlice", "ConfigMap")),
    "serviceentry.addresses": (("ServiceEntry",), ("ConfigMap",)),
    "service.port-names": (("Service",), ()),
    "authorizationpolicy.namespaces": (("AuthorizationPolicy",), ("namespaces",)),
    "deprecation": (("VirtualService", "Sidecar", "DestinationRule"), ()),
}


# name -> the kinds a cross-resource analyzer reads (through of_kind or the context's indexes); its output is reused
# while they hold the same resource objects
WHOLE: dict[str, tuple[str, ...]] = {
    "virtualservice.ingress-subsets": ("VirtualService",),
    "virtualservice.mesh-host-conflicts": ("VirtualService", "ConfigMap"),
    "gateway.conflicts": ("Gateway", "WorkloadEntry"),
    "gateway.certificates": ("Gateway",),
    "destinationrule.merged": ("DestinationRule",),
    "serviceentry.protocols": ("ServiceEntry", "ConfigMap"),
    "sidecar.default-selectors": ("Sidecar",),
    "telemetry.providers": ("Telemetry", "ConfigMap"),
    "telemetry.default-providers": ("Telemetry", "ConfigMap"),
    "telemetry.lightstep": ("Telemetry", "ConfigMap"),
    "telemetry.default-selectors": ("Telemetry",),
    "telemetry.selectors": ("Telemetry", "Pod", *WORKLOAD_KINDS, "WorkloadEntry", "Namespace"),
    "telemetry.tracing-providers": ("Telemetry", "ConfigMap", "Service", "ServiceEntry"),
    "telemetry.collectors": ("Telemetry", "ConfigMap", "Service", "ServiceEntry"),
    "authorizationpolicy.workloads": ("AuthorizationPolicy", "Pod", *WORKLOAD_KINDS, "WorkloadEntry", "Namespace",
                                      "ConfigMap"),
    "authorizationpolicy.ext-authz-providers": ("AuthorizationPolicy", "ConfigMap", "Service", "ServiceEntry"),
    "virtualservice.jwt-claim-routes": ("VirtualService", "Gateway", "RequestAuthentication", "Pod", *WORKLOAD_KINDS,
                                        "WorkloadEntry", "Namespace", "ConfigMap"),
}


def analyze(resources: ResourceSet, cache: AnalyzeCache | None = None) -> list[Diagnostic]:
    """Run every analyzer over `resources`, in the fixed order above (incrementally when given a cache)."""
    ctx = cache.context(resources) if cache is not None else Context(resources)
    out: list[Diagnostic] = []
    for name, analyzer in ANALYZERS:
        plan = PER_RESOURCE.get(name)
        if cache is None:
            out.extend(analyzer(ctx))
        elif plan is not None:
            out.extend(cache.run(name, analyzer, ctx, *plan))
        elif name in WHOLE:
            out.extend(cache.run_whole(name, analyzer, ctx, WHOLE[name]))
        else:
            out.extend(analyzer(ctx))
    if cache is not None:
        cache.remember_indexes(ctx)
    return out
