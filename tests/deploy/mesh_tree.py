"""A one-service mesh for the tests of injected and moved proxies: a client sidecar, as `meshward inject` makes it
(node `sidecar~IP~client.shop~...`), whose Sidecar resource opens a real egress listener on IP:8080 (no traffic
capture), routing `web.shop` to a backend the test runs. IP is a loopback address of the test's own, so its
listener on the Service's port 8080 meets no other test's."""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.ops import envoy_process

HOST = "web.shop.svc.cluster.local"
SERVICE_PORT = 8080

POLICY = """\
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: {service_port}, targetPort: {backend_port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
addressType: IPv4
metadata: {{name: web-1, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
ports: [{{name: http, port: {backend_port}, protocol: TCP}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: shop}}
spec:
  address: {client_ip}
  labels: {{app: client}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: client, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: client}}}}
  egress:
  - port: {{number: {service_port}, protocol: HTTP, name: egress-http}}
    bind: {client_ip}
    captureMode: NONE
    hosts: [./{host}]
"""


def node(client_ip: str) -> str:
    return f"sidecar~{client_ip}~client.shop~shop.svc.cluster.local"


def write(root: Path, *, client_ip: str, backend_port: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mesh.yaml").write_text(POLICY.format(client_ip=client_ip, backend_port=backend_port,
                                                  service_port=SERVICE_PORT, host=HOST))
    return root


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's naming
        body = b"hello from web\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False


@contextmanager
def backend() -> Iterator[int]:
    """An HTTP server on 127.0.0.1:<free port> answering 200 to every GET; yields the port."""
    server = _Server(("127.0.0.1", envoy_process.free_port()), _Hello)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
