"""Which Telemetry applies to a workload must be decidable: one namespace-wide Telemetry per namespace, selectors that
select something, and no workload selected by two Telemetries.

Istio: telemetry.DefaultSelectorAnalyzer (IST0160) and telemetry.SelectorAnalyzer (IST0101, IST0159)
(pkg/config/analysis/analyzers/telemetry/). Pilot takes a namespace's oldest namespace-wide Telemetry and merges
every selecting one in an order nobody wrote down (pilot/pkg/model/telemetry.go applicableTelemetries), so a second
one is reported rather than silently outvoted. A Telemetry bound by targetRef(s) is not namespace-wide in Pilot
(namespaceWideTelemetryConfig), so it is not counted as one here either (it is MW0227 already). Selectors are
matched against the tree's workloads (Pods, the pods of controllers, WorkloadEntries: `compiler.analyze.workloads`)
in the Telemetry's namespace; a tree that declares no workload at all is not checked, its workloads come from the
cluster at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from compiler.analyze import hosts
from compiler.analyze.context import Context
from compiler.api.telemetry import Telemetry
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource


def _selector(res: Resource) -> Mapping[str, str]:
    spec: Telemetry = res.spec
    return spec.selector.match_labels or {} if spec.selector is not None else {}


def _targeted(res: Resource) -> bool:
    spec: Telemetry = res.spec
    return spec.target_ref is not None or bool(spec.target_refs)


def check_default_selectors(ctx: Context) -> Iterator[Diagnostic]:
    by_namespace: dict[str, list[Resource]] = {}
    for res in ctx.of_kind("Telemetry"):
        if res.spec.selector is None and not _targeted(res):
            by_namespace.setdefault(res.namespace, []).append(res)
    for ns, found in by_namespace.items():
        if len(found) < 2:
            continue
        names = _names(found)
        for res in found:
            yield res.diag("MW0331", f"namespace {ns} has several Telemetries without selector ({names}): Pilot "
                                     "applies the oldest only", ("metadata", "name"))


def check_selectors(ctx: Context) -> Iterator[Diagnostic]:
    if not ctx.pods:
        return
    selecting: dict[int, list[Resource]] = {}  # workload (its index in ctx.pods) -> the Telemetries selecting it
    for res in ctx.of_kind("Telemetry"):
        selector = _selector(res)
        if not selector:
            continue
        chosen = [i for i, w in enumerate(ctx.pods) if w.namespace == res.namespace and hosts.selects(selector, w.labels)]
        if not chosen:
            yield res.diag("MW0333", f'selector "{hosts.selector_string(selector)}" selects no workload of '
                                     f"namespace {res.namespace}", ("spec", "selector", "matchLabels"))
        for i in chosen:
            selecting.setdefault(i, []).append(res)
    for i, found in sorted(selecting.items()):
        if len(found) < 2:
            continue
        workload = ctx.pods[i]
        for res in found:
            yield res.diag("MW0332", f"workload {workload.namespace}/{workload.name} is selected by several "
                                     f"Telemetries ({_names(found)}): which one applies is undefined",
                           ("metadata", "name"))


def _names(found: Sequence[Resource]) -> str:
    return ", ".join(sorted(r.name for r in found))
