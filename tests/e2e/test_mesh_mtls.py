"""Two sidecars of a real mTLS mesh, every part its real command: `meshward serve` with a CA and ADS over a git
repository, `meshward token` and `meshward agent` for each of two service accounts (`client` and `web`), each Envoy
bootstrapped with `meshward bootstrap --sds-socket` and its backend. The compiled configs take the mesh identity
from each Envoy's own agent over `sds-grpc`:

- the client's sidecar reaches the web service over auto mTLS (its endpoint is labelled `tlsMode: istio`), and the
  web backend sees the client's SPIFFE id in `x-forwarded-client-cert`;
- a plaintext request straight to web's STRICT port is refused; its PERMISSIVE port serves plaintext and mTLS;
- the client's own inbound port, which no PeerAuthentication names, has Istio's default in a mesh with a CA:
  PERMISSIVE, plaintext and mTLS;
- an AuthorizationPolicy allows the `client` principal on the STRICT port: another mesh identity gets 403;
- with certificates of 4 s, both agents renew every 2 s under steady traffic, and no request fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.client
import json
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from reconciler.identity import ca, certs
from reconciler.identity.spiffe import Identity
from reconciler.ops import envoy_process

pytestmark = pytest.mark.envoy

CLIENT_ADDR, WEB_ADDR = "127.0.31.1", "127.0.31.2"
CLIENT_NODE = f"sidecar~{CLIENT_ADDR}~client.shop~shop.svc.cluster.local"
WEB_NODE = f"sidecar~{WEB_ADDR}~web.shop~shop.svc.cluster.local"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"
WEB_ID = "spiffe://cluster.local/ns/shop/sa/web"
CERT_TTL = "4s"  # renewed at half life: a new certificate every 2 s


@dataclasses.dataclass(frozen=True)
class Ports:
    ca: int = dataclasses.field(default_factory=envoy_process.free_port)
    xds: int = dataclasses.field(default_factory=envoy_process.free_port)
    outbound: int = dataclasses.field(default_factory=lambda: envoy_process.free_port(CLIENT_ADDR))
    client_in: int = dataclasses.field(default_factory=lambda: envoy_process.free_port(CLIENT_ADDR))
    strict: int = dataclasses.field(default_factory=lambda: envoy_process.free_port(WEB_ADDR))
    permissive: int = dataclasses.field(default_factory=lambda: envoy_process.free_port(WEB_ADDR))


def _sidecar(name: str, address: str, ingress: dict[str, int], backend: int, egress: int | None = None) -> str:
    out = "".join(f"""  - port: {{number: {port}, protocol: HTTP, name: {port_name}}}
    bind: {address}
    captureMode: NONE
    defaultEndpoint: 127.0.0.1:{backend}
""" for port_name, port in ingress.items())
    egress_part = f"""  egress:
  - port: {{number: {egress}, protocol: HTTP, name: out}}
    bind: {address}
    captureMode: NONE
    hosts: ["./*"]
""" if egress else ""
    return f"""apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {name}, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: {name}}}}}
{egress_part}  ingress:
{out}---
"""


def _tree(ports: Ports, backends: dict[str, int]) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: shop}}
spec:
  address: {CLIENT_ADDR}
  serviceAccount: client
  labels: {{app: client}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web, namespace: shop}}
spec:
  address: {WEB_ADDR}
  serviceAccount: web
  labels: {{app: web, security.istio.io/tlsMode: istio}}
  ports: {{http: {ports.strict}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: {ports.outbound}, targetPort: http}}
---
{_sidecar("client", CLIENT_ADDR, {"http": ports.client_in}, backends["client"], egress=ports.outbound)}\
{_sidecar("web", WEB_ADDR, {"strict": ports.strict, "permissive": ports.permissive}, backends["web"])}\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: web, namespace: shop}}
spec:
  host: web.shop.svc.cluster.local
  trafficPolicy:  # a connection per request: each one a handshake with the client's current certificate
    connectionPool: {{http: {{maxRequestsPerConnection: 1}}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  mtls: {{mode: STRICT}}
  portLevelMtls:
    {ports.permissive}: {{mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/shop/sa/client"]}}}}]
  - to: [{{operation: {{ports: ["{ports.permissive}"]}}}}]
"""


class _Echo(BaseHTTPRequestHandler):
    """A backend that answers with the headers it received (what the application sees)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # Envoy closing a pooled connection mid-read is no error of the backend's


@contextlib.contextmanager
def _backend() -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _meshward(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "meshward", *args], check=True, timeout=60, capture_output=True)


@contextlib.contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "meshward", *args], stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        envoy_process.stop(proc)


def _wait(check: Callable[[], bool], what: str, logs: list[Path], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs if p.exists())
            raise AssertionError(f"{what} not within {timeout}s\n{tails}")
        time.sleep(0.1)


def _repo(path: Path, tree: str) -> Path:
    (path / "mesh").mkdir(parents=True)
    (path / "mesh" / "mesh.yaml").write_text(tree)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "mesh"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


@dataclasses.dataclass(frozen=True)
class Mesh:
    ports: Ports
    ca_dir: Path
    work: Path
    logs: list[Path]


def _start_sidecar(stack: contextlib.ExitStack, mesh: Mesh, sockets: Path, *, name: str, node: str,
                   ready: Callable[[], bool]) -> None:
    """A token, `meshward agent` and Envoy for one service account, stopped with `stack`; waits for Envoy to be
    ready (its listeners come over ADS, and those that need the identity wait for the agent's SDS)."""
    work, ports = mesh.work, mesh.ports
    _meshward("token", "--ca-dir", str(mesh.ca_dir), "--namespace", "shop", "--service-account", name,
              "-o", str(work / f"{name}.token"))
    sock = sockets / f"{name}.sock"
    stack.enter_context(_process(
        ["agent", "--node", node, "--ca-address", f"127.0.0.1:{ports.ca}", "--ca-root", str(work / "root.pem"),
         "--token-file", str(work / f"{name}.token"), "--sds-socket", str(sock), "--cert-ttl", CERT_TTL],
        work / f"{name}-agent.log"))
    admin = envoy_process.free_port()
    _meshward("bootstrap", "--node", node, "--xds-address", f"127.0.0.1:{ports.xds}", "--sds-socket", str(sock),
              "--admin-port", str(admin), "--stats-address", "off", "-o", str(work / f"{name}-envoy.json"))
    envoy = stack.enter_context(envoy_process.running(work / f"{name}-envoy.json", log=work / f"{name}-envoy.log"))
    mesh.logs.extend([work / f"{name}-agent.log", work / f"{name}-envoy.log"])
    try:
        envoy.wait_ready(admin, deadline_s=40, also=ready)
    except envoy_process.EnvoyError as err:
        raise AssertionError(f"{err}\n{(work / 'serve.log').read_text(errors='replace')[-3000:]}\n"
                             f"{(work / f'{name}-agent.log').read_text(errors='replace')[-2000:]}") from None


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, envoy_bin: str) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("mesh-mtls")
    ports = Ports()
    with contextlib.ExitStack() as stack:
        backends = {name: stack.enter_context(_backend()) for name in ("client", "web")}
        repo = _repo(work / "repo", _tree(ports, backends))
        mesh = Mesh(ports, work / "ca", work, [work / "serve.log"])
        stack.enter_context(_process(
            ["serve", "--repo", str(repo), "--ca-dir", str(mesh.ca_dir), "--ca-address", f"127.0.0.1:{ports.ca}",
             "--xds-address", f"127.0.0.1:{ports.xds}", "--admin-address", "127.0.0.1:0",
             "--workdir", str(work / "serve")], work / "serve.log"))
        _wait(lambda: envoy_process.port_open("127.0.0.1", ports.ca) and envoy_process.port_open(
            "127.0.0.1", ports.xds), "meshward serve (CA and ADS)", mesh.logs)
        (work / "root.pem").write_text(certs.pem(ca.load(mesh.ca_dir).root))
        sockets = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mw-")))  # unix paths are short
        _start_sidecar(stack, mesh, sockets, name="web", node=WEB_NODE, ready=lambda: all(
            envoy_process.port_open(WEB_ADDR, p) for p in (ports.strict, ports.permissive)))
        _start_sidecar(stack, mesh, sockets, name="client", node=CLIENT_NODE,
                       ready=lambda: envoy_process.port_open(CLIENT_ADDR, ports.outbound))
        _wait(lambda: _through_client(ports)[0] == 200, "a request from client to web", mesh.logs)
        yield mesh


def _through_client(ports: Ports) -> tuple[int, dict[str, str]]:
    """A request to the web service through the client's sidecar (its outbound listener): status, headers seen by
    web's backend."""
    conn = http.client.HTTPConnection(CLIENT_ADDR, ports.outbound, timeout=10)
    try:
        conn.request("GET", "/", headers={"host": "web.shop.svc.cluster.local"})
        resp = conn.getresponse()
        body = resp.read()
    except OSError:
        return 0, {}
    finally:
        conn.close()
    return resp.status, json.loads(body) if resp.status == 200 else {}


def _plain(port: int, address: str = WEB_ADDR) -> int:
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


def _mesh_client(mesh: Mesh, service_account: str) -> ssl.SSLContext:
    """A TLS client holding a certificate the mesh CA issued to `service_account` in shop, trusting the root."""
    authority = ca.load(mesh.ca_dir)
    key = certs.new_key()
    csr, identity = certs.parse_csr(certs.make_csr(key, Identity("cluster.local", "shop", service_account)))
    chain = authority.sign_workload(csr, identity, datetime.timedelta(hours=1))
    (mesh.work / f"{service_account}.pem").write_text("".join(chain[:-1]))
    (mesh.work / f"{service_account}.key").write_bytes(certs.key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # a workload certificate names a SPIFFE identity, not a host
    context.load_verify_locations(cadata=certs.pem(authority.root))
    context.load_cert_chain(mesh.work / f"{service_account}.pem", mesh.work / f"{service_account}.key")
    return context


def _mutual(port: int, context: ssl.SSLContext, address: str = WEB_ADDR) -> tuple[int, x509.Certificate]:
    """Status and the certificate the Envoy presented, for one GET over mTLS on a new connection."""
    conn = http.client.HTTPSConnection(address, port, timeout=10, context=context)
    try:
        conn.request("GET", "/")
        status = conn.getresponse().status
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        served = x509.load_der_x509_certificate(sock.getpeercert(binary_form=True) or b"")
        return status, served
    finally:
        conn.close()


def _uris(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)


def test_client_to_web_is_mtls_and_web_sees_the_clients_identity(mesh: Mesh) -> None:
    status, headers = _through_client(mesh.ports)
    assert status == 200
    xfcc = headers["x-forwarded-client-cert"]
    assert f"URI={CLIENT_ID}" in xfcc and f"By={WEB_ID}" in xfcc, xfcc


def test_plaintext_to_a_strict_port_is_refused(mesh: Mesh) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        _plain(mesh.ports.strict)


def test_permissive_serves_plaintext_and_mtls(mesh: Mesh) -> None:
    assert _plain(mesh.ports.permissive) == 200
    status, served = _mutual(mesh.ports.permissive, _mesh_client(mesh, "client"))
    assert status == 200 and _uris(served) == [WEB_ID], "web's Envoy presents its agent's certificate"


def test_no_policy_is_istios_permissive_default(mesh: Mesh) -> None:
    assert _plain(mesh.ports.client_in, CLIENT_ADDR) == 200
    status, served = _mutual(mesh.ports.client_in, _mesh_client(mesh, "web"), CLIENT_ADDR)
    assert status == 200 and _uris(served) == [CLIENT_ID]


def test_authorization_by_principal(mesh: Mesh) -> None:
    """The ALLOW policy names `client` on the STRICT port: the client's sidecar gets 200 there (above), another
    identity of the same mesh completes the handshake and gets 403 from RBAC."""
    assert _mutual(mesh.ports.strict, _mesh_client(mesh, "client"))[0] == 200
    assert _mutual(mesh.ports.strict, _mesh_client(mesh, "other"))[0] == 403


def test_rotation_under_steady_traffic_fails_no_request(mesh: Mesh) -> None:
    """Over 7 s of 4 s certificates, web's backend sees the client's certificate change (its hash in XFCC), and
    web's Envoy presents new serials, while every request through the mesh hop succeeds."""
    probe = _mesh_client(mesh, "client")
    statuses, client_hashes, web_serials = [], set(), set()
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        status, headers = _through_client(mesh.ports)
        statuses.append(status)
        xfcc = headers.get("x-forwarded-client-cert", "")
        client_hashes.update(part for part in xfcc.split(";") if part.startswith("Hash="))
        web_serials.add(_mutual(mesh.ports.permissive, probe)[1].serial_number)
        time.sleep(0.05)
    assert set(statuses) == {200}, statuses
    assert len(client_hashes) >= 3, client_hashes
    assert len(web_serials) >= 3, web_serials
