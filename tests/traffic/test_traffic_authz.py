"""Real requests through AuthorizationPolicies compiled by meshward onto a gateway's chains (one that binds its own
loopback address, so no traffic capture is needed): Envoy's RBAC answers 403 or closes the connection, Istio's way.

What needs mTLS identities (principals, namespaces) waits for the agent serving SDS; here only what a plaintext
request carries: paths, methods, headers, ports. The DENY rules name the HTTP port, since on a TCP chain Istio drops
a DENY rule's HTTP-only keys (the rule would then deny every TCP connection).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import traffic_gateway
from traffic_backends import Backend, Reply, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

GW_ADDRESS = "127.0.8.2"
NODE = "router~127.0.8.2~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"


@dataclass(frozen=True)
class Ports:
    http: int
    tcp_open: int
    tcp_denied: int
    tcp_unlisted: int  # no DENY rule names it, and no ALLOW rule that a TCP chain can check


def _tree(ports: Ports, site: Backend) -> str:
    return traffic_gateway.site_behind(site, GW_ADDRESS) + f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {ports.http}, name: http, protocol: HTTP}}
    bind: {GW_ADDRESS}
    hosts: ["*"]
  - port: {{number: {ports.tcp_open}, name: tcp-open, protocol: TCP}}
    bind: {GW_ADDRESS}
    hosts: ["*"]
  - port: {{number: {ports.tcp_denied}, name: tcp-denied, protocol: TCP}}
    bind: {GW_ADDRESS}
    hosts: ["*"]
  - port: {{number: {ports.tcp_unlisted}, name: tcp-unlisted, protocol: TCP}}
    bind: {GW_ADDRESS}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: site, namespace: istio-system}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route:
    - destination: {{host: site, port: {{number: 80}}}}
  tcp:
  - route:
    - destination: {{host: site, port: {{number: 80}}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow-public, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  rules:
  - to:
    - operation: {{methods: [GET], paths: ["/public/*", "/api/*"]}}
  - to:
    - operation: {{ports: ["{ports.tcp_open}"]}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-admin, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  action: DENY
  rules:
  - to:
    - operation: {{ports: ["{ports.http}"], paths: ["/api/admin*"]}}
  - to:
    - operation: {{ports: ["{ports.http}"]}}
    when:
    - {{key: "request.headers[x-block]", values: ["*"]}}
  - to:
    - operation: {{ports: ["{ports.tcp_denied}"]}}
"""


@pytest.fixture(scope="module")
def gateway(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ports]:
    root = tmp_path_factory.mktemp("authz")
    site = Backend("site", "127.0.7.9")
    with running({"site": site}):
        ports = Ports(*(free_port(GW_ADDRESS) for _ in range(4)))
        admin = free_port()
        tree = write_tree(root / "tree", {"mesh.yaml": _tree(ports, site)})
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
        listening = [(GW_ADDRESS, p) for p in (ports.http, ports.tcp_open, ports.tcp_denied, ports.tcp_unlisted)]
        with envoy(envoy_bin, bootstrap, admin, listening):
            yield ports


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> Reply:
    return get(port, path, "site.example.com", headers, address=GW_ADDRESS)


def _status(port: int, method: str, path: str) -> int:
    conn = http.client.HTTPConnection(GW_ADDRESS, port, timeout=10)
    try:
        conn.request(method, path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_allowed_path_and_method_pass(gateway: Ports) -> None:
    reply = _get(gateway.http, "/public/page")
    assert (reply.status, reply.backend) == (200, "site"), reply


def test_no_allow_rule_matching_is_403(gateway: Ports) -> None:
    reply = _get(gateway.http, "/private")
    assert reply.status == 403, reply
    assert reply.body == b"RBAC: access denied", "Envoy's RBAC refused it, not the backend"


def test_method_outside_the_allow_rule_is_403(gateway: Ports) -> None:
    assert _status(gateway.http, "DELETE", "/public/page") == 403


def test_deny_beats_allow(gateway: Ports) -> None:
    assert _get(gateway.http, "/api/items").status == 200, "the ALLOW rule's /api/* prefix"
    assert _get(gateway.http, "/api/admin/users").status == 403, "DENY is checked before ALLOW"


def test_header_condition_denies(gateway: Ports) -> None:
    assert _get(gateway.http, "/public/page", {"x-block": "1"}).status == 403


def test_tcp_port_allowed_by_port_rule(gateway: Ports) -> None:
    reply = _get(gateway.tcp_open, "/anything")
    assert (reply.status, reply.backend) == (200, "site"), "tcp_proxy forwards the bytes after the port rule allowed"


@pytest.mark.parametrize("port", ["tcp_denied", "tcp_unlisted"])
def test_tcp_port_denied_at_connection(gateway: Ports, port: str) -> None:
    """tcp_denied by the DENY port rule; tcp_unlisted because the ALLOW rule of paths and methods cannot be checked
    on a TCP chain, so Istio drops it rather than allow every connection."""
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        _get(getattr(gateway, port), "/public/page")
