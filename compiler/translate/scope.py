"""What one proxy can see: its Sidecar resource, the services and VirtualServices each egress listener imports
(Sidecar `hosts: [ns/host]` and `exportTo`), and the DestinationRule that applies to a host for it.

Mirrors Istio's SidecarScope: without a Sidecar a proxy sees every service exported to its namespace; a Sidecar is
chosen by workloadSelector first, then the namespace-wide one, then the root namespace's (MeshConfig rootNamespace, istio-system by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from compiler import model, naming
from compiler.api.destination_rule import TrafficPolicy
from compiler.resources import Resource
from compiler.reuse.carry import Tag
from compiler.translate import specs
from compiler.translate.mesh import (
    DestinationRuleEntry,
    Mesh,
    VirtualServiceEntry,
)
from compiler.translate.services import Service, parse_protocol

DEFAULT_EGRESS_HOSTS = ("*/*",)


@dataclasses.dataclass(frozen=True, slots=True)
class Egress:
    """One egress listener: where it binds, which port it claims (None: every port of its services)."""

    hosts: tuple[tuple[str, str], ...]  # (namespace, host) patterns
    port: int | None = None
    protocol: model.Protocol | None = None
    bind: str = ""
    capture_none: bool = False
    registry_only: bool = False  # Sidecar outboundTrafficPolicy REGISTRY_ONLY: unknown hosts get Istio's block_all


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    proxy: model.Proxy
    sidecar: Resource | None
    egress: tuple[Egress, ...]


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def find_sidecar(mesh: Mesh, proxy: model.Proxy) -> Resource | None:
    """Pilot's choice: of the proxy's namespace's Sidecars, the oldest that selects it, else the oldest
    namespace-wide one (several are flagged, MW0306), else the root namespace's (pilot/pkg/model/push_context.go
    initSidecarScopes sorts them by creation time; getSidecarScope takes the first that applies)."""
    labels = proxy.label_map()
    local = sorted(mesh.sidecars.get(proxy.namespace, []), key=lambda sc: sc.pilot_order)
    for sc in local:
        selector = _selector(sc)
        if selector and selects(selector, labels):
            return sc
    plain = [sc for sc in local if not _selector(sc)]
    if plain:
        return plain[0]
    root = [sc for sc in mesh.sidecars.get(mesh.root_namespace, []) if not _selector(sc)]
    return min(root, key=lambda sc: sc.pilot_order) if root else None


def _selector(sidecar: Resource) -> dict[str, str] | None:
    """The Sidecar's workloadSelector labels; none (or empty): the Sidecar is its namespace's default."""
    ws = specs.sidecar(sidecar).workload_selector
    return ws.labels if ws is not None else None


def parse_egress_host(text: str, proxy_namespace: str) -> tuple[str, str]:
    ns, slash, host = text.partition("/")
    if not slash:
        ns, host = "*", text
    return (proxy_namespace if ns == "." else ns, host.lower())


def scope_for(mesh: Mesh, proxy: model.Proxy) -> Scope:
    sidecar = find_sidecar(mesh, proxy)
    spec = specs.sidecar(sidecar) if sidecar is not None else None
    listeners = spec.egress if spec is not None and spec.egress else None
    otp = spec.outbound_traffic_policy if spec is not None else None
    # the Sidecar's mode, else MeshConfig's (Pilot's SidecarScope.OutboundTrafficPolicy falls back to the mesh's)
    registry_only = otp.mode == "REGISTRY_ONLY" if otp is not None and otp.mode else mesh.config.registry_only
    if not listeners:
        hosts = tuple(parse_egress_host(h, proxy.namespace) for h in DEFAULT_EGRESS_HOSTS)
        return Scope(proxy, sidecar, (Egress(hosts, registry_only=registry_only),))
    out = []
    for eg in listeners:
        hosts = tuple(parse_egress_host(h, proxy.namespace) for h in eg.hosts)
        port = eg.port.number if eg.port is not None and eg.port.number else None
        proto = parse_protocol(eg.port.protocol) if eg.port is not None else None
        out.append(Egress(hosts, port, proto, eg.bind or "", eg.capture_mode == "NONE", registry_only))
    return Scope(proxy, sidecar, tuple(out))


def _imports(egress: Egress, namespace: str, host: str) -> bool:
    for ns, pattern in egress.hosts:
        if ns == "~":
            continue
        if (ns == "*" or ns == namespace) and naming.hosts_intersect(pattern, host):
            return True
    return False


def _namespaces(egress: Egress) -> set[str] | None:
    """The namespaces an egress listener can import from; None for any (`*/...`)."""
    found = {ns for ns, _ in egress.hosts if ns != "~"}
    return None if "*" in found else found


def egress_services(mesh: Mesh, proxy: model.Proxy, egress: Egress) -> tuple[Service, ...]:
    """The services an egress listener imports, by host. Depends on the service table alone, so a revision that
    reuses the table (a commit that changed no service) reuses these too."""
    return mesh.carry.egress_services(mesh.services, (egress, proxy.namespace),
                                      lambda: _egress_services(mesh, proxy, egress))


def _egress_services(mesh: Mesh, proxy: model.Proxy, egress: Egress) -> tuple[Service, ...]:
    out = []
    namespaces = _namespaces(egress)
    # a namespace-scoped Sidecar (Istio's usual `./*`) looks at its namespaces' hosts only, not the whole mesh
    hosts = sorted(mesh.services) if namespaces is None else mesh.hosts_in(namespaces)
    for host in hosts:
        service = mesh.service_for(host, proxy.namespace)
        if service is not None and _imports(egress, service.namespace, service.host):
            out.append(service)
    return tuple(out)


def egress_virtual_services(mesh: Mesh, proxy: model.Proxy, egress: Egress) -> list[VirtualServiceEntry]:
    """Mesh VirtualServices this listener imports, in Pilot's order, in which the first one for a host wins:
    those exported only to the proxy's namespace, then those exported to it by name, then public ones, each
    oldest first (pilot/pkg/model/push_context.go VirtualServicesForGateway; Resource.pilot_order)."""
    namespaces = _namespaces(egress)
    candidates = mesh.virtual_services if namespaces is None else mesh.virtual_services_in(namespaces)
    found = [vs for vs in candidates
             if naming.MESH_GATEWAY in vs.gateways and vs.visible_in(proxy.namespace)
             and any(_imports(egress, vs.res.namespace, h) for h in vs.hosts)]
    return sorted(found, key=lambda vs: (_visibility(vs, proxy.namespace), vs.res.pilot_order))


def _visibility(vs: VirtualServiceEntry, namespace: str) -> int:
    if "*" in vs.exports:
        return 2
    return 0 if vs.res.namespace == namespace else 1


def destination_rule(mesh: Mesh, proxy: model.Proxy, service: Service) -> DestinationRuleEntry | None:
    """Istio's lookup order: the proxy's namespace, then the service's, then the root namespace, then any other
    namespace exporting a rule for the host; within a namespace the most specific host wins. Looked up once per
    service and proxy scope (namespace and the labels selectors read) in a revision."""
    key = (Tag.RULE_FOR, id(service), mesh.outbound_key(proxy))  # the mesh keeps its services alive: ids are stable
    return mesh.memo(key, lambda: _destination_rule(mesh, proxy, service))


def _destination_rule(mesh: Mesh, proxy: model.Proxy, service: Service) -> DestinationRuleEntry | None:
    labels = proxy.label_map()
    by_namespace = mesh.rules_for(service.host)
    if not by_namespace:
        return None
    order = [proxy.namespace, service.namespace, mesh.root_namespace,
             *sorted(ns for ns in by_namespace if ns not in (proxy.namespace, service.namespace))]
    for ns in dict.fromkeys(order):
        entries = [e for e in by_namespace.get(ns, ())
                   if (ns == proxy.namespace or e.visible_in(proxy.namespace)) and selects(dict(e.selector), labels)]
        if entries:
            return max(entries, key=lambda e: (bool(e.selector), _specificity(e.host)))
    return None


def _specificity(host: str) -> tuple[int, int]:
    return (0 if host.startswith("*") else 1, len(host))


def traffic_policy(rule: DestinationRuleEntry | None) -> TrafficPolicy | None:
    return rule.traffic_policy if rule is not None else None
