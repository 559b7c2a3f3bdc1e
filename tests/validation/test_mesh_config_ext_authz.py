"""MeshConfig ext_authz providers (envoyExtAuthzHttp / envoyExtAuthzGrpc): what Istio refuses in them is MW0240 at
its line in the ConfigMap's file (compiler.validate.ext_authz)."""

from __future__ import annotations

import pytest
from test_mesh_config import check, config_map

GOOD_HTTP = "service: authz.sec.svc.cluster.local, port: 8000"


def _provider(kind: str, fields: str) -> str:
    return f"  mesh: |\n    extensionProviders:\n    - name: authz\n      {kind}:\n        {fields}\n"


@pytest.mark.parametrize(("kind", "fields", "line"), [
    ("envoyExtAuthzHttp", "{" + GOOD_HTTP + ", statusOnError: '299'}", 12),
    ("envoyExtAuthzHttp", "{" + GOOD_HTTP + ", statusOnError: 'x'}", 12),
    ("envoyExtAuthzGrpc", "{" + GOOD_HTTP + ", timeout: 1x}", 12),
    ("envoyExtAuthzHttp", "{" + GOOD_HTTP + ", pathPrefix: check}", 12),
    ("envoyExtAuthzHttp", "{" + GOOD_HTTP + ", headersToUpstreamOnAllow: ['*']}", 12),
    ("envoyExtAuthzGrpc", "{port: 9000}", 11),  # service and port: at the provider kind, as for tracers
    ("envoyExtAuthzGrpc", "{service: authz.sec.svc.cluster.local}", 11),
])
def test_refused_at_its_line(kind: str, fields: str, line: int) -> None:
    found = [(c, n) for c, n, _ in check(config_map(_provider(kind, fields))) if c != "MW0403"]
    assert found == [("MW0240", line)]


@pytest.mark.parametrize(("kind", "fields"), [
    ("envoyExtAuthzHttp", "{" + GOOD_HTTP + ", statusOnError: '503', pathPrefix: /check, timeout: 2s,"
                          " includeRequestHeadersInCheck: ['x-*', '*-id']}"),
    ("envoyExtAuthzGrpc", "{" + GOOD_HTTP + ", failOpen: true, includeRequestBodyInCheck: {maxRequestBytes: 10}}"),
])
def test_accepted(kind: str, fields: str) -> None:
    assert [c for c, _, _ in check(config_map(_provider(kind, fields))) if c != "MW0403"] == []
