"""`serve --xds-tls`: ADS over mTLS with certificates of the mesh CA, each stream limited to its own namespace.

Real gRPC over real TLS against `meshward serve` in-process, watching the fake API server for the gateway's
`credentialName` Secret: a client without a certificate (or with one of another CA, or of another trust domain) is
refused; a workload of namespace `shop` gets its own proxy's config but nothing of `istio-system`'s gateway, whose
private key only a proxy of `istio-system` receives. Refusals are a gRPC status, a log line and a metric."""

from __future__ import annotations

import asyncio
import datetime
import logging
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from fake_apiserver import FakeApiServer
from gateway_tree import CREDENTIAL, GATEWAY_NODE, make_repo, write_tree
from serve_harness import ServeHarness, eventually
from test_serve_cluster import tls_secret
from tls_certs import TestCA

from meshxds import type_urls
from reconciler import serve
from reconciler.identity import ca, certs
from reconciler.identity.spiffe import Identity

SHOP_NODE = "sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local"
SHOP_WORKLOAD = """\
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-1, namespace: shop}
spec: {address: 127.0.0.1, labels: {app: web}}
"""


def start(tmp_path: Path, apiserver: FakeApiServer) -> tuple[ServeHarness, ca.CertificateAuthority]:
    work = write_tree(tmp_path / "work", gateway_port=18443)
    with (work / "policy.yaml").open("a") as policy:
        policy.write(SHOP_WORKLOAD)
    make_repo(work)
    authority = ca.load_or_create(tmp_path / "ca")
    config = serve.ServeConfig(repo=str(work), poll_interval=3600, xds_address="127.0.0.1:0",
                               admin_address="127.0.0.1:0", kube_host=apiserver.url, ca_dir=tmp_path / "ca",
                               ca_address="127.0.0.1:0", xds_tls=True)
    h = ServeHarness(config, tmp_path / "serve")
    eventually(lambda: h.status().get("serving") and h.status()["cluster"]["synced"], what="first commit served")
    return h, authority


def workload(authority: ca.CertificateAuthority, namespace: str, account: str, *,
             trust_domain: str = "cluster.local", server_root: bytes | None = None) -> grpc.ChannelCredentials:
    """TLS credentials holding a certificate the CA signed for that identity, as an agent's `default`; the server
    is verified with `server_root` (default: that CA's root)."""
    identity = Identity(trust_domain, namespace, account)
    key = certs.new_key()
    csr = x509.load_pem_x509_csr(certs.make_csr(key, identity).encode())
    chain = authority.sign_workload(csr, identity, datetime.timedelta(hours=1))
    return grpc.ssl_channel_credentials(root_certificates=server_root or chain[-1].encode(),
                                        private_key=certs.key_pem(key), certificate_chain="".join(chain[:-1]).encode())


def ask(port: int, credentials: grpc.ChannelCredentials | None, node: str, type_url: str,
        names: tuple[str, ...] = (), *, delta: bool = False) -> Any:
    """The first response of a state-of-the-world (or `delta`) ADS stream; a plain one when `credentials` is
    None."""
    async def call() -> Any:
        target = f"127.0.0.1:{port}"
        async with (grpc.aio.insecure_channel(target) if credentials is None
                    else grpc.aio.secure_channel(target, credentials)) as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            if delta:
                stream = stub.DeltaAggregatedResources()
                await stream.write(discovery_pb2.DeltaDiscoveryRequest(
                    node=base_pb2.Node(id=node), type_url=type_url, resource_names_subscribe=list(names)))
            else:
                stream = stub.StreamAggregatedResources()
                await stream.write(discovery_pb2.DiscoveryRequest(node=base_pb2.Node(id=node), type_url=type_url,
                                                                  resource_names=list(names)))
            return await stream.read()
    return asyncio.run(asyncio.wait_for(call(), 20))


def refusal(port: int, credentials: grpc.ChannelCredentials | None, node: str, *,
            delta: bool = False) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        ask(port, credentials, node, type_urls.SECRET, (CREDENTIAL,), delta=delta)
    return refused.value


def secrets(response: Any) -> dict[str, secret_pb2.Secret]:
    out = {}
    delta = isinstance(response, discovery_pb2.DeltaDiscoveryResponse)
    for item in response.resources:
        secret = secret_pb2.Secret()
        (item.resource if delta else item).Unpack(secret)
        out[secret.name] = secret
    return out


def test_only_a_proxy_of_the_gateways_namespace_gets_its_key(
        tmp_path: Path, apiserver: FakeApiServer, caplog: pytest.LogCaptureFixture) -> None:
    leaf = TestCA().issue("shop.example.com")
    apiserver.apply(tls_secret(CREDENTIAL, "istio-system", leaf.cert_pem, leaf.key_pem))
    caplog.set_level(logging.WARNING, logger="reconciler.xds.ads_guard")
    h, authority = start(tmp_path, apiserver)
    try:
        port = h.server.xds_port
        gateway = workload(authority, "istio-system", "istio-ingressgateway")
        shop = workload(authority, "shop", "web")

        # The gateway's own identity gets its certificate and key.
        got = secrets(ask(port, gateway, GATEWAY_NODE, type_urls.SECRET, (CREDENTIAL,)))
        assert leaf.key_pem.decode().splitlines()[1] in str(got[CREDENTIAL].tls_certificate.private_key)

        # Namespace shop asking for the gateway's node id gets nothing but a status.
        denied = refusal(port, shop, GATEWAY_NODE)
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "spiffe://cluster.local/ns/shop/sa/web" in (denied.details() or "")
        assert "istio-system" in (denied.details() or "")
        assert any("refused an ADS stream" in r.getMessage() and "ns/shop/sa/web" in r.getMessage()
                   for r in caplog.records)
        assert 'meshward_xds_limited_total{limit="namespace"} 1.0' in metrics(h)

        # Its own proxy is served (a listener), and no secret of another namespace rides along.
        assert ask(port, shop, SHOP_NODE, type_urls.LISTENER).resources
        assert not secrets(ask(port, shop, SHOP_NODE, type_urls.SECRET, (CREDENTIAL,)))

        # The same over incremental xDS.
        assert refusal(port, shop, GATEWAY_NODE, delta=True).code() == grpc.StatusCode.PERMISSION_DENIED
        got = secrets(ask(port, gateway, GATEWAY_NODE, type_urls.SECRET, (CREDENTIAL,), delta=True))
        assert leaf.key_pem.decode().splitlines()[1] in str(got[CREDENTIAL].tls_certificate.private_key)

        # A node id that names no namespace: refused too.
        assert refusal(port, shop, "not-an-istio-node").code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        h.close()


def test_a_client_without_a_mesh_certificate_is_refused(tmp_path: Path, apiserver: FakeApiServer) -> None:
    h, authority = start(tmp_path, apiserver)
    try:
        port = h.server.xds_port
        root = certs.pem(authority.root).encode()
        # No client certificate (TLS, or plaintext): the handshake fails, nothing is read.
        assert refusal(port, grpc.ssl_channel_credentials(root_certificates=root), GATEWAY_NODE).code() \
            == grpc.StatusCode.UNAVAILABLE
        assert refusal(port, None, GATEWAY_NODE).code() == grpc.StatusCode.UNAVAILABLE
        # A certificate of another CA does not verify.
        other = ca.load_or_create(tmp_path / "other-ca")
        forged = workload(other, "istio-system", "istio-ingressgateway", server_root=root)
        assert refusal(port, forged, GATEWAY_NODE).code() == grpc.StatusCode.UNAVAILABLE
        # One of ours for another trust domain verifies, but names no identity of this mesh.
        foreign = workload(authority, "istio-system", "istio-ingressgateway", trust_domain="example.org")
        refused = refusal(port, foreign, GATEWAY_NODE)
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "example.org" in (refused.details() or "")
        assert 'meshward_xds_limited_total{limit="unauthenticated"} 1.0' in metrics(h)
    finally:
        h.close()


def metrics(h: ServeHarness) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{h.server.admin.port}/metrics", timeout=5) as resp:
        return resp.read().decode()
