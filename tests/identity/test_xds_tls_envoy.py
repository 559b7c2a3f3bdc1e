"""A real Envoy gets its whole config over mTLS ADS and serves traffic with it, every part its real command:
`meshward serve --xds-tls --ca-dir`, `meshward token`, `meshward agent` (SDS on a Unix socket), and the bootstrap
of `meshward bootstrap --xds-tls`, whose `xds-grpc` cluster authenticates with the agent's `default` certificate
and verifies the server with its `ROOTCA`. Nothing but the bootstrap is static: the gateway's listener, route and
clusters come over ADS, so a 200 from the backend proves the stream was served."""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_agent_envoy import empty_repo, process, wait_for

from meshward import cli
from reconciler.ops import envoy_process

pytestmark = pytest.mark.envoy

GATEWAY = "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"

TREE = """\
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec: {{address: 127.0.0.1, labels: {{istio: ingressgateway}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gateway, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {gateway_port}, name: http, protocol: HTTP}}
    bind: 127.0.0.1
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: backend, namespace: istio-system}}
spec:
  hosts: [backend.example.com]
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, ports: {{http: {backend_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: istio-system}}
spec:
  hosts: [shop.example.com]
  gateways: [gateway]
  http:
  - route:
    - destination: {{host: backend.example.com, port: {{number: 80}}}}
"""


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's naming
        body = b"hello over mTLS ADS"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@contextlib.contextmanager
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def get(port: int) -> str | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": "shop.example.com"})
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return f"{resp.status} {resp.read().decode()}"
    except (urllib.error.URLError, OSError):
        return None


def meshward(*args: str) -> None:
    """A short-lived command, run in this process (the long-lived ones are processes of their own)."""
    assert cli.main(list(args)) == 0


def test_envoy_gets_its_config_over_mtls_ads_and_serves_traffic(envoy_bin: str, tmp_path: Path) -> None:
    ca_dir, xds_port, ca_port = tmp_path / "ca", envoy_process.free_port(), envoy_process.free_port()
    gateway_port, admin_port, serve_admin = (envoy_process.free_port() for _ in range(3))
    # Unix socket paths are short (108 bytes): pytest's tmp_path can be too long
    with backend() as backend_port, tempfile.TemporaryDirectory(prefix="mw-") as short, \
            contextlib.ExitStack() as stack:
        repo = empty_repo(tmp_path / "repo")
        (repo / "mesh.yaml").write_text(TREE.format(gateway_port=gateway_port, backend_port=backend_port))
        subprocess.run(["git", "add", "mesh.yaml"], cwd=repo, check=True)
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "mesh"], cwd=repo,
                       check=True, capture_output=True)
        serve_log = tmp_path / "serve.log"
        stack.enter_context(process(
            ["serve", "--repo", str(repo), "--ca-dir", str(ca_dir), "--ca-address", f"127.0.0.1:{ca_port}",
             "--xds-address", f"127.0.0.1:{xds_port}", "--admin-address", f"127.0.0.1:{serve_admin}", "--xds-tls",
             "--workdir", str(tmp_path / "work")], serve_log))
        wait_for(lambda: envoy_process.port_open("127.0.0.1", xds_port), "mTLS ADS", serve_log)
        meshward("token", "--ca-dir", str(ca_dir), "--namespace", "istio-system", "--service-account",
                 "istio-ingressgateway", "-o", str(tmp_path / "token"))
        sock = Path(short) / "sds.sock"
        agent_log = tmp_path / "agent.log"
        stack.enter_context(process(
            ["agent", "--node", GATEWAY, "--ca-address", f"127.0.0.1:{ca_port}", "--ca-root",
             str(ca_dir / "root-cert.pem"), "--token-file", str(tmp_path / "token"), "--sds-socket", str(sock)],
            agent_log))
        meshward("bootstrap", "--node", GATEWAY, "--xds-address", f"127.0.0.1:{xds_port}", "--sds-socket",
                 str(sock), "--xds-tls", "--admin-port", str(admin_port), "--stats-address", "off", "-o", str(tmp_path / "bootstrap.json"))
        envoy_log = tmp_path / "envoy.log"
        stack.enter_context(envoy_process.running(tmp_path / "bootstrap.json", log=envoy_log, envoy_bin=envoy_bin))
        deadline = time.monotonic() + 30
        while (answer := get(gateway_port)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer == "200 hello over mTLS ADS", (
            f"{serve_log.read_text()[-3000:]}\n{agent_log.read_text()[-2000:]}\n{envoy_log.read_text()[-3000:]}")
        assert "ADS listening on" in serve_log.read_text() and "mTLS" in serve_log.read_text()
        # serve knows who the stream is: the identity the agent's certificate proved
        with urllib.request.urlopen(f"http://127.0.0.1:{serve_admin}/debug/proxies", timeout=5) as resp:
            [proxy] = json.loads(resp.read())
        assert (proxy["node_id"], proxy["identity"]) == (
            GATEWAY, "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway")
