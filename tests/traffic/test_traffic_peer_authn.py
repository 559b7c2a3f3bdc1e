"""Real TLS through a sidecar's inbound chains compiled from PeerAuthentication: a STRICT port refuses plaintext and
serves a client presenting a certificate of the mesh CA, a PERMISSIVE port serves both, and the application sees
the client's SPIFFE id in x-forwarded-client-cert. Auto mTLS too: the sidecar's own outbound listener reaches the
service whose endpoint (labelled tlsMode: istio) is its STRICT port, so the request crosses the mesh hop over mTLS
(SNI and SAN as Pilot's) and arrives with the sidecar's identity. The mesh identity (`default`, `ROOTCA`) comes over
the compiled config's `sds-grpc` cluster from the agent's SDS server holding certificates the test made (the CA
and `meshward agent` themselves are tests/e2e/test_mesh_mtls.py's).
"""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import agent_sds
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from traffic_backends import Backend, running
from traffic_envoy import envoy, free_port, write_tree

from compiler import build
from compiler.emit import bootstrap_static
from reconciler.identity import sds

pytestmark = pytest.mark.envoy

ADDRESS = "127.0.9.5"
NODE = f"sidecar~{ADDRESS}~web.shop~shop.svc.cluster.local"
CLIENT_ID = "spiffe://cluster.local/ns/shop/sa/client"


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          uri: str = "") -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer[0] if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
    if uri:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]),
                                        critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


@dataclass(frozen=True)
class Mesh:
    strict: int
    permissive: int
    outbound: int
    ca: Path
    client_cert: Path
    client_key: Path


def _tree(strict: int, permissive: int, outbound: int, backend: Backend) -> str:
    ingress = "".join(f"""  - port: {{number: {port}, protocol: HTTP, name: {name}}}
    bind: {ADDRESS}
    captureMode: NONE
    defaultEndpoint: 127.0.0.1:{backend.port}
""" for name, port in (("strict", strict), ("permissive", permissive)))
    return f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web, namespace: shop}}
spec:
  address: {ADDRESS}
  serviceAccount: web
  labels: {{app: web, security.istio.io/tlsMode: istio}}
  ports: {{http: {strict}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: {outbound}, targetPort: http}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: web, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: web}}}}
  egress:
  - port: {{number: {outbound}, protocol: HTTP, name: out}}
    bind: {ADDRESS}
    captureMode: NONE
    hosts: ["./*"]
  ingress:
{ingress}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  mtls: {{mode: STRICT}}
  portLevelMtls:
    {permissive}: {{mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/shop/sa/client", "cluster.local/ns/shop/sa/web"]}}}}]
  - to: [{{operation: {{ports: ["{permissive}"]}}}}]
"""


@pytest.fixture(scope="module")
def mesh(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("peer")
    ca_key, leaf_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("mesh-ca", ca_key, None)
    issuer = (ca.subject, ca_key)
    identity = sds.Credentials(
        key_pem=_key_pem(leaf_key).encode(), roots_pem=_pem(ca).encode(),
        chain_pem=_pem(_cert("web", leaf_key, issuer, "spiffe://cluster.local/ns/shop/sa/web")).encode())
    files = {"ca.pem": _pem(ca), "client.pem": _pem(_cert("client", client_key, issuer, CLIENT_ID)),
             "client-key.pem": _key_pem(client_key),
             "other.pem": _pem(_cert("other", client_key, issuer, "spiffe://cluster.local/ns/shop/sa/other")),
             "foreign.pem": _pem(_cert("foreign", client_key, issuer, "spiffe://other.mesh/ns/shop/sa/client"))}
    write_tree(root, files)
    backend = Backend("web", "127.0.0.1")  # Istio allows defaultEndpoint on 127.0.0.1 or 0.0.0.0 only
    socket_path = root / "sds.sock"
    with running({"web": backend}), agent_sds.serving(socket_path, identity):
        strict, permissive, outbound, admin = free_port(ADDRESS), free_port(ADDRESS), free_port(ADDRESS), free_port()
        tree = write_tree(root / "tree", {"mesh.yaml": _tree(strict, permissive, outbound, backend)})
        result = build.build([tree])
        assert result.ok, [str(d) for d in result.diagnostics]
        cfg = build.proxy_config(result, NODE)
        bootstrap = root / "bootstrap.json"
        bootstrap.write_text(json.dumps(bootstrap_static.static_bootstrap(cfg, admin_port=admin,
                                                                          sds_socket=str(socket_path))))
        with envoy(envoy_bin, bootstrap, admin, [(ADDRESS, p) for p in (strict, permissive, outbound)]):
            yield Mesh(strict, permissive, outbound, root / "ca.pem", root / "client.pem", root / "client-key.pem")


def _plain(port: int) -> int:
    conn = http.client.HTTPConnection(ADDRESS, port, timeout=10)
    try:
        conn.request("GET", "/", headers={"x-forwarded-client-cert": "By=forged"})
        return conn.getresponse().status
    finally:
        conn.close()


def _mutual_get(mesh: Mesh, port: int, cert: Path) -> tuple[int, bytes]:
    """One request over mTLS with the client certificate `cert` (and a forged XFCC header that must not pass)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(mesh.ca)
    ctx.load_cert_chain(cert, mesh.client_key)
    conn = http.client.HTTPSConnection(ADDRESS, port, timeout=10, context=ctx)
    try:
        conn.request("GET", "/", headers={"x-forwarded-client-cert": "By=forged"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _mutual(mesh: Mesh, port: int) -> dict[str, str]:
    """The headers the application received over an mTLS request of the client."""
    status, body = _mutual_get(mesh, port, mesh.client_cert)
    assert status == 200, body
    headers: dict[str, str] = json.loads(body)["headers"]
    return headers


def test_authorization_by_peer_principal(mesh: Mesh) -> None:
    """The ALLOW policy names the client's and the sidecar's own identities on the STRICT port: another mesh
    identity is refused by RBAC (403), after the TLS handshake succeeded."""
    assert _mutual_get(mesh, mesh.strict, mesh.client_cert)[0] == 200
    assert _mutual_get(mesh, mesh.strict, mesh.client_cert.with_name("other.pem"))[0] == 403


def test_strict_refuses_plaintext(mesh: Mesh) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        _plain(mesh.strict)


def test_strict_serves_a_mesh_client_and_forwards_its_identity(mesh: Mesh) -> None:
    xfcc = _mutual(mesh, mesh.strict)["x-forwarded-client-cert"]
    assert f"URI={CLIENT_ID}" in xfcc and "forged" not in xfcc, xfcc


def test_strict_refuses_a_client_without_certificate(mesh: Mesh) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(mesh.ca)
    conn = http.client.HTTPSConnection(ADDRESS, mesh.strict, timeout=10, context=ctx)
    try:
        with pytest.raises((ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected)):
            conn.request("GET", "/")
            conn.getresponse()
    finally:
        conn.close()


def test_a_peer_of_another_trust_domain_is_refused_in_the_handshake(mesh: Mesh) -> None:
    """Signed by the same CA, but its SPIFFE id is not in the mesh's trust domain (cluster.local): the inbound
    validation's `spiffe://cluster.local/` prefix refuses it before any request, as Pilot's trust domain check."""
    with pytest.raises((ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected)):
        _mutual_get(mesh, mesh.strict, mesh.client_cert.with_name("foreign.pem"))


def test_permissive_serves_both(mesh: Mesh) -> None:
    assert _plain(mesh.permissive) == 200
    assert f"URI={CLIENT_ID}" in _mutual(mesh, mesh.permissive)["x-forwarded-client-cert"]


def test_auto_mtls_reaches_a_strict_port_with_the_sidecars_identity(mesh: Mesh) -> None:
    conn = http.client.HTTPConnection(ADDRESS, mesh.outbound, timeout=10)
    try:
        conn.request("GET", "/", headers={"host": "web.shop.svc.cluster.local"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, body
    xfcc = json.loads(body)["headers"]["x-forwarded-client-cert"]
    assert "URI=spiffe://cluster.local/ns/shop/sa/web" in xfcc, xfcc
