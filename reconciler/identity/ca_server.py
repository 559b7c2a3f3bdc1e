"""The CA's gRPC endpoint: Istio's `istio.v1.auth.IstioCertificateService/CreateCertificate`, over TLS, so meshward's
agents and Istio's own can get workload certificates (Istio security/pkg/server/ca/server.go).

Before anything is signed the caller is authenticated by the bearer token of its `authorization` metadata, and the
CSR must ask for exactly the identity that token proves (Istio checks the CSR's SANs against the caller's
identities the same way). Each refusal is a gRPC status with the reason, and a log line; no request can stop the
server. Requests larger than gRPC's receive limit are refused by gRPC itself (RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from reconciler.identity import ca, certs, istio_ca_api, tokens
from reconciler.identity.spiffe import Identity

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 256 * 1024  # above the 64 KiB CSR limit, so that limit answers with its own reason
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})

Authenticate = Callable[[str], tokens.Caller]  # a bearer token to its caller, or tokens.TokenError


class Refusal(Exception):
    """A request the CA does not sign: the gRPC status it answers with, and why."""

    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class CaService:
    """CreateCertificate's decisions, apart from the transport."""

    def __init__(self, authority: ca.CertificateAuthority, authenticate: Authenticate) -> None:
        self.authority = authority
        self.authenticate = authenticate

    def create_certificate(self, request: Any, metadata: Sequence[tuple[str, str | bytes]]) -> Any:
        """The response for one request, or Refusal."""
        caller = self._caller(metadata)
        try:
            csr, asked = certs.parse_csr(request.csr)
            lifetime = self.authority.lifetime(request.validity_duration)
        except ValueError as err:  # CsrError, TtlError
            raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
        allowed = Identity(self.authority.options.trust_domain, caller.namespace, caller.service_account)
        if asked != allowed:
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED,
                          f"the CSR asks for {asked.uri} but the token is for {allowed.uri}")
        chain = self.authority.sign_workload(csr, asked, lifetime)
        log.info("signed a certificate for %s, valid for %s", asked.uri, lifetime)
        return istio_ca_api.IstioCertificateResponse(cert_chain=chain)

    def _caller(self, metadata: Sequence[tuple[str, str | bytes]]) -> tokens.Caller:
        values = [v for k, v in metadata if k == "authorization" and isinstance(v, str)]
        scheme, _, token = (values[0] if values else "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "no bearer token in the authorization metadata")
        try:
            return self.authenticate(token.strip())
        except tokens.TokenError as err:
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, str(err)) from err


def serving_hosts(address: str, extra: Sequence[str] = ()) -> list[str]:
    """The names the CA's certificate must carry for `address` (HOST:PORT): its host, or for a wildcard bind the
    loopback names and this machine's hostname, plus `extra` (names clients use through a proxy or a Service)."""
    host = address.rpartition(":")[0].strip("[]")
    hosts = ["127.0.0.1", "localhost", socket.gethostname()] if host in WILDCARDS else [host]
    return [*hosts, *extra]


class CaServer:
    """The gRPC server: start() binds `address` over TLS with a certificate the CA issues itself."""

    def __init__(self, service: CaService) -> None:
        self.service = service
        self._server: grpc.aio.Server | None = None

    async def start(self, address: str, *, extra_hosts: Sequence[str] = ()) -> int:
        """Listen on `address` (port 0 picks one); returns the bound port."""
        key, chain = self.service.authority.serving_certificate(serving_hosts(address, extra_hosts))
        credentials = grpc.ssl_server_credentials([(key, chain)])
        self._server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        self._server.add_generic_rpc_handlers((self._handlers(),))
        port = int(self._server.add_secure_port(address, credentials))
        await self._server.start()
        log.info("CA listening on %s (port %d)", address, port)
        return port

    def _handlers(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self._create_certificate, request_deserializer=istio_ca_api.IstioCertificateRequest.FromString,
            response_serializer=istio_ca_api.IstioCertificateResponse.SerializeToString)
        return grpc.method_handlers_generic_handler(istio_ca_api.SERVICE, {istio_ca_api.METHOD: method})

    async def _create_certificate(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            # off the event loop: signing is CPU work and a TokenReview is an HTTP call
            return await asyncio.to_thread(self.service.create_certificate, request,
                                           tuple(context.invocation_metadata() or ()))
        except Refusal as refusal:
            log.warning("refused a certificate to %s: %s", context.peer(), refusal.reason)
            await context.abort(refusal.code, refusal.reason)

    async def stop(self, grace: float | None = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None


def local_authenticator(ca_dir: Path, *, others: Authenticate | None = None) -> Authenticate:
    """Tokens minted by `meshward token` with this CA directory's key; with `others` (a TokenReview in cluster
    mode), every token that is not one of ours goes there."""
    public_key = tokens.load_or_create_key(ca_dir).public_key()

    def authenticate(token: str) -> tokens.Caller:
        if others is None or tokens.is_local(token):
            return tokens.verify(public_key, token)
        return others(token)
    return authenticate
