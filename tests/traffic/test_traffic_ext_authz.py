"""Real requests through a CUSTOM AuthorizationPolicy compiled by meshward: Envoy's ext_authz filter asks an HTTP
authorization server (MeshConfig envoyExtAuthzHttp, reached through the provider service's outbound cluster) for the
requests the policy matches, and only for those; the DENY policy still applies after it, as Istio orders them.

The authorization server here allows a request that carries `x-ext-authz: allow` and denies any other with 403 and
a header the provider lets through to the client (headersToDownstreamOnDeny).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import traffic_gateway
from traffic_backends import Backend, Reply, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

GW_ADDRESS = "127.0.8.30"
AUTHZ_ADDRESS = "127.0.7.31"
NODE = "router~127.0.8.30~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"


@dataclass
class AuthzServer:
    """An HTTP ext_authz server: Envoy sends it the request's method, path (after pathPrefix) and allowed headers."""

    checked: list[str] = field(default_factory=list)  # the paths it was asked about
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server.lock:
                    server.checked.append(self.path)
                allowed = self.headers.get("x-ext-authz") == "allow"
                body = b"" if allowed else b"denied by ext-authz"
                self.send_response(200 if allowed else 403)
                if not allowed:
                    self.send_header("x-authz-reason", "no-allow-header")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads `checked`
                pass

        return Handler


def _tree(http_port: int, site: Backend, authz_port: int) -> str:
    return traffic_gateway.http_site(site, GW_ADDRESS, http_port) + f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    extensionProviders:
    - name: checker
      envoyExtAuthzHttp:
        service: authz.istio-system.svc.cluster.local
        port: 80
        pathPrefix: /check
        timeout: 5s
        includeRequestHeadersInCheck: [x-ext-authz]
        headersToDownstreamOnDeny: [x-authz-reason]
---
apiVersion: v1
kind: Service
metadata: {{name: authz, namespace: istio-system}}
spec:
  selector: {{app: authz}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: authz, namespace: istio-system}}
spec:
  address: {AUTHZ_ADDRESS}
  labels: {{app: authz}}
  ports: {{http: {authz_port}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: ext, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  action: CUSTOM
  provider: {{name: checker}}
  rules:
  - to:
    - operation: {{paths: ["/protected/*"]}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: deny-admin, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: ingressgateway}}}}
  action: DENY
  rules:
  - to:
    - operation: {{paths: ["/protected/admin*"]}}
"""


@dataclass(frozen=True)
class Gateway:
    port: int
    authz: AuthzServer


@pytest.fixture(scope="module")
def gateway(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("ext-authz")
    site = Backend("site", "127.0.7.30")
    authz = AuthzServer()
    server = ThreadingHTTPServer((AUTHZ_ADDRESS, 0), authz.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with running({"site": site}):
            port, admin = free_port(GW_ADDRESS), free_port()
            tree = write_tree(root / "tree", {"mesh.yaml": _tree(port, site, int(server.server_address[1]))})
            bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
            with envoy(envoy_bin, bootstrap, admin, [(GW_ADDRESS, port)]):
                yield Gateway(port, authz)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _get(gw: Gateway, path: str, headers: dict[str, str] | None = None) -> Reply:
    return get(gw.port, path, "site.example.com", headers, address=GW_ADDRESS)


def _checked(gw: Gateway) -> list[str]:
    with gw.authz.lock:
        return list(gw.authz.checked)


def test_allowed_by_the_authz_server(gateway: Gateway) -> None:
    reply = _get(gateway, "/protected/page", {"x-ext-authz": "allow"})
    assert (reply.status, reply.backend) == (200, "site"), reply
    assert "/check/protected/page" in _checked(gateway), "the check went to the server, under pathPrefix"


def test_denied_by_the_authz_server(gateway: Gateway) -> None:
    reply = _get(gateway, "/protected/other")
    assert reply.status == 403, reply
    assert reply.body == b"denied by ext-authz", "the authorization server's answer, not Envoy's RBAC"
    assert reply.headers.get("x-authz-reason") == "no-allow-header", "headersToDownstreamOnDeny"


def test_unmatched_path_never_reaches_the_authz_server(gateway: Gateway) -> None:
    reply = _get(gateway, "/public/page")
    assert (reply.status, reply.backend) == (200, "site"), reply
    assert not [p for p in _checked(gateway) if "/public/" in p], "the CUSTOM policy does not match /public/"


def test_deny_applies_after_custom(gateway: Gateway) -> None:
    reply = _get(gateway, "/protected/admin", {"x-ext-authz": "allow"})
    assert reply.status == 403, reply
    assert reply.body == b"RBAC: access denied", "the authz server allowed it; the DENY policy refused it"
    assert "/check/protected/admin" in _checked(gateway), "CUSTOM is checked before DENY"
