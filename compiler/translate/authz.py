"""AuthorizationPolicy -> the RBAC filters of a workload's chains (a sidecar's inbound chains, a gateway's chains).

Which policies apply (Pilot's PushContext.AuthorizationPolicies / ListAuthorizationPolicies): those of the root
namespace and of the workload's namespace whose selector is empty or matches the workload's labels; a policy with
`targetRef(s)` binds Kubernetes Gateways and waypoints, never a sidecar or an Istio Gateway's deployment.
How they become filters (pilot/pkg/security/authz/builder/builder.go `build`): one RBAC filter per action in the
order AUDIT (LOG), DENY, ALLOW; policies annotated `istio.io/dry-run: "true"` go to the filter's shadow rules; a
policy without rules is a policy that matches nothing (`rbacPolicyMatchNever`), so an ALLOW policy with no rule
(or only rules that cannot apply on a TCP chain) denies everything, and without any ALLOW policy all is allowed.
CUSTOM policies go first (builder.go BuildHTTP with IsCustomBuilder, ahead of the others): their rules, built as
DENY rules, become the shadow rules of an RBAC filter that enforces nothing but names the matching rule
(`istio-ext-authz-...`) in dynamic metadata, and the provider's ext_authz filter runs only for requests so named
(compiler.translate.ext_authz builds it). A workload whose CUSTOM policies name several providers, or one that
cannot be built, gets a DENY filter of those rules instead (`-deny-due-to-bad-CUSTOM-action`), as in Pilot. On a
TCP chain only a gRPC provider applies (Envoy's network ext_authz); an HTTP one is left out there, as Pilot does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from compiler import model
from compiler.api import security as sec
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource, ResourceSet
from compiler.reuse.carry import Tag
from compiler.translate import authz_rules, ext_authz
from compiler.translate.mesh import Mesh
from compiler.translate.scope import selects
from compiler.trust import TrustDomain

KIND = "AuthorizationPolicy"
DRY_RUN = "istio.io/dry-run"
_ORDER = (("AUDIT", model.RbacAction.LOG), ("DENY", model.RbacAction.DENY), ("ALLOW", model.RbacAction.ALLOW))
_NEVER = (model.AuthzNot(model.AuthzAny(True)),)  # rbacPolicyMatchNever's permission and principal
_EXT_AUTHZ_PREFIX = "istio-ext-authz-"  # builder.go policyName for CUSTOM rules; the ext_authz filter matches it
_BAD_CUSTOM = "-deny-due-to-bad-CUSTOM-action"  # builder.go badCustomActionSuffix


def _by_namespace(mesh: Mesh, kind: str) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for res in mesh.resources.of_kind(kind):
        out.setdefault(res.namespace, []).append(res)
    return out


def policies_for(mesh: Mesh, proxy: model.Proxy, kind: str = "AuthorizationPolicy") -> tuple[Resource, ...]:
    """The policies of `kind` (AuthorizationPolicy, or RequestAuthentication, which is scoped the same way) that
    apply to the proxy's workload: the root namespace's first, then the workload's, each by name."""
    grouped = mesh.memo((Tag.SECURITY_BY_NAMESPACE, kind), lambda: _by_namespace(mesh, kind))
    labels = proxy.label_map()
    root = mesh.root_namespace
    namespaces = [root] + ([proxy.namespace] if proxy.namespace != root else [])
    return tuple(res for ns in namespaces for res in grouped.get(ns, ()) if _applies(res.spec, labels))


def _spec(res: Resource) -> sec.AuthorizationPolicy:
    spec: sec.AuthorizationPolicy = res.spec
    return spec


def _applies(spec: sec.AuthorizationPolicy | sec.RequestAuthentication, labels: dict[str, str]) -> bool:
    if spec.target_ref is not None or spec.target_refs:
        return False
    return spec.selector is None or selects(spec.selector.match_labels, labels)


def _dry_run(res: Resource) -> bool:
    """strconv.ParseBool, as Pilot reads the annotation."""
    return res.annotations.get(DRY_RUN, "").lower() in ("1", "t", "true")


def custom_filter(mesh: Mesh, policies: Sequence[Resource], *, for_tcp: bool,
                  trust: TrustDomain) -> tuple[model.CustomAuthz | None, model.Rbac | None]:
    """The CUSTOM policies as an ext_authz check (or, when their provider cannot be used, a DENY filter)."""
    chosen = [res for res in policies if _spec(res).action == "CUSTOM"]
    if not chosen:
        return None, None
    names = {p.name or "" for p in (_spec(res).provider for res in chosen) if p is not None}
    built = ext_authz.provider(mesh, names.pop()) if len(names) == 1 else None
    rules = [p for res in chosen for p in _policies(res, for_tcp=for_tcp, allow=False, trust=trust,
                                                    prefix=_EXT_AUTHZ_PREFIX)]
    if built is None:  # builder.go getBadCustomDenyRules
        return None, model.Rbac(model.RbacAction.DENY, tuple(sorted(
            (dataclasses.replace(p, name=p.name + _BAD_CUSTOM) for p in rules), key=lambda p: p.name)))
    if for_tcp and not built.grpc:
        return None, None
    return model.CustomAuthz(built, tuple(sorted(rules, key=lambda p: p.name))), None


def rbac_filters(policies: Sequence[Resource], *, for_tcp: bool, trust: TrustDomain) -> tuple[model.Rbac, ...]:
    out: list[model.Rbac] = []
    for action, rbac_action in _ORDER:
        chosen = [res for res in policies if (_spec(res).action or "ALLOW") == action]
        if not chosen:
            continue
        allow = rbac_action is model.RbacAction.ALLOW
        enforced = [res for res in chosen if not _dry_run(res)]
        dry = [res for res in chosen if _dry_run(res)]
        out.append(model.Rbac(rbac_action, _built(enforced, for_tcp=for_tcp, allow=allow, trust=trust),
                              _built(dry, for_tcp=for_tcp, allow=allow, trust=trust)))
    return tuple(out)


def _built(policies: list[Resource], *, for_tcp: bool, allow: bool,
           trust: TrustDomain) -> tuple[model.RbacPolicy, ...] | None:
    """None without policies (no rules at all, unlike an empty set); by name, as Envoy's map prints them."""
    if not policies:
        return None
    return tuple(sorted((p for res in policies for p in _policies(res, for_tcp=for_tcp, allow=allow, trust=trust)),
                        key=lambda p: p.name))


def _policies(res: Resource, *, for_tcp: bool, allow: bool, trust: TrustDomain,
              prefix: str = "") -> list[model.RbacPolicy]:
    spec = _spec(res)
    if not spec.rules:
        return [model.RbacPolicy(prefix + _name(res, 0), _NEVER, _NEVER)]
    built = (authz_rules.policy(prefix + _name(res, i), rule, res.namespace, for_tcp=for_tcp, allow=allow, trust=trust)
             for i, rule in enumerate(spec.rules))
    return [p for p in built if p is not None]


def foreign_principals(resources: ResourceSet, trust: TrustDomain) -> list[Diagnostic]:
    """MW0413 at each principal of another trust domain (neither the mesh's, an alias, nor cluster.local): Pilot
    keeps it as written and only logs it, so it matches no peer of this mesh."""
    notes = []
    for res in resources.of_kind(KIND):
        for path, principal in _principals(_spec(res)):
            domain = trust.foreign(principal)
            if domain is not None:
                notes.append(res.diag("MW0413", f'principal "{principal}" names the trust domain "{domain}", which '
                                                f'is neither this mesh\'s ("{trust.domain}") nor one of its aliases: it '
                                                "matches only peers of that other domain", ("spec", *path)))
    return notes


def _principals(spec: sec.AuthorizationPolicy) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for i, rule in enumerate(spec.rules or ()):
        for j, source in enumerate(f.source for f in rule.from_ or ()):
            for key in ("principals", "notPrincipals"):
                values = (source.principals if key == "principals" else source.not_principals) if source else None
                yield from ((("rules", i, "from", j, "source", key, k), v) for k, v in enumerate(values or ()))
        for j, cond in enumerate(rule.when or ()):
            if cond.key == "source.principal":
                for key, values in (("values", cond.values), ("notValues", cond.not_values)):
                    yield from ((("rules", i, "when", j, key, k), v) for k, v in enumerate(values or ()))


def _name(res: Resource, rule: int) -> str:
    """builder.go policyName."""
    return f"ns[{res.namespace}]-policy[{res.name}]-rule[{rule}]"


def with_rbac(mesh: Mesh, listeners: Sequence[model.Listener], policies: Sequence[Resource],
              trust: TrustDomain) -> list[model.Listener]:
    """The listeners with the policies' filters on every HTTP and TCP chain (none without a policy)."""
    if not policies:
        return list(listeners)
    built = {}
    for for_tcp in (False, True):
        custom, bad = custom_filter(mesh, policies, for_tcp=for_tcp, trust=trust)
        built[for_tcp] = (custom, (bad,) if bad else ()) + (rbac_filters(policies, for_tcp=for_tcp, trust=trust),)

    def chain(c: model.FilterChain) -> model.FilterChain:
        f = c.filter
        custom, bad, rbac = built[not isinstance(f, model.HttpFilterChain)]
        return dataclasses.replace(c, filter=dataclasses.replace(f, custom=custom, rbac=bad + rbac))

    return [dataclasses.replace(
        listener, filter_chains=tuple(chain(c) for c in listener.filter_chains),
        default_chain=chain(listener.default_chain) if listener.default_chain else None) for listener in listeners]
