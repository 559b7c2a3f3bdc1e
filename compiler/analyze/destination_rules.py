"""DestinationRule checks: TLS that does not verify the server, hosts nobody defines, and rules Istio merges.

Istio: destinationrule.CaCertificateAnalyzer (IST0128 / IST0129: SIMPLE or MUTUAL TLS without caCertificates,
unless a credentialName supplies the CA to a workload-selected rule: `_unverified` says why that is right), the UnknownDestinationRuleHost part of
destinationrule.PodNotSelectedAnalyzer (IST0174), and pilot's DestinationRule merging (pilot/pkg/model
destination_rule.go): DestinationRules of one namespace for one host (and the same workload selector) become one;
subsets are appended (a repeated subset name is dropped) and the first top-level trafficPolicy wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from compiler.analyze import hosts
from compiler.analyze.context import Context
from compiler.api.destination_rule import ClientTLSSettings
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

_VERIFYING_MODES = ("SIMPLE", "MUTUAL")


def check_ca_certificates(ctx: Context) -> Iterator[Diagnostic]:
    for dr in ctx.of_kind("DestinationRule"):
        policy = dr.spec.traffic_policy
        if policy is None:
            continue
        selected = dr.spec.workload_selector is not None
        host = dr.spec.host
        if _unverified(policy.tls, selected):
            yield dr.diag("MW0309", f"TLS mode {policy.tls.mode} to {host} does not verify the server certificate: "
                                    f"{_why(policy.tls)}", ("spec", "trafficPolicy", "tls", "mode"))
        for i, port in enumerate(policy.port_level_settings or ()):
            if _unverified(port.tls, selected):
                number = port.port.number if port.port else "?"
                yield dr.diag("MW0310", f"TLS mode {port.tls.mode} to {host} port {number} does not verify the "
                                        f"server certificate: {_why(port.tls)}",
                              ("spec", "trafficPolicy", "portLevelSettings", i, "tls", "mode"))


def _unverified(tls: ClientTLSSettings | None, selected: bool) -> bool:
    """As CaCertificateAnalyzer (ca-certificates.go), credentialName included: it verifies the server (with its
    Secret's CA) only where it is used. Without a workloadSelector, Pilot uses it at gateways alone; sidecars get no
    TLS for the rule (cluster_tls.go buildUpstreamClusterTLSContext keeps a credential from every sidecar in the
    rule's scope; meshward too, compiler.translate.clusters.credentials_withheld), so the rule does not verify
    everywhere it applies, and Istio's analyzer tests expect the report
    (analyzers_test.go "destinationrule with credentialname, ... no workloadSelector"). Not a false positive."""
    if tls is None or tls.mode not in _VERIFYING_MODES or tls.ca_certificates:
        return False
    return not (tls.credential_name and selected)


def _why(tls: ClientTLSSettings) -> str:
    if tls.credential_name:  # caCertificates may not be added beside it (validation.go ValidateTLS)
        return (f"credentialName {tls.credential_name} without a workloadSelector is for gateways (sidecars send "
                "this traffic without TLS, as Istio's do)")
    return "caCertificates is not set"


def check_unknown_hosts(ctx: Context) -> Iterator[Diagnostic]:
    for dr in ctx.of_kind("DestinationRule"):
        consumers = hosts.consumer_namespaces(dr.spec.export_to, dr.namespace)
        fqdn = hosts.to_fqdn(dr.spec.host, dr.namespace)
        lookup = ctx.registry.overlapping if hosts.is_wildcard(fqdn) else ctx.registry.lookup
        if not lookup(fqdn, consumers):
            yield dr.diag("MW0318", f"host \"{dr.spec.host}\" ({fqdn}) is not defined by any Service or ServiceEntry "
                                    f"visible from namespace {', '.join(sorted(consumers))}", ("spec", "host"))


def check_merged(ctx: Context) -> Iterator[Diagnostic]:
    groups: dict[tuple[str, str, str], list[Resource]] = {}
    rules = ctx.of_kind("DestinationRule")
    for dr, key in zip(rules, ctx.memoized("destination_rules.merge_key", _merge_key, rules), strict=True):
        groups.setdefault(key, []).append(dr)
    for (_, host, _), rules in groups.items():
        for n, dr in enumerate(rules[1:], start=1):
            yield dr.diag("MW0320", _merge_message(host, rules[:n], dr), ("spec", "host"))


def _merge_key(dr: Resource) -> tuple[str, str, str]:
    """DestinationRules with the same key are merged: namespace, host FQDN, workload selector."""
    selector = dr.spec.workload_selector.match_labels if dr.spec.workload_selector else None
    return (dr.namespace, hosts.to_fqdn(dr.spec.host, dr.namespace), hosts.selector_string(selector))


def _merge_message(host: str, earlier: Sequence[Resource], dr: Resource) -> str:
    names = ", ".join(r.origin for r in earlier)
    winner = next((r for r in earlier if r.spec.traffic_policy is not None), None)
    if winner is not None:
        policy = (f"the trafficPolicy of {winner.origin} wins"
                  + ("; this one's trafficPolicy is ignored" if dr.spec.traffic_policy is not None else ""))
    elif dr.spec.traffic_policy is not None:
        policy = "this one's trafficPolicy applies (the earlier ones have none)"
    else:
        policy = "none of them sets a trafficPolicy"
    taken = {s.name for r in earlier for s in r.spec.subsets or ()}
    dropped = sorted(s.name for s in dr.spec.subsets or () if s.name in taken)
    lost = f"; subsets {dropped} are already defined and are ignored here" if dropped else ""
    return f"merged with {names} for host {host} (subsets are appended): {policy}{lost}"
