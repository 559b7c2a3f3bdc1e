"""DestinationRule subsets that select no endpoint of their host (traffic sent to them finds no upstream).

Istio: destinationrule.PodNotSelectedAnalyzer (IST0173) matches subset labels against running Pods. A policy
tree has no Pods, so the endpoints are the ones the tree declares: WorkloadEntries selected by a Service's selector
or a ServiceEntry's workloadSelector, a ServiceEntry's inline endpoints, and EndpointSlices of a Service, whose
endpoints carry the Service's selector labels plus the slice's own labels minus the Kubernetes-managed
`*kubernetes.io/*` ones (the same labels `compiler.translate.services` gives them, so a subset warned about here
is an empty cluster there). Hosts without endpoints in the tree are not checked, and this is a warning where Istio
reports an error, because endpoints can also come from the cluster at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.analyze import hosts
from compiler.analyze.context import Context
from compiler.analyze.registry import HostEntry
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

Labels = Mapping[str, str]


def check(ctx: Context) -> Iterator[Diagnostic]:
    for dr in ctx.of_kind("DestinationRule"):
        if not dr.spec.subsets:
            continue
        fqdn = hosts.to_fqdn(dr.spec.host, dr.namespace)
        entries = ctx.registry.lookup(fqdn, hosts.consumer_namespaces(dr.spec.export_to, dr.namespace))
        endpoints = [labels for e in entries for labels in endpoint_labels(ctx, e)]
        if not endpoints:
            continue
        for i, subset in enumerate(dr.spec.subsets):
            wanted = subset.labels  # hosts.selects, inlined: subsets x endpoints of every DestinationRule
            if wanted and not any(wanted.items() <= labels.items() for labels in endpoints):
                yield dr.diag("MW0317", f"subset \"{subset.name}\" (labels {hosts.selector_string(subset.labels)}) "
                                        f"selects none of the {len(endpoints)} endpoints of {fqdn} in the tree",
                              ("spec", "subsets", i, "labels"))


def endpoint_labels(ctx: Context, entry: HostEntry) -> list[Labels]:
    """Labels of each endpoint the tree declares for `entry`."""
    res = entry.resource
    found: list[Labels] = _selected_workloads(ctx, res.namespace, entry.selector)
    if res.kind == "ServiceEntry":
        found += [dict(ep.labels or {}) for ep in res.spec.endpoints or ()]
        return found
    for slice_ in _slices_of(ctx, res):
        own = {k: v for k, v in slice_.labels.items() if "kubernetes.io/" not in k}
        found += [{**(entry.selector or {}), **own} for _ in slice_.spec.endpoints or ()]
    return found


def _selected_workloads(ctx: Context, namespace: str, selector: Labels | None) -> list[Labels]:
    """Labels of the WorkloadEntries of `namespace` that a (non-empty) selector selects, from the run's index."""
    if not selector:
        return []
    return [labels for _, labels in ctx.workloads.selected(namespace, selector)]


def _slices_of(ctx: Context, service: Resource) -> list[Resource]:
    return ctx.slices_by_service.get((service.namespace, service.name), [])
