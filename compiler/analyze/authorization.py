"""AuthorizationPolicies that name namespaces no resource of the tree lives in, or select no workload.

Istio: authz.AuthorizationPoliciesAnalyzer. IST0101 for `source.namespaces` / `source.notNamespaces` expressions
that match no namespace: expressions may be exact, `*`, `prefix*` or `*suffix`, as in the policy itself, and the
namespaces known are those declared by Namespace objects or used by any resource of the tree. IST0127 for a policy
no workload with a proxy is subject to (analyzeNoMatchingWorkloads): a root-namespace policy whose selector matches
no such workload anywhere, a namespace-wide one in a namespace without any, a selector matching none of its
namespace's (`compiler.analyze.workloads` says which workloads have a proxy). A tree that declares no workload at
all is not checked: its workloads then come from the cluster at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from compiler import mesh_config
from compiler.analyze import hosts
from compiler.analyze.context import Context
from compiler.analyze.workloads import Labels
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource


def namespace_matches(expr: str, namespace: str) -> bool:
    if expr == "*":
        return True
    if expr.endswith("*"):
        return namespace.startswith(expr[:-1])
    if expr.startswith("*"):
        return namespace.endswith(expr[1:])
    return namespace == expr


def check_namespaces(ctx: Context) -> Iterator[Diagnostic]:
    known = ctx.resources.namespaces()
    for policy in ctx.of_kind("AuthorizationPolicy"):
        for i, rule in enumerate(policy.spec.rules or ()):
            for j, source_from in enumerate(rule.from_ or ()):
                source = source_from.source
                if source is None:
                    continue
                base = ("spec", "rules", i, "from", j, "source")
                yield from _unknown(policy, known, source.namespaces, (*base, "namespaces"))
                yield from _unknown(policy, known, source.not_namespaces, (*base, "notNamespaces"))


def _unknown(policy: Resource, known: set[str], exprs: Iterable[str] | None,
             path: tuple[str | int, ...]) -> Iterator[Diagnostic]:
    for k, expr in enumerate(exprs or ()):
        if not any(namespace_matches(expr, ns) for ns in known):
            yield policy.diag("MW0304", f"namespace \"{expr}\" matches no namespace of the tree",
                              (*path, k))


def root_namespace(ctx: Context) -> str:
    """MeshConfig rootNamespace, where a policy without selector applies to the whole mesh."""
    return mesh_config.config_of(ctx.of_kind("ConfigMap")).root_namespace


def check_workloads(ctx: Context) -> Iterator[Diagnostic]:
    proxied = [w for w in ctx.pods if w.proxied]
    if not ctx.pods:
        return
    by_namespace: dict[str, list[Labels]] = {}
    for w in proxied:
        by_namespace.setdefault(w.namespace, []).append(w.labels)
    root = root_namespace(ctx)
    for policy in ctx.of_kind("AuthorizationPolicy"):
        selector = policy.spec.selector
        if policy.namespace == root:
            if selector is not None and not _any_selected(selector.match_labels, (w.labels for w in proxied)):
                yield _no_workloads(policy, selector.match_labels)
        elif selector is None:
            if not by_namespace.get(policy.namespace):
                yield _no_workloads(policy, None)
        elif not _any_selected(selector.match_labels, by_namespace.get(policy.namespace, ())):
            yield _no_workloads(policy, selector.match_labels)


def _any_selected(selector: Labels | None, candidates: Iterable[Labels]) -> bool:
    return any(hosts.selects(selector, labels) for labels in candidates)


def _no_workloads(policy: Resource, selector: Labels | None) -> Diagnostic:
    """msg.NewNoMatchingWorkloadsFound, with the selector as klabels prints it ("" for a namespace-wide policy)."""
    return policy.diag("MW0326", "No matching workloads for this resource with the following labels: "
                                 f"{hosts.selector_string(selector) if selector is not None else ''}",
                       ("spec", "selector") if selector is not None else ("spec",))
