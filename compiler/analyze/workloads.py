"""The workloads of a tree as the security analyzers see them: which pods carry a proxy, with their labels.

Istio's analyzers read running Pods (pkg/config/analysis/analyzers/util/in_mesh.go: a pod is in the mesh when it
has an `istio-proxy` container, its `sidecar.istio.io/inject` label or annotation says so, or its namespace is
labelled for injection; ambient pods, annotated `ambient.istio.io/redirection: enabled`, count too). A policy
repository declares pods through their controllers' templates and its VMs through WorkloadEntries, so those are
workloads here as well, and whether a sidecar is injected is the webhook's rule as `compiler.translate.workloads`
applies it (a namespace the tree does not declare is taken as labelled for injection).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from compiler.api.workloads import PodSpec
from compiler.kinds import WORKLOAD_KINDS
from compiler.resources import Resource, ResourceSet
from compiler.translate import specs
from compiler.translate.workloads import injected

AMBIENT = "ambient.istio.io/redirection"  # annotation.AmbientRedirection
PROXY_CONTAINER = "istio-proxy"  # util.IstioProxyName

Labels = Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    namespace: str
    name: str
    labels: Labels
    proxied: bool  # a sidecar (or ambient) proxy enforces the mesh's policies on it


def _proxied(labels: Labels, annotations: Labels, spec: PodSpec, namespace: Labels | None) -> bool:
    return (any(c.name == PROXY_CONTAINER for c in spec.containers or ()) or annotations.get(AMBIENT) == "enabled"
            or injected(labels, annotations, spec, namespace))


def _controller(res: Resource, namespaces: Mapping[str, Labels]) -> Workload:
    template = specs.workload(res).template
    meta = template.metadata if template is not None else None
    labels = (meta.labels if meta is not None else None) or {}
    annotations = (meta.annotations if meta is not None else None) or {}
    spec = (template.spec if template is not None else None) or PodSpec()
    return Workload(res.namespace, res.name, labels, _proxied(labels, annotations, spec, namespaces.get(res.namespace)))


def build(resources: ResourceSet) -> list[Workload]:
    """Pods, the pods of controllers, and WorkloadEntries, in that order."""
    namespaces = {r.name: r.labels for r in resources.of_kind("Namespace")}
    out = [Workload(r.namespace, r.name, r.labels,
                    _proxied(r.labels, r.annotations, specs.pod(r).spec or PodSpec(), namespaces.get(r.namespace)))
           for r in resources.of_kind("Pod")]
    out += [_controller(r, namespaces) for kind in WORKLOAD_KINDS for r in resources.of_kind(kind)]
    out += [Workload(r.namespace, r.name, dict(specs.workload_entry(r).labels or r.labels or {}), True)
            for r in resources.of_kind("WorkloadEntry")]
    return out
