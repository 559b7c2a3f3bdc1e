"""The mesh index: everything translate needs about a revision, resolved once and shared by every proxy.

`index` turns the typed resources into lookup tables (services by host, workloads by name and IP, VirtualServices
with resolved hosts and gateways, DestinationRules merged per namespace and host, Gateways, Sidecars) so that
building one proxy's config never scans raw resources again. It is linear in the number of resources.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Protocol, TypeVar

from compiler import mesh_config, model, naming
from compiler.api.destination_rule import Subset, TrafficPolicy
from compiler.api.mesh_config import MeshConfig
from compiler.api.virtual_service import VirtualService
from compiler.diagnostics import Diagnostic
from compiler.inputs import BuildInputs
from compiler.kinds import SERVICE_NAME_LABEL, WORKLOAD_KINDS
from compiler.resources import Resource, ResourceSet
from compiler.reuse import tables
from compiler.reuse.carry import Carry, Tag
from compiler.translate import delegates, locality, specs
from compiler.translate import services as svc
from compiler.translate.delegates import HttpRule, Skipped
from compiler.translate.services import Labels, Service
from compiler.translate.workloads import KubeWorkload, KubeWorkloads

_T = TypeVar("_T")
_MISSING = object()
@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    """A proxy-capable workload: a WorkloadEntry, a Pod, or an EndpointSlice endpoint with a target reference."""

    name: str
    namespace: str
    address: str
    labels: Labels
    injected: bool = True  # False: a Pod Istio's webhook would leave without a sidecar (not listed as a proxy)
    locality: str = ""  # region/zone/subzone: a WorkloadEntry's, else its endpoints' (an EndpointSlice's zone)

    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclasses.dataclass(frozen=True, slots=True)
class VirtualServiceEntry:
    res: Resource
    hosts: tuple[str, ...]  # resolved to FQDNs relative to the VirtualService's namespace
    gateways: frozenset[str]  # "mesh" or "namespace/name"
    exports: frozenset[str]
    label_keys: frozenset[str] = frozenset()  # the label keys its matches' sourceLabels read
    delegates: tuple[int, ...] = ()  # the http routes that delegate to another VirtualService
    # a root's HTTP routes with its delegates' merged in (compiler.translate.delegates), and the routes left out;
    # None: the spec's own routes
    rules: tuple[HttpRule, ...] | None = None
    skipped: tuple[Skipped, ...] = ()

    @property
    def spec(self) -> VirtualService:
        spec: VirtualService = self.res.spec
        return spec

    def visible_in(self, namespace: str) -> bool:
        return "*" in self.exports or namespace in self.exports


@dataclasses.dataclass(frozen=True, slots=True)
class DestinationRuleEntry:
    """One host's DestinationRules of one namespace, merged as Istio merges them (first traffic policy wins,
    subsets appended unless their name is taken)."""

    host: str
    namespace: str
    traffic_policy: TrafficPolicy | None
    subsets: tuple[Subset, ...]
    exports: frozenset[str]
    sources: tuple[model.Source, ...]
    selector: Labels = ()  # workloadSelector.matchLabels: applies only to the workloads it selects

    def subset(self, name: str) -> Subset | None:
        return next((s for s in self.subsets if s.name == name), None)

    def visible_in(self, namespace: str) -> bool:
        return "*" in self.exports or namespace in self.exports


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayEntry:
    res: Resource
    key: str  # namespace/name
    selector: Labels


@dataclasses.dataclass
class Mesh:
    """The indexed revision. Treat as read-only once `index` returns it."""

    resources: ResourceSet
    services: dict[str, list[Service]]  # host -> candidates (one per defining namespace), defining order
    workloads: dict[tuple[str, str], Workload]
    workloads_by_ip: dict[str, list[Workload]]
    virtual_services: list[VirtualServiceEntry]
    destination_rules: dict[str, list[DestinationRuleEntry]]  # namespace -> entries (sorted by host)
    gateways: list[GatewayEntry]
    sidecars: dict[str, list[Resource]]  # namespace -> Sidecars
    instances_by_workload: dict[tuple[str, str], list[tuple[Service, svc.Instance]]]
    diagnostics: list[Diagnostic] = dataclasses.field(default_factory=list)
    # Pods and pod templates (compiler.translate.workloads), and the Services that select each of them
    kube: KubeWorkloads = dataclasses.field(default_factory=lambda: KubeWorkloads((), (), ()))
    kube_services: dict[tuple[str, str, str], list[Service]] = dataclasses.field(default_factory=dict)
    # exact host -> namespace -> entries, and namespace -> wildcard-host entries: DestinationRule lookups per
    # destination must not scan every rule of every namespace (10,000 services x 10,000 rules)
    rules_by_host: dict[str, dict[str, list[DestinationRuleEntry]]] = dataclasses.field(default_factory=dict)
    wildcard_rules: dict[str, list[DestinationRuleEntry]] = dataclasses.field(default_factory=dict)
    rule_label_keys: frozenset[str] = frozenset()  # the label keys the rules' workloadSelectors read

    # label keys some sidecar-side selector reads (DestinationRule workloadSelector, VirtualService match
    # sourceLabels, Sidecar workloadSelector): a sidecar's outbound config depends on its labels only through these
    selector_keys: tuple[str, ...] = ()
    _memo: dict[Hashable, object] = dataclasses.field(default_factory=dict)
    carry: Carry = dataclasses.field(default_factory=Carry)  # what the next revision may reuse (translate.carry)
    inputs: BuildInputs = dataclasses.field(default_factory=BuildInputs)  # trust domain, fetched key sets
    config: MeshConfig = dataclasses.field(default_factory=MeshConfig)  # the istio ConfigMap's (compiler.mesh_config)

    @property
    def root_namespace(self) -> str:
        """MeshConfig rootNamespace: where mesh-wide Sidecars, policies and rules live (istio-system by default)."""
        return self.config.root_namespace

    def memo(self, key: Hashable, make: Callable[[], _T]) -> _T:
        """Per-revision memo for results shared by proxies (the mesh is read-only, so they cannot go stale)."""
        found = self._memo.get(key, _MISSING)
        if found is _MISSING:
            found = self._memo.setdefault(key, make())
        return found  # type: ignore[return-value]

    def outbound_key(self, proxy: model.Proxy) -> tuple[str, tuple[tuple[str, str], ...], locality.Origin]:
        """What a sidecar's outbound half depends on: its namespace, the labels some selector reads and its
        locality (and failoverPriority labels) where locality load balancing may weigh its endpoints."""
        if not self.selector_keys:
            return proxy.namespace, (), self.lb_origin(proxy)
        labels = proxy.label_map()
        return proxy.namespace, tuple((k, labels[k]) for k in self.selector_keys if k in labels), \
            self.lb_origin(proxy)

    def lb_origin(self, proxy: model.Proxy) -> locality.Origin:
        """The proxy's locality and failoverPriority labels when locality load balancing can change a cluster of
        this revision (a rule with outlier detection or a locality setting; MeshConfig distributing traffic by
        locality), else none, so that proxies of every locality share their clusters (compiler.translate.locality)."""
        if not self.memo(("locality-lb",), self._balances_by_locality):
            return locality.Origin()
        keys = self.memo(("failover-keys",), self._failover_keys)
        if not keys:
            return locality.Origin(proxy.locality)
        labels = locality.augmented(proxy.labels, proxy.locality)
        return locality.Origin(proxy.locality, tuple((k, labels[k]) for k in keys if k in labels) if labels else None)

    def _failover_keys(self) -> tuple[str, ...]:
        """The label keys whose proxy value some failoverPriority list of this revision compares."""
        settings = [self.config.locality_lb_setting] + [
            p.load_balancer.locality_lb_setting for entries in self.destination_rules.values() for e in entries
            for policy in (e.traffic_policy, *(s.traffic_policy for s in e.subsets)) if policy is not None
            for p in (policy, *(policy.port_level_settings or ())) if p.load_balancer is not None]
        return tuple(sorted(set().union(*(locality.compared_keys(s.failover_priority or ()) for s in settings
                                          if s is not None))))

    def _balances_by_locality(self) -> bool:
        setting = self.config.locality_lb_setting
        if setting is not None and setting.distribute and setting.enabled is not False:
            return True
        return any(_weighs_locality(policy) for entries in self.destination_rules.values() for e in entries
                   for policy in (e.traffic_policy, *(s.traffic_policy for s in e.subsets)))

    def __post_init__(self) -> None:
        # derived from the rule table alone: a revision that reuses the table reuses these too
        self.rules_by_host, self.wildcard_rules, self.rule_label_keys = self.carry.rule_index(
            self.destination_rules, functools.partial(_rule_index, self.destination_rules))
        self.selector_keys = _selector_keys(self)

    def instances_of(self, proxy: model.Proxy) -> list[tuple[Service, svc.Instance]]:
        """The services a proxy's workload serves, with its instance of each: its endpoints' when the registry has
        some, else those of the Services selecting the Pod or pod template its name resolves to, at the proxy's IP
        (a Deployment's pods' endpoints are the cluster's, yet a pod serves what selects its labels)."""
        found = self.instances_by_workload.get((proxy.namespace, proxy.name))
        if found is not None or not self.kube:
            return found or []
        owner = self.kube.owner(proxy.namespace, proxy.name)
        if owner is None:
            return []
        return self.memo(("kube-instances", owner.kind, owner.namespace, owner.name, proxy.name, proxy.ip),
                         lambda: _kube_instances(self.kube_services.get(_kube_key(owner), ()), owner, proxy))

    def rules_for(self, host: str) -> dict[str, list[DestinationRuleEntry]]:
        """namespace -> the rules there whose host matches `host`, each list in the namespace's host order."""
        found = {ns: list(es) for ns, es in self.rules_by_host.get(host, {}).items()}
        for ns, entries in self.wildcard_rules.items():
            for e in entries:
                if naming.host_matches(e.host, host):
                    found.setdefault(ns, []).append(e)
        return found

    def hosts_in(self, namespaces: set[str]) -> list[str]:
        """Sorted hosts with a definition in one of `namespaces`."""
        by_ns = self.memo((Tag.HOSTS_BY_NAMESPACE,), self._hosts_by_namespace)
        return sorted({h for ns in namespaces for h in by_ns.get(ns, ())})

    def _hosts_by_namespace(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for host, candidates in self.services.items():
            for ns in {s.namespace for s in candidates}:
                out[ns].append(host)
        return dict(out)

    def virtual_services_in(self, namespaces: set[str]) -> list[VirtualServiceEntry]:
        """The VirtualServices of `namespaces`, in `virtual_services` order."""
        by_ns = self.memo((Tag.VS_BY_NAMESPACE,), self._virtual_services_by_namespace)
        picked = [item for ns in namespaces for item in by_ns.get(ns, ())]
        return [vs for _, vs in sorted(picked, key=lambda item: item[0])]

    def _virtual_services_by_namespace(self) -> dict[str, list[tuple[int, VirtualServiceEntry]]]:
        out: dict[str, list[tuple[int, VirtualServiceEntry]]] = defaultdict(list)
        for i, vs in enumerate(self.virtual_services):
            out[vs.res.namespace].append((i, vs))
        return dict(out)

    def service_list(self) -> list[Service]:
        return [s for host in sorted(self.services) for s in self.services[host]]

    def service_for(self, host: str, namespace: str) -> Service | None:
        """The definition of `host` a proxy in `namespace` sees: its own namespace's first, else the first visible."""
        candidates = self.services.get(host, ())
        if len(candidates) == 1:  # the usual case, without a scan
            only = candidates[0]
            return only if only.visible_in(namespace) else None
        own = next((s for s in candidates if s.namespace == namespace and s.visible_in(namespace)), None)
        return own or next((s for s in candidates if s.visible_in(namespace)), None)


def _weighs_locality(policy: TrafficPolicy | None) -> bool:
    if policy is None:
        return False
    return any(p.outlier_detection is not None or (p.load_balancer is not None and p.load_balancer.locality_lb_setting
                                                   is not None) for p in (policy, *(policy.port_level_settings or ())))


def rule_lookups(mesh: Mesh) -> tables.Keyed:
    """The revision's rule tables as the reuse layer compares them with another revision's (which hosts' rules
    changed: compiler.reuse.tables.changed_keys)."""
    return tables.Keyed(mesh.destination_rules, mesh.rules_by_host, mesh.wildcard_rules)


def _rule_index(rules: Mapping[str, list[DestinationRuleEntry]]) -> tuple[
        dict[str, dict[str, list[DestinationRuleEntry]]], dict[str, list[DestinationRuleEntry]], frozenset[str]]:
    by_host: dict[str, dict[str, list[DestinationRuleEntry]]] = {}
    wildcard: dict[str, list[DestinationRuleEntry]] = {}
    keys: set[str] = set()
    for ns, entries in rules.items():
        for e in entries:
            keys.update(k for k, _ in e.selector)
            if e.host.startswith("*"):
                wildcard.setdefault(ns, []).append(e)
            else:
                by_host.setdefault(e.host, {}).setdefault(ns, []).append(e)
    return by_host, wildcard, frozenset(keys)


def _selector_keys(mesh: Mesh) -> tuple[str, ...]:
    keys = set(mesh.rule_label_keys).union(*(vs.label_keys for vs in mesh.virtual_services))
    for sidecars in mesh.sidecars.values():
        for r in sidecars:
            ws = specs.sidecar(r).workload_selector
            keys.update((ws.labels or {}) if ws is not None else ())
    telemetries = mesh.resources.of_kind("Telemetry")
    for telemetry in telemetries:  # a workload's Telemetry sets its outbound access log and tracing
        keys.update(telemetry.spec.selector.match_labels or {} if telemetry.spec.selector is not None else ())
    defaults = mesh.config.default_providers
    if any(t.spec.tracing for t in telemetries) or defaults is not None and defaults.tracing:
        keys.update(naming.TRACING_LABELS)  # the span tags and service name of its tracing
    return tuple(sorted(keys))


def _source_label_keys(spec: VirtualService) -> frozenset[str]:
    keys: set[str] = set()
    for route in (*(spec.http or ()), *(spec.tcp or ()), *(spec.tls or ())):
        for m in route.match or ():
            keys.update(m.source_labels or {})
    return frozenset(keys)


class IndexReuse(Protocol):
    """What the index asks of a reuse layer (compiler.reuse.carry.Carry answers; compiler.translate.hooks has the
    other stages'): each `make()` or `make(document)` when there is none."""

    def registry(self, documents: tuple[Resource, ...], make: Callable[[], _T]) -> _T:
        """The service registry made of these Service, EndpointSlice, WorkloadEntry, ServiceEntry, Pod, pod template
        (Deployment...) and Namespace documents."""
        ...

    def rules(self, documents: tuple[Resource, ...], make: Callable[[], _T]) -> _T:
        """The merged DestinationRule table made of these documents."""
        ...

    def service(self, res: Resource, slices: Sequence[Resource], selected: Sequence[Resource],
                make: Callable[[], _T]) -> _T:
        """A Service with its EndpointSlices and the WorkloadEntries, Pods and pod templates its selector selects."""
        ...

    def service_entry(self, res: Resource, selected: Sequence[Resource], make: Callable[[], _T]) -> _T:
        """The services of a ServiceEntry with the WorkloadEntries its workloadSelector selects."""
        ...

    def destination_rule(self, documents: Sequence[Resource], make: Callable[[], _T]) -> _T:
        """The merged DestinationRules of one namespace, host and selector."""
        ...

    def virtual_services(self, documents: Sequence[Resource], make: Callable[[Resource], _T]) -> list[_T]:
        """Each VirtualService document's entry."""
        ...

    def delegated(self, root: VirtualServiceEntry, found: tuple[VirtualServiceEntry | None, ...],
                  keys: Hashable, make: Callable[[], _T]) -> _T:
        """A root VirtualService with the routes of the delegates `found` (under `keys`) merged in."""
        ...

    def rule_index(self, rules: object, make: Callable[[], _T]) -> _T:
        """The lookups by host, wildcard rules and selector label keys of a rule table."""
        ...


def index(resources: ResourceSet, carry: Carry | None = None, inputs: BuildInputs | None = None) -> Mesh:
    """`carry` (the previous revision's `mesh.carry.next_generation()`) makes unchanged documents give the same
    index objects as before, so per-destination results computed from them are found again (compiler.reuse.
    carry); it must come from a build with the same `inputs`."""
    return _index(resources, carry if carry is not None else Carry(), inputs or BuildInputs())


_KUBE_KINDS = ("Pod", "Namespace", *WORKLOAD_KINDS)
_REGISTRY_KINDS = ("Service", "EndpointSlice", "WorkloadEntry", "ServiceEntry", *_KUBE_KINDS)


@dataclasses.dataclass(frozen=True, slots=True)
class _Registry:
    services: dict[str, list[Service]]
    workloads: dict[tuple[str, str], Workload]
    by_ip: dict[str, list[Workload]]
    instances: dict[tuple[str, str], list[tuple[Service, svc.Instance]]]
    kube: KubeWorkloads
    kube_services: dict[tuple[str, str, str], list[Service]]


def _kube_key(w: KubeWorkload) -> tuple[str, str, str]:
    return (w.kind, w.namespace, w.name)


def _kube_instances(services: Sequence[Service], owner: KubeWorkload,
                    proxy: model.Proxy) -> list[tuple[Service, svc.Instance]]:
    return [(s, svc.Instance(proxy.ip, tuple((p.number, owner.target(p)) for p in s.ports), owner.labels,
                             (proxy.namespace, proxy.name), service_account=owner.service_account))
            for s in services]


def _index(resources: ResourceSet, carry: Carry, inputs: BuildInputs) -> Mesh:
    # The registry and the rules are rebuilt only when one of their documents changed: unchanged documents are the
    # same Resource objects (pipeline.CheckCache), so a commit that edits a VirtualService reuses them whole.
    # MeshConfig's default exportTo is part of each entry: a MeshConfig change starts a build cold (compiler.build)
    config = mesh_config.config_of(resources.of_kind("ConfigMap"))
    registry = carry.registry(tuple(r for k in _REGISTRY_KINDS for r in resources.of_kind(k)),
                              lambda: _registry(resources, carry, config.service_exports))
    rules = carry.rules(tuple(resources.of_kind("DestinationRule")),
                        lambda: _destination_rules(resources, carry, config.destination_rule_exports))
    entries = carry.virtual_services(resources.of_kind("VirtualService"),
                                     functools.partial(_virtual_service, config.virtual_service_exports))
    return Mesh(
        resources=resources, services=registry.services, workloads=registry.workloads,
        workloads_by_ip=registry.by_ip, virtual_services=_with_delegates(carry, entries),
        destination_rules=rules, gateways=_gateways(resources),
        sidecars=_group(resources.of_kind("Sidecar")), instances_by_workload=registry.instances, carry=carry,
        kube=registry.kube, kube_services=registry.kube_services, inputs=inputs, config=config,
    )


def _registry(resources: ResourceSet, carry: IndexReuse, exports: Sequence[str]) -> _Registry:
    """`exports`: the exportTo of a Service or ServiceEntry that gives none (MeshConfig's default)."""
    kube = KubeWorkloads(resources.of_kind("Pod"), [r for k in WORKLOAD_KINDS for r in resources.of_kind(k)],
                         resources.of_kind("Namespace"))
    selecting: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)  # -> (host, namespace)
    service_map = svc.resolve_aliases(
        _services(resources, svc.WorkloadIndex(resources.of_kind("WorkloadEntry")), carry, kube, selecting, exports))
    workloads = _workloads(resources, service_map, kube)
    by_ip: dict[str, list[Workload]] = defaultdict(list)
    for wl in workloads.values():
        by_ip[wl.address].append(wl)
    instances: dict[tuple[str, str], list[tuple[Service, svc.Instance]]] = defaultdict(list)
    for candidates in service_map.values():
        for service in candidates:
            for inst in service.instances:
                if inst.workload is not None:
                    instances[inst.workload].append((service, inst))
    by_workload = {key: [s for host, ns in refs for s in service_map.get(host, ()) if s.namespace == ns]
                   for key, refs in selecting.items()}
    return _Registry(service_map, workloads, dict(by_ip), dict(instances), kube, by_workload)


def _group(items: list[Resource]) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = defaultdict(list)
    for r in items:
        out[r.namespace].append(r)
    return dict(out)


def _services(resources: ResourceSet, entries: svc.WorkloadIndex, carry: IndexReuse, kube: KubeWorkloads,
              selecting: dict[tuple[str, str, str], list[tuple[str, str]]],
              exports: Sequence[str]) -> dict[str, list[Service]]:
    """`selecting` gets, for each Pod and pod template, the Services whose selector picks it."""
    slices: dict[tuple[str, str], list[Resource]] = defaultdict(list)
    for s in resources.of_kind("EndpointSlice"):
        owner = s.labels.get(SERVICE_NAME_LABEL)
        if owner:
            slices[(s.namespace, owner)].append(s)
    out: dict[str, list[Service]] = defaultdict(list)
    for r in resources.of_kind("Service"):
        selector = specs.service(r).selector
        selected = entries.select(r.namespace, selector)
        own = slices.get((r.namespace, r.name), ())
        picked = kube.select(r.namespace, selector)
        pods = {w.name: svc.PodFacts(w.labels, w.service_account) for w in picked if w.kind == "Pod"}
        service = carry.service(r, own, [*selected, *(w.res for w in picked)], functools.partial(
            svc.kube_service, r, own, selected, pods, [w.service_account for w in picked], exports))
        out[service.host].append(service)
        for w in picked:
            selecting[_kube_key(w)].append((service.host, service.namespace))
    for r in resources.of_kind("ServiceEntry"):
        ws = specs.service_entry(r).workload_selector
        selected = entries.select(r.namespace, ws.labels if ws is not None else None)
        for service in carry.service_entry(r, selected, functools.partial(svc.service_entries, r, selected,
                                                                          exports)):
            if all(s.namespace != service.namespace for s in out[service.host]):
                out[service.host].append(service)
    return dict(out)


def _workloads(resources: ResourceSet, service_map: Mapping[str, list[Service]],
               kube: KubeWorkloads) -> dict[tuple[str, str], Workload]:
    """WorkloadEntries, then Pods (their labels over what their endpoints carry), then the other endpoints that
    name a workload."""
    out: dict[tuple[str, str], Workload] = {}
    for r in resources.of_kind("WorkloadEntry"):
        spec = specs.workload_entry(r)
        if spec.address:
            out[(r.namespace, r.name)] = Workload(r.name, r.namespace, spec.address,
                                                  svc.sorted_labels(svc.workload_entry_labels(r)),
                                                  locality=spec.locality or "")
    pods: dict[tuple[str, str], tuple[str, dict[str, str], str]] = {}
    for host in sorted(service_map):
        for service in service_map[host]:
            for inst in service.instances:
                if inst.workload is None or inst.workload in out:
                    continue
                _, labels, _ = pods.setdefault(inst.workload, (inst.address, {}, inst.locality))
                labels.update(dict(inst.labels))
    for key, pod in kube.pods.items():
        address = pod.address or (pods[key][0] if key in pods else "")
        if key not in out and address:
            out[key] = Workload(pod.name, pod.namespace, address, pod.labels, pod.injected,
                                pods[key][2] if key in pods else "")
    for (ns, name), (address, labels, where) in pods.items():
        out.setdefault((ns, name), Workload(name, ns, address, svc.sorted_labels(labels), locality=where))
    return dict(sorted(out.items()))


def _virtual_service(exports: Sequence[str], res: Resource) -> VirtualServiceEntry:
    """`exports`: the exportTo of a VirtualService that gives none (MeshConfig's default)."""
    spec = specs.virtual_service(res)
    hosts = tuple(naming.resolve_host(h, res.namespace) for h in spec.hosts or ())
    gateways = frozenset(naming.resolve_gateway(g, res.namespace) for g in spec.gateways or (naming.MESH_GATEWAY,))
    return VirtualServiceEntry(res, hosts, gateways, svc.exports(spec.export_to or exports, res.namespace),
                               _source_label_keys(spec),
                               tuple(i for i, http in enumerate(spec.http or ()) if http.delegate is not None))


def _with_delegates(carry: IndexReuse, entries: list[VirtualServiceEntry]) -> list[VirtualServiceEntry]:
    """Root VirtualServices with their delegates' routes merged in; merged again only when the root or one of its
    delegates is a new entry (carried by identity: an unchanged document's entry is the same object)."""
    if not any(e.delegates for e in entries):
        return entries
    hostless = {(e.res.namespace, e.res.name): e for e in entries if not e.spec.hosts}
    out = []
    for e in entries:
        if not e.delegates:
            out.append(e)
            continue
        keys = tuple(sorted({delegates.delegate_key(e.res, i) for i in e.delegates}))
        found = tuple(hostless.get(k) for k in keys)
        out.append(carry.delegated(e, found, keys, functools.partial(_merged, e, keys, found)))
    return out


def _merged(root: VirtualServiceEntry, keys: tuple[tuple[str, str], ...],
            found: tuple[VirtualServiceEntry | None, ...]) -> VirtualServiceEntry:
    targets = {k: d.res if d is not None else None for k, d in zip(keys, found, strict=True)}
    exported = {k: d is not None and d.visible_in(root.res.namespace) for k, d in zip(keys, found, strict=True)}
    rules, skipped = delegates.merged(root.res, targets, exported)
    label_keys = root.label_keys.union(*(m.source_labels or {} for r in rules for m in r.http.match or ()))
    return dataclasses.replace(root, rules=rules, skipped=skipped, label_keys=frozenset(label_keys))


def _destination_rules(resources: ResourceSet, carry: IndexReuse,
                       exports: Sequence[str]) -> dict[str, list[DestinationRuleEntry]]:
    """`exports`: the exportTo of a DestinationRule that gives none (MeshConfig's default)."""
    groups: dict[tuple[str, str, Labels], list[Resource]] = defaultdict(list)
    for r in resources.of_kind("DestinationRule"):
        spec = specs.destination_rule(r)
        host = naming.resolve_host(spec.host, r.namespace)
        selector = svc.sorted_labels(spec.workload_selector.match_labels if spec.workload_selector else None)
        groups[(r.namespace, host, selector)].append(r)
    out: dict[str, list[DestinationRuleEntry]] = defaultdict(list)
    for (ns, host, selector), rules in sorted(groups.items()):
        out[ns].append(carry.destination_rule(rules, functools.partial(_merged_rule, rules, host, selector,
                                                                       exports)))
    return dict(out)


def _merged_rule(rules: list[Resource], host: str, selector: Labels, exports: Sequence[str]) -> DestinationRuleEntry:
    found: DestinationRuleEntry | None = None
    for r in rules:
        found = _merge_rule(found, r, host, selector, exports)
    assert found is not None
    return found


def _merge_rule(found: DestinationRuleEntry | None, res: Resource, host: str, selector: Labels,
                exports: Sequence[str]) -> DestinationRuleEntry:
    spec = specs.destination_rule(res)
    source = svc.source_of(res)
    if found is None:
        return DestinationRuleEntry(host, res.namespace, spec.traffic_policy, tuple(spec.subsets or ()),
                                    svc.exports(spec.export_to or exports, res.namespace), (source,), selector)
    taken = {s.name for s in found.subsets}
    subsets = found.subsets + tuple(s for s in spec.subsets or () if s.name not in taken)
    policy = found.traffic_policy if found.traffic_policy is not None else spec.traffic_policy
    return dataclasses.replace(found, traffic_policy=policy, subsets=subsets, sources=found.sources + (source,))


def _gateways(resources: ResourceSet) -> list[GatewayEntry]:
    return [GatewayEntry(r, f"{r.namespace}/{r.name}", svc.sorted_labels(specs.gateway(r).selector))
            for r in resources.of_kind("Gateway")]
