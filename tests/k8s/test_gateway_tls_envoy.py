"""Real Envoy as the judge of SDS: a gateway terminating HTTPS with `credentialName`, the certificate made at test
time, served by `meshward serve` from a (fake) cluster's Secret or from `--credentials-dir`; HTTPS requests verified
against the test CA reach a loopback backend. Rotating the Secret changes the certificate Envoy presents, and moving
the cluster's endpoints moves the traffic, both without a new commit."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fake_apiserver import FakeApiServer
from gateway_tree import CREDENTIAL, GATEWAY_NODE, HOST, make_repo, web_service, web_slice, write_tree
from serve_harness import ServeHarness, eventually
from tls_certs import TestCA

from reconciler import serve
from reconciler.ops import envoy_process
from reconciler.xds import bootstrap

pytestmark = pytest.mark.envoy


class Backend:
    """An HTTP server on 127.0.0.1 answering its own name."""

    def __init__(self, name: str) -> None:
        reply = name.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def https_get(port: int, ca_pem: bytes) -> tuple[str, str]:
    """(body, issuer CN of the certificate presented) for GET / with SNI and Host shop.example.com; ('', '')
    while the gateway is not serving (refused, reset, or a certificate the CA does not verify)."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
                context.wrap_socket(raw, server_hostname=HOST) as tls:
            issuer = dict(item[0] for item in tls.getpeercert()["issuer"])["commonName"]  # type: ignore[index]
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    except (OSError, ssl.SSLError):
        return "", ""
    head, _, body = data.partition(b"\r\n\r\n")
    return (body.decode() if head.startswith(b"HTTP/1.1 200") else f"status {head[:12]!r}"), str(issuer)


@pytest.fixture
def backends() -> Iterator[tuple[Backend, Backend]]:
    a, b = Backend("backend-a"), Backend("backend-b")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def tls_secret(cert: bytes, key: bytes) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": CREDENTIAL, "namespace": "istio-system"},
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}}


def gateway(h: ServeHarness, tmp_path: Path) -> Any:
    admin_port = envoy_process.free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(bootstrap.render(GATEWAY_NODE, f"127.0.0.1:{h.server.xds_port}",
                                                  admin_port=admin_port)))
    return envoy_process.running(config, log=tmp_path / "gateway.log"), admin_port


def test_https_gateway_with_a_cluster_secret(tmp_path: Path, apiserver: FakeApiServer,
                                             backends: tuple[Backend, Backend]) -> None:
    a, b = backends
    first_ca, second_ca = TestCA("first CA"), TestCA("second CA")
    leaf = first_ca.issue(HOST)
    apiserver.apply(web_service())
    apiserver.apply(web_slice("web-x1", a.port))
    apiserver.apply(tls_secret(leaf.cert_pem, leaf.key_pem))
    gateway_port = envoy_process.free_port()
    work = write_tree(tmp_path / "work", gateway_port=gateway_port, repo_backend_port=b.port)  # shadowed
    sha = make_repo(work)
    config = serve.ServeConfig(repo=str(work), poll_interval=3600, xds_address="127.0.0.1:0",
                               admin_address="127.0.0.1:0", kube_host=apiserver.url)
    h = ServeHarness(config, tmp_path / "serve")
    try:
        eventually(lambda: h.status().get("serving"), what="commit served")
        generation = h.status()["servingClusterGeneration"]
        running, admin_port = gateway(h, tmp_path)
        with running as envoy:
            envoy.wait_ready(admin_port)
            assert eventually(lambda: https_get(gateway_port, first_ca.cert_pem)[0], what="HTTPS through the "
                              "gateway", timeout=30) == "backend-a"  # the cluster's endpoint, not the repo's
            assert https_get(gateway_port, first_ca.cert_pem) == ("backend-a", "first CA")

            rotated = second_ca.issue(HOST)
            apiserver.apply(tls_secret(rotated.cert_pem, rotated.key_pem))
            eventually(lambda: https_get(gateway_port, second_ca.cert_pem)[1] == "second CA",
                       what="rotated certificate presented")

            apiserver.apply(web_slice("web-x1", b.port))
            eventually(lambda: https_get(gateway_port, second_ca.cert_pem)[0] == "backend-b",
                       what="traffic follows the cluster's endpoints")
            status = h.status()  # the same commit throughout, with newer cluster states
            assert status["serving"]["sha"] == sha and status["servingClusterGeneration"] > generation
    finally:
        h.close()


def test_https_gateway_with_a_credentials_directory(tmp_path: Path, backends: tuple[Backend, Backend]) -> None:
    a, _ = backends
    ca = TestCA()
    leaf = ca.issue(HOST)
    creds = tmp_path / "creds" / CREDENTIAL
    creds.mkdir(parents=True)
    (creds / "tls.crt").write_bytes(leaf.cert_pem)
    (creds / "tls.key").write_bytes(leaf.key_pem)
    gateway_port = envoy_process.free_port()
    work = write_tree(tmp_path / "work", gateway_port=gateway_port, repo_backend_port=a.port)
    make_repo(work)
    config = serve.ServeConfig(repo=str(work), poll_interval=3600, xds_address="127.0.0.1:0",
                               admin_address="127.0.0.1:0", credentials_dir=tmp_path / "creds",
                               credentials_poll=0.2)
    h = ServeHarness(config, tmp_path / "serve")
    try:
        eventually(lambda: h.status().get("serving"), what="commit served")
        running, admin_port = gateway(h, tmp_path)
        with running as envoy:
            envoy.wait_ready(admin_port)
            assert eventually(lambda: https_get(gateway_port, ca.cert_pem)[0], what="HTTPS through the gateway",
                              timeout=30) == "backend-a"
            assert h.status()["cluster"]["secrets"] == [CREDENTIAL]
            admin = f"127.0.0.1:{h.server.admin.port}"
            live = meshward("proxy-config", "secret", GATEWAY_NODE, "--admin-address", admin)
            resources = meshward("proxy-config", "secret", GATEWAY_NODE, "--admin-address", admin, "-o", "yaml")
    finally:
        h.close()
    # `meshward proxy-config secret`: the certificate Envoy was given, never its key; offline the same
    cert = x509.load_pem_x509_certificate(leaf.cert_pem)
    assert live.splitlines()[1].split() == [CREDENTIAL, "Cert", "Chain", "ACTIVE", "true", f"{cert.serial_number:x}",
                                            cert.not_valid_after_utc.isoformat(),
                                            cert.not_valid_before_utc.isoformat()]
    assert "PRIVATE KEY" not in resources and "[redacted]" in resources and CREDENTIAL in resources
    assert meshward("proxy-config", "secret", GATEWAY_NODE, "--file", str(work), "--credentials-dir",
                    str(tmp_path / "creds")) == live


def meshward(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "meshward", *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout
