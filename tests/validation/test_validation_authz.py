"""AuthorizationPolicy keys and values Pilot would not know are errors at their line (ValidateAttribute): never a
rule silently dropped (which for an ALLOW policy would deny, and for a DENY policy allow). What meshward cannot
enforce (CUSTOM) is MW0226, in test_validation_codes; a targetRef, which binds what meshward does not build, is
MW0227 (flagged) at its line."""

from __future__ import annotations

import pytest
from test_validation_codes import run

POLICY = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n  rules:\n"


@pytest.mark.parametrize(("rule", "code", "line"), [
    ("  - when: [{key: 'experimental.envoy.filters.x', values: [a]}]\n", "MW0219", 6),
    ("  - when: [{key: source.color, values: [red]}]\n", "MW0219", 6),
    ("  - when: [{key: 'request.headers[]', values: [a]}]\n", "MW0219", 6),
    ("  - when: [{key: 'request.auth.claims[a', values: [a]}]\n", "MW0219", 6),
    ("  - when: [{key: source.ip, values: [10.0.0.300]}]\n", "MW0218", 6),
    ("  - when: [{key: destination.port, notValues: ['99999']}]\n", "MW0203", 6),
])
def test_refused(rule: str, code: str, line: int) -> None:
    found = run(POLICY + rule)
    assert [(d.code, d.position.line) for d in found] == [(code, line)], [d.render() for d in found]


@pytest.mark.parametrize("rule", [
    "  - when: [{key: 'request.headers[x-user]', values: [a, '*']}]\n",
    "  - when: [{key: 'request.auth.claims[realm][roles]', values: [admin]}]\n",
    "  - when: [{key: remote.ip, notValues: [10.0.0.0/8]}]\n",
    "  - when: [{key: connection.sni, values: ['*.example.com']}]\n",
    "  - to: [{operation: {paths: ['/a/*', '*.css', '/a/{*}/b/{**}'], notMethods: [DELETE]}}]\n",
    "  - when: [{key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]']}]\n",
])
def test_accepted(rule: str) -> None:
    assert [d.render() for d in run(POLICY + rule)] == []


TARGETED = "apiVersion: security.istio.io/v1\nkind: {kind}\nmetadata: {{name: p, namespace: shop}}\nspec:\n{body}"


@pytest.mark.parametrize(("body", "found"), [
    # what Istio's webhook refuses (validateOneOfSelectorType, validatePolicyTargetReference), at its line
    ("  selector: {matchLabels: {app: a}}\n  targetRefs: [{kind: Service, group: '', name: web}]\n",
     [("MW0219", 5, "only one of targetRefs or workloadSelector can be set"), ("MW0227", 6, "")]),
    ("  targetRef: {kind: Deployment, group: apps, name: web}\n",
     [("MW0219", 5, ("targetRef must be to one of [core/v1/Service networking.istio.io/v1/ServiceEntry "
                     "gateway.networking.k8s.io/v1/Gateway gateway.networking.k8s.io/v1/GatewayClass] but was "
                     "apps/Deployment"))]),
    (("  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: gw, namespace: other}\n"
      "  - {kind: Service, name: ''}\n"),
     [("MW0219", 6, "targetRef namespace must not be set; cross namespace referencing is not supported"),
      ("MW0219", 7, "targetRef name must be set")]),
    # what Istio applies to a Kubernetes Gateway's pods or a waypoint: flagged where it stands, never dropped
    ("  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n",
     [("MW0227", 5, 'Istio applies this AuthorizationPolicy to the pods of Kubernetes Gateway "gw"')]),
    ("  targetRef: {kind: ServiceEntry, group: networking.istio.io, name: ext}\n",
     [("MW0227", 5, 'Istio applies this AuthorizationPolicy in the waypoint proxy of ServiceEntry "ext"')]),
    ("  targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, name: istio}]\n",
     [("MW0227", 5, 'the Kubernetes Gateways of GatewayClass "istio"')]),
])
def test_target_refs(body: str, found: list[tuple[str, int, str]]) -> None:
    for kind, code in (("AuthorizationPolicy", "MW0219"), ("RequestAuthentication", "MW0220")):
        got = run(TARGETED.format(kind=kind, body=body))
        assert [(d.code, d.position.line) for d in got] == [
            (c if c == "MW0227" else code, line) for c, line, _ in found], [d.render() for d in got]
        assert all(text.replace("AuthorizationPolicy", kind) in d.message for d, (_, _, text) in zip(got, found))
    assert all(d.flagged for d in got if d.code == "MW0227")
