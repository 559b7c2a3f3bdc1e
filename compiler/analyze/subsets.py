"""DestinationRule subsets that select no endpoint of their host (traffic sent to them finds no upstream).

Istio: destinationrule.PodNotSelectedAnalyzer (IST0173) matches subset labels against running Pods. A policy
tree has no Pods, so the endpoints are the ones the tree declares: WorkloadEntries selected by a Service's selector
or a ServiceEntry's workloadSelector, a ServiceEntry's inline endpoints, and EndpointSlices of a Service, whose
endpoints carry the slice's own labels (minus the Kubernetes-managed `*kubernetes.io/*` ones). A host is only
checked when all of its endpoints have known labels, because endpoints can also come from the cluster at run
time; for the same reason this is a warning, where Istio reports an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.analyze import hosts
from compiler.analyze.context import Context
from compiler.analyze.registry import HostEntry
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
Labels = Mapping[str, str]


def check(ctx: Context) -> Iterator[Diagnostic]:
    for dr in ctx.of_kind("DestinationRule"):
        if not dr.spec.subsets:
            continue
        fqdn = hosts.to_fqdn(dr.spec.host, dr.namespace)
        entries = ctx.registry.lookup(fqdn, hosts.consumer_namespaces(dr.spec.export_to, dr.namespace))
        known = [endpoint_labels(ctx, e) for e in entries]
        if not entries or any(labels is None for labels in known):
            continue
        endpoints = [labels for group in known for labels in group or ()]
        if not endpoints:
            continue
        for i, subset in enumerate(dr.spec.subsets):
            if not any(hosts.selects(subset.labels, labels) for labels in endpoints):
                yield dr.diag("MW0317", f"subset \"{subset.name}\" (labels {hosts.selector_string(subset.labels)}) "
                                        f"selects none of the {len(endpoints)} endpoints of {fqdn} in the tree",
                              ("spec", "subsets", i, "labels"))


def endpoint_labels(ctx: Context, entry: HostEntry) -> list[Labels] | None:
    """Labels of each endpoint the tree declares for `entry`; None when some endpoint's labels are unknown."""
    res = entry.resource
    found: list[Labels] = [dict(w.spec.labels or {}) for w in _selected_workloads(ctx, res.namespace, entry.selector)]
    if res.kind == "ServiceEntry":
        found += [dict(ep.labels or {}) for ep in res.spec.endpoints or ()]
        return found
    for slice_ in _slices_of(ctx, res):
        own = {k: v for k, v in slice_.labels.items() if "kubernetes.io/" not in k}
        if slice_.spec.endpoints and not own:
            return None
        found += [own for _ in slice_.spec.endpoints or ()]
    return found


def _selected_workloads(ctx: Context, namespace: str, selector: Labels | None) -> list[Resource]:
    if not selector:
        return []
    return [w for w in ctx.of_kind("WorkloadEntry")
            if w.namespace == namespace and hosts.selects(selector, w.spec.labels or {})]


def _slices_of(ctx: Context, service: Resource) -> list[Resource]:
    return [s for s in ctx.of_kind("EndpointSlice")
            if s.namespace == service.namespace and s.labels.get(SERVICE_NAME_LABEL) == service.name]
