"""AuthorizationPolicy sources that name namespaces no resource of the tree lives in.

Istio: authz.AuthorizationPoliciesAnalyzer (IST0101 for `source.namespaces` / `source.notNamespaces` expressions
that match no namespace). Expressions may be exact, `*`, `prefix*` or `*suffix`, as in the policy itself. The
namespaces known are those declared by Namespace objects or used by any resource of the tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from compiler.analyze.context import Context
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
