"""Stage 1c: cross-resource analyzers, modeled on `istioctl analyze`.

Each analyzer looks at the whole revision (a ResourceSet) and reports what no single resource shows: references
to things that do not exist, resources that conflict, rules that can never apply. They run in a fixed order and
never stop early; each diagnostic points at the field it is about. `compiler.codes` maps every code to the Istio
message it matches (IST0101, IST0109, ...).
"""

from __future__ import annotations

from compiler.analyze import (
    authorization,
    deprecation,
    destination_rules,
    destinations,
    gateways,
    matches,
    service_entries,
    services,
    sidecars,
    subsets,
    vs_conflicts,
    vs_gateways,
)
from compiler.analyze.context import Analyzer, Context
from compiler.diagnostics import Diagnostic
from compiler.resources import ResourceSet

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
    ("deprecation", deprecation.check),
)


def analyze(resources: ResourceSet) -> list[Diagnostic]:
    """Run every analyzer over `resources`, in the fixed order above."""
    ctx = Context(resources)
    out: list[Diagnostic] = []
    for _, analyzer in ANALYZERS:
        out.extend(analyzer(ctx))
    return out
