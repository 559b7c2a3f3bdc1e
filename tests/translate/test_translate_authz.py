"""AuthorizationPolicy -> model.Rbac: which policies apply to a workload, Pilot's filter order, dry-run, policies
that match nothing, not-forms, Istio's `*` and what a TCP chain does with HTTP-only keys."""

from __future__ import annotations

from translate_harness import config_for

from compiler import model

NODE = "sidecar~10.0.0.1~web.app~app.svc.cluster.local"
BASE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080}, {name: tcp, port: 5432}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: app}
spec: {address: 10.0.0.1, labels: {app: web}}
"""


def policy(name: str, body: str, *, namespace: str = "app", annotations: str = "") -> str:
    return (f"---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
            f"metadata: {{name: {name}, namespace: {namespace}{annotations}}}\nspec:\n{body}")


def inbound(*policies: str) -> dict[int, tuple[model.Rbac, ...]]:
    """Inbound port -> the RBAC filters of its chain."""
    cfg = config_for(BASE + "".join(policies), NODE)
    return {lst.port: lst.filter_chains[0].filter.rbac for lst in cfg.listeners
            if lst.direction is model.TrafficDirection.INBOUND}


def names(rbac: model.Rbac) -> list[str]:
    return [p.name for p in rbac.rules or ()]


ALLOW_GET = "  rules:\n  - to: [{operation: {methods: [GET]}}]\n"


def test_without_policies_no_filter() -> None:
    assert inbound() == {8080: (), 5432: ()}


def test_root_namespace_and_own_namespace_apply_selector_and_target_refs_scope() -> None:
    found = inbound(
        policy("mesh", ALLOW_GET, namespace="istio-system"),
        policy("mine", "  selector: {matchLabels: {app: web}}\n" + ALLOW_GET),
        policy("theirs", "  selector: {matchLabels: {app: other}}\n" + ALLOW_GET),
        policy("elsewhere", ALLOW_GET, namespace="other"),
        policy("waypoint", "  targetRefs: [{kind: Service, group: '', name: web}]\n" + ALLOW_GET),
    )[8080]
    assert [names(r) for r in found] == [["ns[app]-policy[mine]-rule[0]", "ns[istio-system]-policy[mesh]-rule[0]"]]


def test_order_is_audit_deny_allow() -> None:
    found = inbound(policy("a", ALLOW_GET), policy("d", "  action: DENY\n" + ALLOW_GET),
                    policy("l", "  action: AUDIT\n" + ALLOW_GET))[8080]
    assert [r.action for r in found] == [model.RbacAction.LOG, model.RbacAction.DENY, model.RbacAction.ALLOW]


def test_allow_without_rules_matches_nothing() -> None:
    (rbac,) = inbound(policy("a", "  action: ALLOW\n"))[8080]
    never = (model.AuthzNot(model.AuthzAny(True)),)
    assert rbac.rules == (model.RbacPolicy("ns[app]-policy[a]-rule[0]", never, never),)


def test_dry_run_goes_to_shadow_rules_only() -> None:
    dry = ', annotations: {"istio.io/dry-run": "true"}'
    (rbac,) = inbound(policy("d", "  action: DENY\n" + ALLOW_GET, annotations=dry))[8080]
    assert rbac.rules is None, "nothing enforced"
    assert [p.name for p in rbac.shadow_rules or ()] == ["ns[app]-policy[d]-rule[0]"]


def test_values_or_not_values_negated_and_istio_wildcards() -> None:
    (rbac,) = inbound(policy("a", "  rules:\n  - to: [{operation: {paths: ['/api/*', '*.css', /x, '/v/{*}/x/{**}'],"
                                  " notPaths: ['/api/private*']}}]\n"))[8080]
    (perm,) = (rbac.rules or ())[0].permissions
    kind = model.MatchKind

    def path(k: model.MatchKind, v: str) -> model.UrlPath:
        return model.UrlPath(model.StringMatch(k, v))

    assert perm == model.AuthzAnd((
        model.AuthzOr((path(kind.PREFIX, "/api/"), path(kind.SUFFIX, ".css"), path(kind.EXACT, "/x"),
                       model.PathTemplate("/v/*/x/**"))),
        model.AuthzNot(model.AuthzOr((path(kind.PREFIX, "/api/private"),))),
    ))


def jwt(claim: str, match: model.StringMatch) -> model.DynamicMetadata:
    return model.DynamicMetadata("envoy.filters.http.jwt_authn", ("payload", claim), match)


def test_principals_namespaces_and_request_principals() -> None:
    (rbac,) = inbound(policy("a", "  rules:\n  - from: [{source: {principals: ['*'], namespaces: ['prod-*'],"
                                  " requestPrincipals: ['iss/sub']}}]\n"))[8080]
    (principal,) = (rbac.rules or ())[0].principals
    kind = model.MatchKind
    assert principal == model.AuthzAnd((
        model.AuthzOr((model.PeerPrincipal(model.StringMatch(kind.REGEX, ".+")),)),
        model.AuthzOr((model.AuthzAnd((jwt("iss", model.StringMatch(kind.EXACT, "iss")),
                                       jwt("sub", model.StringMatch(kind.EXACT, "sub")))),)),
        model.AuthzOr((model.PeerPrincipal(model.StringMatch(kind.REGEX, ".*/ns/prod-.*/.*")),)),
    ))


def test_tcp_drops_an_allow_rule_with_http_keys_and_only_the_keys_of_a_deny_rule() -> None:
    rules = "  rules:\n  - to: [{operation: {methods: [GET], ports: ['5432']}}]\n"
    allow, deny = inbound(policy("a", rules), policy("d", "  action: DENY\n" + rules))[5432][::-1]
    assert allow.rules == (), "an ALLOW rule a TCP chain cannot check allows nothing"
    (perm,) = (deny.rules or ())[0].permissions
    assert perm == model.AuthzAnd((model.AuthzOr((model.DestinationPort(5432),)),)), "the DENY keeps its port"
