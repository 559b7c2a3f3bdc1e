"""Sidecar checks: a namespace may have only one Sidecar without a workloadSelector.

Istio: sidecar.DefaultSelectorAnalyzer (IST0111): with several, which one applies to the namespace's workloads is
undefined.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.analyze.context import Context
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource


def check_default_selectors(ctx: Context) -> Iterator[Diagnostic]:
    by_namespace: dict[str, list[Resource]] = {}
    for sc in ctx.of_kind("Sidecar"):
        if sc.spec.workload_selector is None:
            by_namespace.setdefault(sc.namespace, []).append(sc)
    for ns, sidecars in by_namespace.items():
        if len(sidecars) < 2:
            continue
        names = ", ".join(s.name for s in sidecars)
        for sc in sidecars:
            yield sc.diag("MW0306", f"namespace {ns} has several Sidecars without workloadSelector ({names})",
                          ("metadata", "name"))
