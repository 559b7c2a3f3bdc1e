"""The CA in cluster mode: service-account tokens checked with a TokenReview against a (fake) API server, beside
`meshward token` tokens; a token the API server does not authenticate, one for another audience, a user that is
not a service account and an unreachable API server are refused with the reason."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

import jwt
import kubernetes.client
import pytest
from fake_apiserver import TOKEN_REVIEWS, FakeApiServer

from reconciler import serve
from reconciler.identity import ca, ca_client, ca_server, certs, tokens
from reconciler.identity.spiffe import Identity
from reconciler.kube import token_review

WEB = Identity("cluster.local", "shop", "web")


def sa_token(name: str) -> str:
    """A JWT as a kubelet would mount one (only the API server judges it here)."""
    return jwt.encode({"iss": "https://kubernetes.default.svc", "sub": name}, "a key only the test cluster would know, 32+ bytes", algorithm="HS256")


def call(tmp_path: Path, apiserver: FakeApiServer, bearer: str, identity: Identity = WEB) -> list[str]:
    async def main() -> list[str]:
        reviewer = token_review.TokenReviewer(kubernetes.client.ApiClient(
            kubernetes.client.Configuration(host=apiserver.url)))
        authority = ca.load_or_create(tmp_path / "ca")
        server = ca_server.CaServer(ca_server.CaService(
            authority, ca_server.local_authenticator(tmp_path / "ca", others=reviewer)))
        port = await server.start("127.0.0.1:0")
        try:
            async with ca_client.channel(f"127.0.0.1:{port}", certs.pem(authority.root).encode()) as channel:
                return await ca_client.create_certificate(channel, csr=certs.make_csr(certs.new_key(), identity),
                                                          token=bearer, validity_seconds=0)
        finally:
            await server.stop(None)
    return asyncio.run(main())


def test_a_service_account_token_gets_its_identity(tmp_path: Path, apiserver: FakeApiServer) -> None:
    apiserver.add_token(token := sa_token("web"), "system:serviceaccount:shop:web")
    assert len(call(tmp_path, apiserver, token)) == 2
    assert [r.path for r in apiserver.requests("TokenReview")] == [TOKEN_REVIEWS]
    with pytest.raises(ca_client.CaCallError, match="PERMISSION_DENIED: .*but the token is for "
                                                    "spiffe://cluster.local/ns/shop/sa/web"):
        call(tmp_path, apiserver, token, Identity("cluster.local", "shop", "admin"))


def test_meshward_tokens_are_still_verified_locally(tmp_path: Path, apiserver: FakeApiServer) -> None:
    local = tokens.mint(tokens.load_or_create_key(tmp_path / "ca"), tokens.Caller("shop", "web"),
                        ttl=datetime.timedelta(minutes=5))
    assert len(call(tmp_path, apiserver, local)) == 2
    assert apiserver.requests("TokenReview") == []


@pytest.mark.parametrize(("username", "audiences", "reason"), [
    (None, (), "Kubernetes did not authenticate the token: invalid bearer token"),
    ("system:serviceaccount:shop:web", ("api",), "not for the CA's audience istio-ca"),
    ("alice@example.com", ("istio-ca",), "not a service account's \\(user 'alice@example.com'\\)"),
])
def test_refused_tokens(tmp_path: Path, apiserver: FakeApiServer, username: str | None,
                        audiences: tuple[str, ...], reason: str) -> None:
    token = sa_token("web")
    if username is not None:
        apiserver.add_token(token, username, audiences)
    with pytest.raises(ca_client.CaCallError, match=f"UNAUTHENTICATED: .*{reason}"):
        call(tmp_path, apiserver, token)


def test_an_unreachable_api_server_is_a_reason_too(tmp_path: Path, apiserver: FakeApiServer) -> None:
    apiserver.stop()
    with pytest.raises(ca_client.CaCallError, match="UNAUTHENTICATED: cannot reach the Kubernetes API"):
        call(tmp_path, apiserver, sa_token("web"))


def test_serve_with_a_cluster_reviews_service_account_tokens(tmp_path: Path, apiserver: FakeApiServer) -> None:
    apiserver.add_token(token := sa_token("web"), "system:serviceaccount:shop:web")
    config = serve.ServeConfig(repo=str(tmp_path / "repo"), xds_address="127.0.0.1:0", admin_address="127.0.0.1:0",
                               kube_host=apiserver.url, ca_dir=tmp_path / "ca", ca_address="127.0.0.1:0")

    async def main() -> list[str]:
        server = serve.Server(config, tmp_path)
        await server.start()
        try:
            root = certs.pem(ca.load(tmp_path / "ca").root).encode()
            async with ca_client.channel(f"127.0.0.1:{server.ca_port}", root) as channel:
                return await ca_client.create_certificate(channel, csr=certs.make_csr(certs.new_key(), WEB),
                                                          token=token, validity_seconds=0)
        finally:
            await server.stop()
    assert len(asyncio.run(main())) == 2
    assert len(apiserver.requests("TokenReview")) == 1
