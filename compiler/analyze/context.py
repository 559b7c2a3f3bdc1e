"""What every analyzer gets: the resources of one revision and the indexes built from them once per run.

Indexes are built lazily, on first use, so that a run over a large tree stays linear: an analyzer that needs "the
WorkloadEntries of namespace N with label a=b" asks an index instead of scanning every WorkloadEntry.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping

from compiler.analyze import registry
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource, ResourceSet

Labels = Mapping[str, str]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


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
        return [(res, labels) for res, labels in shortest if all(labels.get(k) == v for k, v in selector.items())]


def workload_labels(workload: Resource) -> Labels:
    """A WorkloadEntry's labels: its spec's, else its metadata's (as the service registry reads them)."""
    return dict(workload.spec.labels or workload.labels or {})


@dataclasses.dataclass(frozen=True)
class Context:
    resources: ResourceSet

    @functools.cached_property
    def registry(self) -> registry.Registry:
        return registry.build(self.resources)

    @functools.cached_property
    def workloads(self) -> LabelIndex:
        return LabelIndex(self.of_kind("WorkloadEntry"), workload_labels)

    @functools.cached_property
    def slices_by_service(self) -> dict[tuple[str, str], list[Resource]]:
        """EndpointSlices by (namespace, the Service named by their kubernetes.io/service-name label)."""
        out: dict[tuple[str, str], list[Resource]] = {}
        for slice_ in self.of_kind("EndpointSlice"):
            service = slice_.labels.get(SERVICE_NAME_LABEL)
            if service is not None:
                out.setdefault((slice_.namespace, service), []).append(slice_)
        return out

    def of_kind(self, kind: str) -> list[Resource]:
        return self.resources.of_kind(kind)


Analyzer = Callable[[Context], Iterable[Diagnostic]]
