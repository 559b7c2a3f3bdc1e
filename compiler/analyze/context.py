"""What every analyzer gets: the resources of one revision and the indexes built from them once per run.

Indexes are built lazily, on first use, so that a run over a large tree stays linear: an analyzer that needs "the
WorkloadEntries of namespace N with label a=b" asks an index instead of scanning every WorkloadEntry. A context can
be narrowed to some resources of some kinds (`restricted`) for incremental runs; narrowed contexts share the
indexes, which always cover the whole revision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from compiler import mesh_config
from compiler.analyze import hosts, registry, routes
from compiler.analyze.workloads import Workload
from compiler.analyze.workloads import build as build_workloads
from compiler.api.mesh_config import MeshConfig
from compiler.diagnostics import Diagnostic
from compiler.kinds import SERVICE_NAME_LABEL, WORKLOAD_KINDS
from compiler.resources import Resource, ResourceSet

Labels = Mapping[str, str]
T = TypeVar("T")
MEMO = "_memo"  # the `indexes` entry holding the per-resource memos (see Context.memoized)


class LabelIndex:
    """Resources of one kind by namespace and by (label, value), each list in the ResourceSet's order."""

    def __init__(self, resources: Iterable[Resource], labels_of: Callable[[Resource], Labels]) -> None:
        self._by_pair: dict[tuple[str, str, str], list[tuple[Resource, Labels]]] = {}
        for res in resources:
            labels = labels_of(res)
            for key, value in labels.items():
                self._by_pair.setdefault((res.namespace, key, value), []).append((res, labels))

    def selected(self, namespace: str, selector: Labels) -> list[tuple[Resource, Labels]]:
        """(resource, labels) in `namespace` whose labels include every pair of a non-empty `selector`."""
        postings = [self._by_pair.get((namespace, k, v), []) for k, v in selector.items()]
        shortest = min(postings, key=len)
        pairs = selector.items()  # label values are strings: `<=` is the pairwise test, C-level
        return [(res, labels) for res, labels in shortest if pairs <= labels.items()]


def workload_labels(workload: Resource) -> Labels:
    """A WorkloadEntry's labels: its spec's, else its metadata's (as the service registry reads them)."""
    return dict(workload.spec.labels or workload.labels or {})


def _slices_by_service(resources: ResourceSet) -> dict[tuple[str, str], list[Resource]]:
    out: dict[tuple[str, str], list[Resource]] = {}
    for slice_ in resources.of_kind("EndpointSlice"):
        service = slice_.labels.get(SERVICE_NAME_LABEL)
        if service is not None:
            out.setdefault((slice_.namespace, service), []).append(slice_)
    return out


def _subsets_by_host(resources: ResourceSet) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for dr in resources.of_kind("DestinationRule"):
        names = out.setdefault(hosts.to_fqdn(dr.spec.host, dr.namespace), set())
        names.update(s.name for s in dr.spec.subsets or ())
    return out


# name -> (the kinds it is built from, builder): an index is reusable while those kinds' resources are unchanged
INDEXES: dict[str, tuple[tuple[str, ...], Callable[[ResourceSet], Any]]] = {
    "mesh_config": (("ConfigMap",), lambda rs: mesh_config.config_of(rs.of_kind("ConfigMap"))),
    "registry": (("Service", "ServiceEntry", "ConfigMap"), registry.build),
    "workloads": (("WorkloadEntry",), lambda rs: LabelIndex(rs.of_kind("WorkloadEntry"), workload_labels)),
    "slices_by_service": (("EndpointSlice",), _slices_by_service),
    "subsets_by_host": (("DestinationRule",), _subsets_by_host),
    "pods": (("Pod", *WORKLOAD_KINDS, "WorkloadEntry", "Namespace"), build_workloads),
}


@dataclasses.dataclass(frozen=True)
class Context:
    resources: ResourceSet
    only: Mapping[str, Sequence[Resource]] = dataclasses.field(default_factory=dict)  # narrowed kinds
    indexes: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)  # shared, lazy

    def _index(self, name: str) -> Any:
        found = self.indexes.get(name)
        if found is None:
            found = self.indexes[name] = INDEXES[name][1](self.resources)
        return found

    @property
    def mesh_config(self) -> MeshConfig:
        """The revision's MeshConfig (compiler.mesh_config): its default exportTo decides what is visible where."""
        index: MeshConfig = self._index("mesh_config")
        return index

    @property
    def registry(self) -> registry.Registry:
        index: registry.Registry = self._index("registry")
        return index

    @property
    def workloads(self) -> LabelIndex:
        """WorkloadEntries by namespace and label."""
        index: LabelIndex = self._index("workloads")
        return index

    @property
    def pods(self) -> list[Workload]:
        """Pods, the pods of controllers and WorkloadEntries, each with whether a proxy enforces policies on it."""
        index: list[Workload] = self._index("pods")
        return index

    @property
    def slices_by_service(self) -> dict[tuple[str, str], list[Resource]]:
        """EndpointSlices by (namespace, the Service named by their kubernetes.io/service-name label)."""
        index: dict[tuple[str, str], list[Resource]] = self._index("slices_by_service")
        return index

    @property
    def subsets_by_host(self) -> dict[str, set[str]]:
        """Subset names per DestinationRule host (FQDN or wildcard), merged over all DestinationRules."""
        index: dict[str, set[str]] = self._index("subsets_by_host")
        return index

    def destinations(self, vs: Resource) -> list[routes.RouteDestination]:
        """`routes.destinations` of a VirtualService, computed once per resource object (several analyzers walk
        them; kept from run to run as `memoized` values are)."""
        table = self._memo("destinations")
        found = table.get(vs)
        if found is None:
            found = table[vs] = list(routes.destinations(vs.spec))
        return found

    def _memo(self, name: str) -> dict[Resource, Any]:
        memos: dict[str, dict[Resource, Any]] = self.indexes.setdefault(MEMO, {})
        return memos.setdefault(name, {})

    def memoized(self, name: str, compute: Callable[[Resource], T], resources: Iterable[Resource]) -> list[T]:
        """`compute(res)` for each of `resources`, computed once per resource object. An AnalyzeCache keeps the
        memos from run to run, so `compute` must depend on its one resource alone (and never return None)."""
        table = self._memo(name)
        get, out = table.get, []
        for res in resources:
            found = get(res)
            if found is None:
                found = table[res] = compute(res)
            out.append(found)
        return out

    def of_kind(self, kind: str) -> Sequence[Resource]:
        found = self.only.get(kind)
        return found if found is not None else self.resources.of_kind(kind)

    def restricted(self, only: Mapping[str, Sequence[Resource]]) -> Context:
        """The same revision and indexes, with `of_kind` giving only `only[kind]` for the kinds named there."""
        return dataclasses.replace(self, only=only)


Analyzer = Callable[[Context], Iterable[Diagnostic]]
