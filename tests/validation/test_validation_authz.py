"""AuthorizationPolicy keys and values Pilot would not know are errors at their line (ValidateAttribute): never a
rule silently dropped (which for an ALLOW policy would deny, and for a DENY policy allow). What meshward cannot
enforce (CUSTOM) is MW0226, in test_validation_codes."""

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
