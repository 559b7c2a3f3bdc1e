"""The CA server with a real gRPC client over real TLS on 127.0.0.1: Istio's CreateCertificate signs the identity
the token proves, and refuses forged SANs, expired, forged or missing tokens, oversized and malformed CSRs with a
gRPC status and a logged reason, serving the next request as before."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from reconciler.identity import ca, ca_client, ca_server, certs, tokens
from reconciler.identity.spiffe import Identity

WEB = Identity("cluster.local", "shop", "web")
HOUR = datetime.timedelta(hours=1)

Scenario = Callable[[grpc.aio.Channel, Path], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario) -> None:
    """`scenario(channel, ca_dir)` against a CA served on a free loopback port, verified with the root alone."""
    async def main() -> None:
        authority = ca.load_or_create(tmp_path / "ca")
        server = ca_server.CaServer(ca_server.CaService(authority, ca_server.local_authenticator(tmp_path / "ca")))
        port = await server.start("127.0.0.1:0")
        channel = ca_client.channel(f"127.0.0.1:{port}", certs.pem(authority.root).encode())
        try:
            await scenario(channel, tmp_path / "ca")
        finally:
            await channel.close()
            await server.stop(None)
    asyncio.run(main())


def token(ca_dir: Path, **kw: datetime.datetime) -> str:
    return tokens.mint(tokens.load_or_create_key(ca_dir), tokens.Caller("shop", "web"), ttl=HOUR, **kw)


async def sign(channel: grpc.aio.Channel, bearer: str, csr: str | None = None, seconds: int = 0) -> list[str]:
    return await ca_client.create_certificate(channel, csr=csr or certs.make_csr(certs.new_key(), WEB),
                                              token=bearer, validity_seconds=seconds)


def test_a_csr_for_the_tokens_identity_gets_its_chain(tmp_path: Path) -> None:
    async def scenario(channel: grpc.aio.Channel, ca_dir: Path) -> None:
        chain = [x509.load_pem_x509_certificate(p.encode()) for p in await sign(channel, token(ca_dir), seconds=600)]
        leaf, root = chain
        assert root == ca.load(ca_dir).root
        leaf.verify_directly_issued_by(root)
        assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.UniformResourceIdentifier) == [WEB.uri]
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(seconds=600)
    run(tmp_path, scenario)


def _refused(code: grpc.StatusCode, reason: str, request: Callable[[grpc.aio.Channel, Path], Awaitable[object]]
             ) -> Scenario:
    """A scenario: `request` is refused with `code` and `reason`, then a good request is still served."""
    async def scenario(channel: grpc.aio.Channel, ca_dir: Path) -> None:
        with pytest.raises(ca_client.CaCallError, match=f"{code.name}: .*{reason}"):
            await request(channel, ca_dir)
        assert len(await sign(channel, token(ca_dir))) == 2
    return scenario


REFUSALS: dict[str, tuple[grpc.StatusCode, str, Callable[[grpc.aio.Channel, Path], Awaitable[object]]]] = {
    "forged SAN": (grpc.StatusCode.PERMISSION_DENIED, ("asks for spiffe://cluster.local/ns/kube-system/sa/admin "
                                                        "but the token is for spiffe://cluster.local/ns/shop/sa/web"),
                   lambda ch, d: sign(ch, token(d), certs.make_csr(certs.new_key(),
                                                                   Identity("cluster.local", "kube-system", "admin")))),
    "other trust domain": (grpc.StatusCode.PERMISSION_DENIED, "asks for spiffe://example.org/ns/shop/sa/web",
                           lambda ch, d: sign(ch, token(d), certs.make_csr(certs.new_key(),
                                                                           Identity("example.org", "shop", "web")))),
    "expired token": (grpc.StatusCode.UNAUTHENTICATED, "the token has expired",
                      lambda ch, d: sign(ch, token(d, now=datetime.datetime.now(datetime.UTC) - 2 * HOUR))),
    "forged token": (grpc.StatusCode.UNAUTHENTICATED, "signature does not verify",
                     lambda ch, d: sign(ch, token(d.parent / "elsewhere"))),
    "garbage token": (grpc.StatusCode.UNAUTHENTICATED, "malformed", lambda ch, d: sign(ch, "garbage")),
    "no token": (grpc.StatusCode.UNAUTHENTICATED, "no bearer token", lambda ch, d: sign(ch, "")),
    "oversized CSR": (grpc.StatusCode.INVALID_ARGUMENT, "over the 64 KiB limit",
                      lambda ch, d: sign(ch, token(d), "x" * 100_000)),
    "huge message": (grpc.StatusCode.RESOURCE_EXHAUSTED, "", lambda ch, d: sign(ch, token(d), "x" * 1_000_000)),
    "malformed CSR": (grpc.StatusCode.INVALID_ARGUMENT, "not a PEM certificate request",
                      lambda ch, d: sign(ch, token(d), "-----BEGIN CERTIFICATE REQUEST-----\nAA==\n")),
    "lifetime over the maximum": (grpc.StatusCode.INVALID_ARGUMENT, "more than the maximum",
                                  lambda ch, d: sign(ch, token(d), seconds=365 * 86400)),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_carry_a_status_and_a_reason_and_the_ca_keeps_serving(
        tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    code, reason, request = REFUSALS[case]
    with caplog.at_level(logging.WARNING, logger=ca_server.__name__):
        run(tmp_path, _refused(code, reason, request))
    if code is not grpc.StatusCode.RESOURCE_EXHAUSTED:  # refused by gRPC before the CA sees it
        assert any("refused a certificate" in r.message and reason in r.message for r in caplog.records)


def test_a_client_that_trusts_another_root_does_not_talk_to_the_ca(tmp_path: Path) -> None:
    other_root = certs.pem(ca.load_or_create(tmp_path / "other").root).encode()

    async def main() -> None:
        authority = ca.load_or_create(tmp_path / "ca")
        server = ca_server.CaServer(ca_server.CaService(authority, ca_server.local_authenticator(tmp_path / "ca")))
        port = await server.start("127.0.0.1:0")
        try:
            async with ca_client.channel(f"127.0.0.1:{port}", other_root) as stranger:
                with pytest.raises(ca_client.CaCallError, match="UNAVAILABLE"):
                    await sign(stranger, token(tmp_path / "ca"))
        finally:
            await server.stop(None)
    asyncio.run(main())


def test_a_wildcard_bind_names_loopback_and_this_host() -> None:
    assert ca_server.serving_hosts("127.0.0.2:15012") == ["127.0.0.2"]
    assert ca_server.serving_hosts("[::1]:15012", ["meshward.istio-system.svc"]) == \
        ["::1", "meshward.istio-system.svc"]
    assert ca_server.serving_hosts("0.0.0.0:15012")[:2] == ["127.0.0.1", "localhost"]
