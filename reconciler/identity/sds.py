"""The agent's SDS server: Envoy's SecretDiscoveryService (StreamSecrets, state of the world) on a Unix socket,
with the two secrets Istio's agent serves, `default` (the workload's key and certificate chain) and `ROOTCA` (the
trust bundle) (Istio pkg/security/security.go: WorkloadKeyCertResourceName, RootCertReqResourceName).

Envoy opens one stream per secret it uses. A stream answers its first request as soon as the secret exists, then
pushes each new version as the agent renews (xds_protocol.rst, "ACK/NACK and resource type instance version":
a request carrying the last nonce acknowledges it; with `error_detail` it is a NACK, logged and not retried).
Versions are content hashes, so an agent restarted with the same secrets does not make Envoy reload anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2

log = logging.getLogger(__name__)

DEFAULT, ROOTCA = "default", "ROOTCA"
SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


@dataclasses.dataclass(frozen=True)
class Credentials:
    key_pem: bytes = dataclasses.field(repr=False)  # never in a log line or a traceback
    chain_pem: bytes  # the leaf, then intermediates
    roots_pem: bytes  # every root the workload trusts

    def secrets(self) -> dict[str, secret_pb2.Secret]:
        return {
            DEFAULT: secret_pb2.Secret(name=DEFAULT, tls_certificate=common_pb2.TlsCertificate(
                certificate_chain={"inline_bytes": self.chain_pem}, private_key={"inline_bytes": self.key_pem})),
            ROOTCA: secret_pb2.Secret(name=ROOTCA, validation_context=common_pb2.CertificateValidationContext(
                trusted_ca={"inline_bytes": self.roots_pem})),
        }


class SecretStore:
    """The secrets the agent holds now; streams wait here for the next generation."""

    def __init__(self) -> None:
        self.generation = 0
        self.version = ""
        self._secrets: dict[str, secret_pb2.Secret] = {}
        self._changed = asyncio.Condition()

    async def publish(self, credentials: Credentials) -> None:
        async with self._changed:
            self._secrets = credentials.secrets()
            digest = hashlib.sha256(b"".join(s.SerializeToString(deterministic=True)
                                             for _, s in sorted(self._secrets.items())))
            self.version = digest.hexdigest()[:16]
            self.generation += 1
            self._changed.notify_all()

    async def wait_past(self, generation: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.generation > generation)

    def get(self, names: frozenset[str]) -> list[secret_pb2.Secret]:
        return [self._secrets[n] for n in sorted(names) if n in self._secrets]


@dataclasses.dataclass
class _Stream:
    """One StreamSecrets stream's protocol state."""
    names: frozenset[str] = frozenset()
    sent: tuple[frozenset[str], str] | None = None  # (names, version) of the last response
    nonce: int = 0

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> None:
        if request.HasField("error_detail"):
            log.warning("Envoy rejected secrets %s version %s: %s", sorted(self.names), request.version_info,
                        request.error_detail.message)
        names = frozenset(request.resource_names)
        if unknown := names - {DEFAULT, ROOTCA}:
            log.warning("Envoy asked for secrets the agent does not serve: %s", sorted(unknown))
        self.names = names & {DEFAULT, ROOTCA} if names else frozenset({DEFAULT, ROOTCA})

    def response(self, store: SecretStore) -> discovery_pb2.DiscoveryResponse | None:
        """What to send now: the requested secrets when they or the request changed since the last response."""
        secrets = store.get(self.names)
        if not secrets or self.sent == (self.names, store.version):
            return None
        self.sent = (self.names, store.version)
        self.nonce += 1
        resources = [any_pb2.Any(type_url=SECRET_TYPE, value=s.SerializeToString()) for s in secrets]
        return discovery_pb2.DiscoveryResponse(version_info=store.version, resources=resources,
                                               type_url=SECRET_TYPE, nonce=str(self.nonce))


class SdsServer(sds_pb2_grpc.SecretDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, store: SecretStore) -> None:
        self.store = store
        self._server: grpc.aio.Server | None = None

    async def start(self, socket_path: Path) -> None:
        """Serve on a Unix socket only the agent's user can use: it hands out a private key."""
        socket_path.unlink(missing_ok=True)  # a socket left by an agent that did not stop cleanly
        self._server = grpc.aio.server()
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(self, self._server)
        old_umask = os.umask(0o177)  # the socket is created 0600, never briefly open to others
        try:
            self._server.add_insecure_port(f"unix:{socket_path}")
            await self._server.start()
        finally:
            os.umask(old_umask)
        log.info("SDS on unix:%s", socket_path)

    async def stop(self, grace: float | None = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def StreamSecrets(self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
                            context: grpc.aio.ServicerContext[Any, Any]) -> None:
        events: asyncio.Queue[discovery_pb2.DiscoveryRequest | _Event] = asyncio.Queue()
        feeders = [asyncio.create_task(_pump(request_iterator, events)),
                   asyncio.create_task(_watch(self.store, events))]
        stream = _Stream()
        try:
            while (event := await events.get()) is not _Event.CLOSED:
                if isinstance(event, discovery_pb2.DiscoveryRequest):
                    stream.on_request(event)
                if stream.names and (response := stream.response(self.store)) is not None:
                    await context.write(response)
        finally:
            for task in feeders:
                task.cancel()
            await asyncio.gather(*feeders, return_exceptions=True)


class _Event(enum.Enum):
    CHANGED = "changed"  # the store has a new generation
    CLOSED = "closed"  # Envoy closed its side of the stream


async def _pump(source: AsyncIterator[discovery_pb2.DiscoveryRequest],
                into: asyncio.Queue[discovery_pb2.DiscoveryRequest | _Event]) -> None:
    try:
        async for request in source:
            await into.put(request)
    finally:
        await into.put(_Event.CLOSED)


async def _watch(store: SecretStore, into: asyncio.Queue[discovery_pb2.DiscoveryRequest | _Event]) -> None:
    generation = 0
    while True:
        await store.wait_past(generation)
        generation = store.generation
        await into.put(_Event.CHANGED)
