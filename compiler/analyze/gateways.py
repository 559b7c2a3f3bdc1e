"""Gateways that fight over one proxy: the same port and host claimed twice, or one certificate served twice.

Istio: gateway.ConflictingGatewayAnalyzer (IST0145: same selected workload, same port, a host and bind in common;
Istio's pilot keeps only one of the servers) and gateway.CertificateAnalyzer (IST0138: two servers on overlapping
workloads with the same credential or certificate files). Gateways select the same workload when their
selectors are equal, or when a WorkloadEntry in the tree carries the labels of both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.analyze import hosts
from compiler.analyze.context import Context
from compiler.api.common import ServerTLSSettings
from compiler.api.gateway import Server
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource


def check_conflicts(ctx: Context) -> Iterator[Diagnostic]:
    gateways = ctx.of_kind("Gateway")
    if len(gateways) < 2:  # nothing to conflict with (and no need to collect every workload's labels)
        return
    workloads = [dict(w.spec.labels or {}) for w in ctx.of_kind("WorkloadEntry")]
    for gw in gateways:
        others = [o for o in gateways if o is not gw and _same_workload(gw, o, workloads)]
        for i, server in enumerate(gw.spec.servers or ()):
            rivals = sorted({o.origin.split(" ", 1)[1] for o in others for s in o.spec.servers or ()
                             if s.port.number == server.port.number and _shared_host(server, s)})
            if rivals:
                yield gw.diag("MW0316", f"port {server.port.number} hosts {server.hosts} on the workloads selected "
                                        f"by {hosts.selector_string(gw.spec.selector) or '(all)'} are also claimed "
                                        f"by Gateway {', '.join(rivals)}", ("spec", "servers", i))


def _same_workload(a: Resource, b: Resource, workloads: list[dict[str, str]]) -> bool:
    sa, sb = a.spec.selector or {}, b.spec.selector or {}
    if hosts.selector_string(sa) == hosts.selector_string(sb):
        return True
    return any(hosts.selects(sa, w) and hosts.selects(sb, w) for w in workloads)


def _shared_host(a: Server, b: Server) -> bool:
    """Istio's CheckDuplicates: the same host text with the same bind address."""
    return a.bind == b.bind and bool(set(a.hosts) & set(b.hosts))


def check_certificates(ctx: Context) -> Iterator[Diagnostic]:
    gateways = ctx.of_kind("Gateway")
    for gw in gateways:
        for other in gateways:
            if other is gw or not _selector_subset(gw.spec.selector, other.spec.selector):
                continue
            yield from _duplicate_certs(gw, other)


def _duplicate_certs(gw: Resource, other: Resource) -> Iterator[Diagnostic]:
    for i, server in enumerate(gw.spec.servers or ()):
        for theirs in other.spec.servers or ():
            if server.tls is None or theirs.tls is None or not same_certificate(server.tls, theirs.tls):
                continue
            what = server.tls.credential_name or server.tls.server_certificate
            yield gw.diag("MW0314", f"certificate \"{what}\" is also served by {other.origin} on the same "
                                    "workload", ("spec", "servers", i, "tls"))


def _selector_subset(mine: Mapping[str, str] | None, theirs: Mapping[str, str] | None) -> bool:
    """Every workload `theirs` selects is also selected by `mine` (an empty selector selects all)."""
    return hosts.selects(mine, theirs or {})


def same_certificate(a: ServerTLSSettings, b: ServerTLSSettings) -> bool:
    if a.credential_name and b.credential_name:
        return a.credential_name == b.credential_name
    if a.credential_name or b.credential_name:
        return False
    return bool(a.server_certificate and a.server_certificate == b.server_certificate
                and a.private_key and a.private_key == b.private_key)
