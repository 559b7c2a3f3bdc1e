"""The service registry of one revision: hosts, their ports and endpoints, from Services, EndpointSlices,
ServiceEntries and WorkloadEntries, resolved the way Istio's service registries resolve them.

Decisions (documented in the translate package docstring too):
- a Kubernetes Service is `<name>.<ns>.svc.cluster.local`; its endpoints come from the EndpointSlices labeled
  `kubernetes.io/service-name` and from the WorkloadEntries its selector picks in its namespace (Istio does both);
- an EndpointSlice endpoint carries the Service's selector labels plus the slice's own labels, minus the
  `*kubernetes.io/*` bookkeeping ones (a slice per version, labeled `version: v1`, gives subsets their endpoints);
- endpoints that are not ready are left out (Pilot does not send them by default).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence

from compiler import model, naming
from compiler.api.kube import ServiceSpec
from compiler.api.service_entry import ServiceEntry
from compiler.resources import Resource
from compiler.translate import specs

Labels = tuple[tuple[str, str], ...]
EXPORT_ANNOTATION = "networking.istio.io/exportTo"
# a Service or ServiceEntry with this label is skipped when a gateway server's port is translated to a target port
# (pilot/pkg/model/gateway.go resolvePorts, DisableGatewayPortTranslationLabel)
NO_GATEWAY_PORT_TRANSLATION = "experimental.istio.io/disable-gateway-port-translation"


class Resolution(enum.StrEnum):
    EDS = "EDS"  # Istio's ClientSideLB: Kubernetes services, STATIC service entries
    DNS = "DNS"
    DNS_ROUND_ROBIN = "DNS_ROUND_ROBIN"
    PASSTHROUGH = "PASSTHROUGH"  # resolution NONE without endpoints: original destination


@dataclasses.dataclass(frozen=True, slots=True)
class Port:
    name: str
    number: int
    protocol: model.Protocol
    target_port: int | str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Instance:
    """One endpoint address of a service, with the endpoint port for each service port number."""

    address: str
    ports: tuple[tuple[int, int], ...]
    labels: Labels = ()
    workload: tuple[str, str] | None = None  # (namespace, name) of the workload behind it
    locality: str = ""
    weight: int = 1
    service_account: str = ""  # a WorkloadEntry's, or the Pod's behind an EndpointSlice endpoint

    def port_for(self, service_port: int) -> int | None:
        return next((p for s, p in self.ports if s == service_port), None)

    def selected_by(self, selector: Mapping[str, str]) -> bool:
        mine = dict(self.labels)
        return all(mine.get(k) == v for k, v in selector.items())


@dataclasses.dataclass(frozen=True, slots=True)
class Service:
    host: str
    namespace: str
    ports: tuple[Port, ...]
    resolution: Resolution
    exports: frozenset[str]  # namespaces this service is visible in; "*" for all
    source: model.Source
    mesh_external: bool = False
    addresses: tuple[str, ...] = ()
    instances: tuple[Instance, ...] = ()
    dns_host: str = ""  # for DNS resolution without endpoints (ExternalName, DNS service entries)
    gateway_port_translation: bool = True  # False: NO_GATEWAY_PORT_TRANSLATION
    external_name: str = ""  # an ExternalName Service's externalName
    # an ExternalName Service whose name resolves to a service of the mesh is an alias of it (`resolve_aliases`):
    # no clusters or listeners of its own, routes to it reach the concrete service's clusters
    alias_of: str = ""
    aliases: tuple[str, ...] = ()  # on a concrete service: the hosts of its aliases
    # (namespace, service account) of the Kubernetes workloads its selector picks (their endpoints may be the
    # cluster's alone): their SPIFFE ids, in the build's trust domain, are among the SANs clients verify
    service_accounts: tuple[tuple[str, str], ...] = ()

    def port(self, number: int) -> Port | None:
        return next((p for p in self.ports if p.number == number), None)

    def visible_in(self, namespace: str) -> bool:
        return "*" in self.exports or namespace in self.exports


# -- small helpers -----------------------------------------------------------------------------------------------


def source_of(res: Resource) -> model.Source:
    return model.Source(res.kind, res.namespace, res.name, res.doc.file, res.doc.line)


def exports(export_to: Sequence[str], owner_namespace: str) -> frozenset[str]:
    """Istio exportTo (the resource's, else MeshConfig's default for its kind): `.` is the owner's namespace;
    `~` is nowhere."""
    return frozenset(owner_namespace if e == "." else e for e in export_to if e != "~")


_PROTOCOL_PREFIXES = {
    "http": model.Protocol.HTTP, "http2": model.Protocol.HTTP2, "grpc": model.Protocol.GRPC,
    "grpc-web": model.Protocol.HTTP, "https": model.Protocol.HTTPS, "tls": model.Protocol.TLS,
    "tcp": model.Protocol.TCP, "mongo": model.Protocol.TCP, "redis": model.Protocol.TCP,
    "mysql": model.Protocol.TCP, "h2c": model.Protocol.HTTP2, "ws": model.Protocol.HTTP,
}
_APP_PROTOCOLS = {"kubernetes.io/h2c": model.Protocol.HTTP2, "kubernetes.io/ws": model.Protocol.HTTP,
                  "kubernetes.io/wss": model.Protocol.HTTPS}


def parse_protocol(text: str | None) -> model.Protocol | None:
    """An explicit protocol (ServiceEntry/Gateway/Sidecar `protocol`, Kubernetes `appProtocol`)."""
    if not text:
        return None
    lowered = text.lower()
    return _APP_PROTOCOLS.get(lowered) or _PROTOCOL_PREFIXES.get(lowered)


def protocol_from_name(name: str | None) -> model.Protocol:
    """Istio's port naming convention: `<protocol>[-<suffix>]`."""
    if not name:
        return model.Protocol.UNKNOWN
    lowered = name.lower()
    if lowered.startswith("grpc-web"):
        return model.Protocol.HTTP
    return _PROTOCOL_PREFIXES.get(lowered.split("-", 1)[0], model.Protocol.UNKNOWN)


def clean_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if "kubernetes.io/" not in k}


def sorted_labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


class WorkloadIndex:
    """WorkloadEntries by namespace and label, so that selecting for 10,000 services stays linear."""

    def __init__(self, entries: Iterable[Resource]) -> None:
        self._by_label: dict[tuple[str, str, str], list[Resource]] = {}
        for r in entries:
            for k, v in workload_entry_labels(r).items():
                self._by_label.setdefault((r.namespace, k, v), []).append(r)

    def select(self, namespace: str, selector: Mapping[str, str] | None) -> list[Resource]:
        """Entries of `namespace` whose labels include `selector`; none for an empty selector (Istio)."""
        if not selector:
            return []
        (k0, v0), *rest = sorted(selector.items())
        candidates = self._by_label.get((namespace, k0, v0), [])
        return [r for r in candidates if all(workload_entry_labels(r).get(k) == v for k, v in rest)]


# -- Kubernetes services ---------------------------------------------------------------------------------------


def kube_ports(spec: ServiceSpec) -> tuple[Port, ...]:
    out = []
    for p in spec.ports or ():
        proto = parse_protocol(p.app_protocol) or protocol_from_name(p.name)
        out.append(Port(p.name or "", p.port, proto, p.target_port))
    return tuple(out)


@dataclasses.dataclass(frozen=True, slots=True)
class PodFacts:
    """What an endpoint's Pod tells about it: Istio's endpoint labels are the pod's, its identity the pod's
    service account (pilot/pkg/serviceregistry/kube/controller/endpointslice.go buildIstioEndpoint)."""

    labels: Labels
    service_account: str


def slice_instances(svc_ports: Sequence[Port], base_labels: Mapping[str, str], slice_res: Resource,
                    pods: Mapping[str, PodFacts] | None = None) -> list[Instance]:
    """`pods`: the Pods of the slice's namespace the endpoints may name (by targetRef); an endpoint of a Pod not
    known carries the Service's selector and the slice's labels."""
    body = specs.endpoint_slice(slice_res)
    by_name = {(p.name or ""): p.port for p in body.ports or () if p.port}
    port_map = tuple((sp.number, by_name[sp.name]) for sp in svc_ports if sp.name in by_name)
    labels = sorted_labels({**base_labels, **clean_labels(slice_res.labels)})
    out: list[Instance] = []
    for ep in body.endpoints or ():
        if ep.conditions is not None and ep.conditions.ready is False:
            continue
        ref = ep.target_ref
        workload = (ref.namespace or slice_res.namespace, ref.name) if ref is not None and ref.name else None
        locality = f"/{ep.zone}" if ep.zone else ""
        pod = pods.get(ref.name) if pods and ref is not None and ref.name and ref.kind in (None, "Pod") else None
        if pod is None:
            out.extend(Instance(a, port_map, labels, workload, locality) for a in ep.addresses)
        else:
            out.extend(Instance(a, port_map, pod.labels, workload, locality, service_account=pod.service_account)
                       for a in ep.addresses)
    return out


def workload_entry_ports(svc_ports: Sequence[Port], entry_ports: Mapping[str, int] | None) -> tuple[tuple[int, int], ...]:
    """Which port of a WorkloadEntry serves each service port: by port name, else targetPort, else the same number."""
    named = entry_ports or {}
    out = []
    for sp in svc_ports:
        if sp.name in named:
            out.append((sp.number, named[sp.name]))
        elif isinstance(sp.target_port, str) and sp.target_port in named:
            out.append((sp.number, named[sp.target_port]))
        elif isinstance(sp.target_port, int) and sp.target_port:
            out.append((sp.number, sp.target_port))
        else:
            out.append((sp.number, sp.number))
    return tuple(out)


def workload_entry_labels(res: Resource) -> dict[str, str]:
    return dict(specs.workload_entry(res).labels or res.labels or {})


def workload_entry_instance(svc_ports: Sequence[Port], res: Resource) -> Instance | None:
    spec = specs.workload_entry(res)
    if not spec.address:
        return None
    return Instance(spec.address, workload_entry_ports(svc_ports, spec.ports),
                    sorted_labels(workload_entry_labels(res)), (res.namespace, res.name), spec.locality or "",
                    spec.weight or 1, spec.service_account or "")


def kube_service(res: Resource, slices: Iterable[Resource], entries: Iterable[Resource],
                 pods: Mapping[str, PodFacts], accounts: Iterable[str], default_exports: Sequence[str]) -> Service:
    """`entries`: the WorkloadEntries the Service's selector picks; `pods`: the Pods it picks, by name; `accounts`:
    the service accounts of the Pods and pod templates it picks (its workloads' identities, as Pilot's
    kube controller gathers them for a Service); `default_exports`: its exportTo without the annotation."""
    spec = specs.service(res)
    ports = kube_ports(spec)
    selector = dict(spec.selector or {})
    instances: list[Instance] = []
    for slice_res in slices:
        instances.extend(slice_instances(ports, selector, slice_res, pods))
    for entry in entries:  # already selected by the Service's selector (WorkloadIndex)
        inst = workload_entry_instance(ports, entry)
        if inst is not None:
            instances.append(inst)
    export_text = res.annotations.get(EXPORT_ANNOTATION, "")
    export_list = [e.strip() for e in export_text.split(",") if e.strip()] or default_exports
    external = spec.type == "ExternalName" and bool(spec.external_name)
    addresses = tuple(a for a in (spec.cluster_ips or ([spec.cluster_ip] if spec.cluster_ip else [])) if a != "None")
    return Service(
        host=naming.service_host(res.name, res.namespace), namespace=res.namespace, ports=ports,
        resolution=Resolution.DNS if external else Resolution.EDS, exports=exports(export_list, res.namespace),
        source=source_of(res), mesh_external=external, addresses=addresses,
        instances=tuple(sorted(instances, key=_instance_key)), dns_host=spec.external_name or "" if external else "",
        gateway_port_translation=NO_GATEWAY_PORT_TRANSLATION not in res.labels,
        external_name=(spec.external_name or "").lower().rstrip(".") if external else "",
        service_accounts=tuple(sorted({(res.namespace, a) for a in accounts})),
    )


def resolve_aliases(service_map: dict[str, list[Service]]) -> dict[str, list[Service]]:
    """Current Istio converts an ExternalName Service into an alias (pilot/pkg/serviceregistry/kube/conversion.go:
    resolution Alias) and resolves aliases through chains, a loop resolving nowhere (pilot/pkg/model/
    push_context.go resolveServiceAliases): the concrete service lists its aliases, whose hosts its virtual host
    answers, and a route to an alias goes to the concrete service's cluster (pilot/pkg/networking/core/route/
    route.go GetDestinationCluster). An ExternalName that resolves to no service of the mesh keeps its DNS cluster
    (Pilot builds nothing for it; README's differences)."""
    raw = {host: found[0].external_name for host, found in service_map.items() if found[0].external_name}
    if not raw:
        return service_map
    concrete: dict[str, str] = {}
    for alias, target in raw.items():
        seen = {alias}
        while target in raw and target not in seen:
            seen.add(target)
            target = raw[target]
        if target not in raw and target in service_map:
            concrete[alias] = target
    out = dict(service_map)
    for alias, target in concrete.items():
        out[alias] = [dataclasses.replace(s, alias_of=target, dns_host="") for s in service_map[alias]]
    for target in set(concrete.values()):
        aliases = tuple(sorted(a for a, t in concrete.items() if t == target))
        out[target] = [dataclasses.replace(s, aliases=aliases) for s in service_map[target]]
    return out


# -- service entries -------------------------------------------------------------------------------------------


_SE_RESOLUTION = {None: Resolution.PASSTHROUGH, "NONE": Resolution.PASSTHROUGH, "STATIC": Resolution.EDS,
                  "DNS": Resolution.DNS, "DNS_ROUND_ROBIN": Resolution.DNS_ROUND_ROBIN,
                  "DYNAMIC_DNS": Resolution.DNS}


def se_ports(spec: ServiceEntry) -> tuple[Port, ...]:
    return tuple(Port(p.name, p.number, parse_protocol(p.protocol) or protocol_from_name(p.name), p.target_port)
                 for p in spec.ports or ())


def se_instances(res: Resource, ports: Sequence[Port], entries: Iterable[Resource]) -> list[Instance]:
    spec = specs.service_entry(res)
    out: list[Instance] = []
    for ep in spec.endpoints or ():
        if ep.address:
            out.append(Instance(ep.address, workload_entry_ports(ports, ep.ports), sorted_labels(ep.labels), None,
                                ep.locality or "", ep.weight or 1))
    for entry in entries:  # already selected by the workloadSelector (WorkloadIndex)
        inst = workload_entry_instance(ports, entry)
        if inst is not None:
            out.append(inst)
    return out


def service_entries(res: Resource, entries: Iterable[Resource], default_exports: Sequence[str]) -> list[Service]:
    """`entries`: the WorkloadEntries the workloadSelector picks; `default_exports`: the exportTo when it gives
    none."""
    spec = specs.service_entry(res)
    ports = se_ports(spec)
    instances = se_instances(res, ports, entries)
    resolution = _SE_RESOLUTION.get(spec.resolution, Resolution.PASSTHROUGH)
    if resolution is Resolution.PASSTHROUGH and instances:
        resolution = Resolution.EDS  # endpoints given: balance over them (no traffic capture to pass through)
    base = Service(host="", namespace=res.namespace, ports=ports, resolution=resolution,
                   exports=exports(spec.export_to or default_exports, res.namespace), source=source_of(res),
                   mesh_external=spec.location != "MESH_INTERNAL", addresses=tuple(spec.addresses or ()),
                   instances=tuple(sorted(instances, key=_instance_key)),
                   gateway_port_translation=NO_GATEWAY_PORT_TRANSLATION not in res.labels)
    dns = resolution in (Resolution.DNS, Resolution.DNS_ROUND_ROBIN) and not instances
    return [dataclasses.replace(base, host=h.lower(), dns_host=h.lower() if dns else "") for h in spec.hosts]


def _instance_key(i: Instance) -> tuple[str, tuple[tuple[int, int], ...], str]:
    return (i.address, i.ports, i.workload[1] if i.workload else "")
