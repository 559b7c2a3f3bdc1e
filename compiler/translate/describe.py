"""Which configs apply to one proxy and why, the way `istioctl x describe pod` explains a pod: the Pod or
Deployment (StatefulSet...) it runs for, the Sidecar and Gateways that select it, the Services it serves and sees, the VirtualServices and DestinationRules that shape its
traffic, and the security policies that select it, each with its file:line.

The facts come from the same lookups translate uses to build the proxy's config (`scope`, `proxies`), so what this
says applies is what was compiled; nothing is re-derived from raw YAML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from compiler import model
from compiler.resources import Resource
from compiler.translate import scope
from compiler.translate.mesh import DestinationRuleEntry, Mesh, VirtualServiceEntry
from compiler.translate.proxies import gateways_for

_POLICY_KINDS = ("PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication")


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    """One config that applies to the proxy, and why."""

    kind: str
    namespace: str
    name: str
    file: str
    line: int
    why: str

    def to_json(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class Description:
    node_id: str
    kind: str  # sidecar or router
    workload: str  # namespace/name
    labels: tuple[tuple[str, str], ...]
    applied: tuple[Applied, ...]

    def to_json(self) -> dict[str, object]:
        return {"node": self.node_id, "kind": self.kind, "workload": self.workload, "labels": dict(self.labels),
                "applied": [a.to_json() for a in self.applied]}


def describe(mesh: Mesh, proxy: model.Proxy) -> Description:
    labels = proxy.label_map()
    router = proxy.kind is model.ProxyKind.ROUTER
    applied: list[Applied] = []
    owner = mesh.kube.owner(proxy.namespace, proxy.name) if mesh.kube else None
    if owner is not None:
        source = "the Pod itself" if owner.kind == "Pod" else f"the pod template of the {owner.kind} whose pods are named so"
        applied.append(_of(owner.res, f"the workload: labels and service account {owner.service_account} from {source}"))
    gateways = gateways_for(mesh, proxy)
    for gw in gateways:
        applied.append(_of(gw.res, f"selector {_labels(gw.selector)} matches the workload's labels"))
    if not router:
        sidecar = scope.find_sidecar(mesh, proxy)
        if sidecar is not None:
            applied.append(_of(sidecar, _sidecar_why(sidecar, proxy)))
    for service, _ in mesh.instances_of(proxy):
        applied.append(_source(service.source, "inbound: its selector matches the workload (the proxy serves it)"))
    sc = scope.scope_for(mesh, proxy) if not router else scope.Scope(proxy, None, (_default_egress(proxy),))
    seen: set[str] = set()
    rules: dict[tuple[str, str, str], Applied] = {}
    for egress in sc.egress:
        for service in scope.egress_services(mesh, proxy, egress):
            if service.host in seen:
                continue
            seen.add(service.host)
            applied.append(_source(service.source, f"outbound: host {service.host}, {_exports(service.exports)}"))
            rule = scope.destination_rule(mesh, proxy, service)
            if rule is not None:
                for src in rule.sources:
                    rules.setdefault((src.namespace, src.name, src.file), _source(src, _rule_why(rule)))
    applied.extend(rules.values())
    applied.extend(_virtual_services(mesh, proxy, sc, {g.key for g in gateways}, router))
    applied.extend(_policies(mesh, proxy, labels))
    return Description(proxy.node_id, proxy.kind.value, f"{proxy.namespace}/{proxy.name}", proxy.labels,
                       tuple(applied))


def _default_egress(proxy: model.Proxy) -> scope.Egress:
    """A gateway sees every service exported to its namespace (Istio applies no Sidecar to gateways)."""
    return scope.Egress(tuple(scope.parse_egress_host(h, proxy.namespace) for h in scope.DEFAULT_EGRESS_HOSTS))


def _virtual_services(mesh: Mesh, proxy: model.Proxy, sc: scope.Scope, gateway_keys: set[str],
                      router: bool) -> list[Applied]:
    if router:
        found: Iterable[VirtualServiceEntry] = (
            vs for vs in mesh.virtual_services
            if vs.gateways & gateway_keys and vs.visible_in(proxy.namespace))
        why = "bound to gateway {gw}; hosts {hosts}"
    else:
        found = dict.fromkeys(vs for eg in sc.egress for vs in scope.egress_virtual_services(mesh, proxy, eg))
        why = "gateways {gw}; hosts {hosts}"
    out = []
    for vs in found:
        gws = ", ".join(sorted(vs.gateways & gateway_keys if router else vs.gateways))
        out.append(_of(vs.res, why.format(gw=gws, hosts=", ".join(vs.hosts)) + f", {_exports(vs.exports)}"))
    return out


def _policies(mesh: Mesh, proxy: model.Proxy, labels: Mapping[str, str]) -> list[Applied]:
    """Security policies of the proxy's namespace and the root namespace that select it (no selector: all of
    their namespace, or the whole mesh for the root namespace's)."""
    out = []
    for kind in _POLICY_KINDS:
        for res in mesh.resources.of_kind(kind):
            if res.namespace not in (proxy.namespace, mesh.root_namespace):
                continue
            selector = res.spec.selector.match_labels if res.spec.selector is not None else None
            if selector:
                if res.namespace == proxy.namespace and scope.selects(selector, labels):
                    out.append(_of(res, f"selector {_labels(tuple(selector.items()))} matches the workload's labels"))
            elif res.namespace == mesh.root_namespace:
                out.append(_of(res, f"mesh-wide: no selector, in the root namespace {mesh.root_namespace}"))
            else:
                out.append(_of(res, f"namespace-wide: no selector, in namespace {res.namespace}"))
    return out


def _sidecar_why(sidecar: Resource, proxy: model.Proxy) -> str:
    ws = sidecar.spec.workload_selector
    if ws is not None and ws.labels:
        return f"workloadSelector {_labels(tuple(ws.labels.items()))} matches the workload's labels"
    if sidecar.namespace == proxy.namespace:
        return f"namespace-wide Sidecar of {proxy.namespace} (no workloadSelector)"
    return f"the root namespace's ({sidecar.namespace}) default Sidecar"


def _rule_why(rule: DestinationRuleEntry) -> str:
    why = f"host {rule.host}, {_exports(rule.exports)}"
    return why + (f", workloadSelector {_labels(rule.selector)} matches" if rule.selector else "")


def _exports(exports: frozenset[str]) -> str:
    return "exportTo " + ("*" if "*" in exports else ", ".join(sorted(exports)))


def _labels(labels: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels))


def _of(res: Resource, why: str) -> Applied:
    return Applied(res.kind, res.namespace, res.name, res.doc.file, res.doc.line, why)


def _source(src: model.Source, why: str) -> Applied:
    return Applied(src.kind, src.namespace, src.name, src.file, src.line, why)

