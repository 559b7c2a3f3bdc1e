"""The service registry as the analyzers see it: every host that Services and ServiceEntries define.

Istio's analyzers resolve destination and DestinationRule hosts against Kubernetes Services
(`<name>.<ns>.svc.cluster.local`, visibility from the `networking.istio.io/exportTo` annotation) and ServiceEntry
hosts (short names qualified with the entry's namespace, visibility from `exportTo`), wildcards last
(istio/istio pkg/config/analysis/analyzers/util/service_lookup.go). This module builds that index once per run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from compiler import mesh_config
from compiler.analyze import hosts
from compiler.resources import Resource, ResourceSet


@dataclasses.dataclass(frozen=True, slots=True)
class PortInfo:
    number: int
    name: str
    protocol: str  # as written (ServiceEntry) or the Kubernetes L4 protocol (Service)


@dataclasses.dataclass(frozen=True, slots=True)
class HostEntry:
    """One host defined by one Service or ServiceEntry."""

    host: str  # FQDN or wildcard
    resource: Resource
    ports: tuple[PortInfo, ...]
    scopes: frozenset[str]  # namespaces that see it, or {"*"}
    selector: Mapping[str, str] | None  # Service selector / ServiceEntry workloadSelector labels

    def visible_from(self, namespace: str) -> bool:
        return hosts.visible(self.scopes, namespace)


class Registry:
    def __init__(self, entries: Iterable[HostEntry]) -> None:
        self.entries = list(entries)
        self._exact: dict[str, list[HostEntry]] = {}
        self._wildcards: list[HostEntry] = []
        self._answers: dict[tuple[str, frozenset[str]], list[HostEntry]] = {}
        for entry in self.entries:
            if hosts.is_wildcard(entry.host):
                self._wildcards.append(entry)
            else:
                self._exact.setdefault(entry.host, []).append(entry)

    def lookup(self, host: str, namespaces: Iterable[str]) -> list[HostEntry]:
        """Entries defining `host` (an FQDN or wildcard) visible from any of `namespaces`; exact ones win.
        Answers are remembered: analyzers ask the same question for every route to a host."""
        spaces = frozenset(namespaces)
        key = (host, spaces)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = self._lookup(host, spaces)
        return found

    def _lookup(self, host: str, spaces: frozenset[str]) -> list[HostEntry]:
        exact = [e for e in self._exact.get(host, []) if any(e.visible_from(ns) for ns in spaces)]
        if exact:
            return exact
        return [e for e in self._wildcards
                if hosts.subset_of(host, e.host) and any(e.visible_from(ns) for ns in spaces)]

    def provider_problem(self, service: str, port: int | None = None) -> str | None:
        """What keeps a MeshConfig provider's `service` from naming one service of the tree (and `port` one of its
        ports), as Pilot's model.LookupCluster resolves it: `NAMESPACE/HOSTNAME`, or a HOSTNAME defined in one
        namespace only. None when it names one."""
        namespace, _, host = service.rpartition("/")
        defined = [e for e in self._exact.get(host, []) if not namespace or e.resource.namespace == namespace]
        found = {e.resource.namespace for e in defined}
        if not found:
            return f'names service "{service}", which is not a Service or ServiceEntry host of the tree'
        if len(found) > 1:
            return (f'names service "{host}", defined in several namespaces ({", ".join(sorted(found))}): write '
                    "NAMESPACE/HOSTNAME")
        if port is not None and all(p.number != port for e in defined for p in e.ports):
            ports = sorted({p.number for e in defined for p in e.ports})
            return f'names port {port} of service "{service}", which has ports {ports}'
        return None

    def overlapping(self, host: str, namespaces: Iterable[str]) -> list[HostEntry]:
        """Entries whose host can denote a host in common with `host` (for wildcard DestinationRule hosts)."""
        spaces = list(namespaces)
        return [e for e in self.entries
                if hosts.matches(host, e.host) and any(e.visible_from(ns) for ns in spaces)]


def build(resources: ResourceSet) -> Registry:
    """Visibility without exportTo is MeshConfig's defaultServiceExportTo, as Pilot sees it (the analyzers of
    Istio read `*`: with a default, meshward's findings are about what Pilot serves)."""
    default = mesh_config.config_of(resources.of_kind("ConfigMap")).service_exports
    entries = [*_from_services(resources.of_kind("Service"), default),
               *_from_service_entries(resources.of_kind("ServiceEntry"), default)]
    return Registry(entries)


def _from_services(services: Iterable[Resource], default: Sequence[str]) -> Iterable[HostEntry]:
    for svc in services:
        ports = tuple(PortInfo(p.port, p.name or "", p.protocol or "TCP") for p in svc.spec.ports or ())
        yield HostEntry(host=hosts.to_fqdn(svc.name, svc.namespace), resource=svc, ports=ports,
                        scopes=hosts.service_export_scopes(svc.annotations, svc.namespace, default),
                        selector=svc.spec.selector)


def _from_service_entries(entries: Iterable[Resource], default: Sequence[str]) -> Iterable[HostEntry]:
    for se in entries:
        ports = tuple(PortInfo(p.number, p.name, p.protocol or "") for p in se.spec.ports or ())
        scopes = hosts.export_scopes(se.spec.export_to or default, se.namespace)
        selector = se.spec.workload_selector.labels if se.spec.workload_selector else None
        for host in se.spec.hosts:
            yield HostEntry(host=hosts.to_fqdn(host, se.namespace), resource=se, ports=ports, scopes=scopes,
                            selector=selector)


def port_numbers(entries: Iterable[HostEntry]) -> list[int]:
    """The distinct port numbers of a host, over all the entries that define it (Istio merges them)."""
    return sorted({p.number for e in entries for p in e.ports})
