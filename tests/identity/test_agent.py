"""The agent against a real CA over TLS, read through its SDS socket with a real gRPC client: `default` holds a
key that never touched the disk and a leaf naming the workload, `ROOTCA` the root; renewal at half life pushes a
new key and certificate over the open stream; Envoy's ACKs do not make it resend; a wrong start is an error."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from identity_harness import agent_config, ca_running

from meshward import cli
from reconciler.identity import agent, ca, certs, sds, tokens


class SdsClient:
    """One StreamSecrets stream, as Envoy opens it for one secret."""

    def __init__(self, socket: Path, names: list[str]) -> None:
        self.channel = grpc.aio.insecure_channel(f"unix:{socket}")
        self.requests: asyncio.Queue[discovery_pb2.DiscoveryRequest] = asyncio.Queue()
        self.requests.put_nowait(discovery_pb2.DiscoveryRequest(resource_names=names, type_url=sds.SECRET_TYPE))
        self.responses = sds_pb2_grpc.SecretDiscoveryServiceStub(self.channel).StreamSecrets(self._requests())

    async def _requests(self) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while True:
            yield await self.requests.get()

    async def receive(self, timeout: float = 10.0) -> tuple[discovery_pb2.DiscoveryResponse, list[secret_pb2.Secret]]:
        """The next response, acknowledged as Envoy does (its version and nonce back)."""
        response = await asyncio.wait_for(self.responses.read(), timeout)
        assert response.type_url == sds.SECRET_TYPE
        self.requests.put_nowait(discovery_pb2.DiscoveryRequest(
            version_info=response.version_info, response_nonce=response.nonce, type_url=sds.SECRET_TYPE,
            resource_names=[r.name for r in _secrets(response)]))
        return response, _secrets(response)

    async def close(self) -> None:
        self.responses.cancel()
        await self.channel.close()


def _secrets(response: discovery_pb2.DiscoveryResponse) -> list[secret_pb2.Secret]:
    out = []
    for resource in response.resources:
        secret = secret_pb2.Secret()
        resource.Unpack(secret)
        out.append(secret)
    return out


async def _agent_running(config: agent.AgentConfig) -> tuple[agent.Agent, asyncio.Task[None]]:
    running = agent.Agent(config)
    await running.start()
    return running, asyncio.create_task(running.run())


async def _stop(running: agent.Agent, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await running.stop()


def _leaf(secret: secret_pb2.Secret) -> x509.Certificate:
    return x509.load_pem_x509_certificates(secret.tls_certificate.certificate_chain.inline_bytes)[0]


def test_default_and_rootca_over_the_socket(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with ca_running(tmp_path / "ca") as address:
            config = agent_config(tmp_path, tmp_path / "ca", address)
            running, task = await _agent_running(config)
            client = SdsClient(config.sds_socket, [sds.DEFAULT, sds.ROOTCA])
            try:
                _, (rootca, default) = await client.receive()  # sorted by name
            finally:
                await client.close()
                await _stop(running, task)
        assert default.name == "default" and rootca.name == "ROOTCA"
        leaf = _leaf(default)
        key = serialization.load_pem_private_key(default.tls_certificate.private_key.inline_bytes, None)
        assert key.public_key() == leaf.public_key()
        assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://cluster.local/ns/shop/sa/web"]
        assert x509.load_pem_x509_certificates(rootca.validation_context.trusted_ca.inline_bytes) == \
            [ca.load(tmp_path / "ca").root]

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    home = tmp_path / "web"
    assert all(b"PRIVATE KEY" not in p.read_bytes() for p in home.iterdir() if p.is_file())
    assert not any("PRIVATE KEY" in r.getMessage() for r in caplog.records)


def test_the_socket_is_for_the_agents_user_only(tmp_path: Path) -> None:
    async def main() -> int:
        async with ca_running(tmp_path / "ca") as address:
            config = agent_config(tmp_path, tmp_path / "ca", address)
            running, task = await _agent_running(config)
            try:
                return config.sds_socket.stat().st_mode & 0o777
            finally:
                await _stop(running, task)
    assert asyncio.run(main()) == 0o600


def test_renewal_at_half_life_is_pushed_over_the_open_stream(tmp_path: Path) -> None:
    async def main() -> None:
        async with ca_running(tmp_path / "ca") as address:
            config = agent_config(tmp_path, tmp_path / "ca", address, ttl=datetime.timedelta(seconds=2))
            running, task = await _agent_running(config)
            client = SdsClient(config.sds_socket, [sds.DEFAULT])
            try:
                first, (old,) = await client.receive()
                second, (new,) = await client.receive(timeout=5)  # pushed, no request asked for it
            finally:
                await client.close()
                await _stop(running, task)
        assert second.version_info != first.version_info and second.nonce != first.nonce
        assert _leaf(new).serial_number != _leaf(old).serial_number
        assert new.tls_certificate.private_key.inline_bytes != old.tls_certificate.private_key.inline_bytes
        assert _leaf(new).not_valid_before_utc - _leaf(old).not_valid_before_utc >= datetime.timedelta(seconds=1)
    asyncio.run(main())


def test_an_ack_gets_no_resend(tmp_path: Path) -> None:
    async def main() -> None:
        async with ca_running(tmp_path / "ca") as address:
            config = agent_config(tmp_path, tmp_path / "ca", address)
            running, task = await _agent_running(config)
            client = SdsClient(config.sds_socket, [sds.ROOTCA])
            try:
                await client.receive()
                with pytest.raises(TimeoutError):
                    await client.receive(timeout=1)
            finally:
                await client.close()
                await _stop(running, task)
    asyncio.run(main())


def test_the_agent_retries_while_the_ca_refuses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with ca_running(tmp_path / "ca") as address:
            config = agent_config(tmp_path, tmp_path / "ca", address)
            good = config.token_file.read_text()
            config.token_file.write_text(good[:-4] + "AAAA")  # a forged signature
            running, task = await _agent_running(config)
            client = SdsClient(config.sds_socket, [sds.DEFAULT])
            try:
                await asyncio.sleep(0.5)
                assert running.issued is None
                config.token_file.write_text(good)  # rotated: the next attempt reads it
                await client.receive(timeout=10)
            finally:
                await client.close()
                await _stop(running, task)
    with caplog.at_level(logging.WARNING, logger=agent.__name__):
        asyncio.run(main())
    assert any("UNAUTHENTICATED" in r.getMessage() and "signature does not verify" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize(("lifetime_s", "shortest", "longest"), [(3600, 30.0, 30.0), (40, 10.0, 20.0),
                                                               (1, agent.RETRY_FIRST, agent.RETRY_FIRST)],
                         ids=["far-from-expiry", "near-expiry", "expiring"])
def test_a_failed_renewal_is_retried_before_the_served_certificate_expires(tmp_path: Path, lifetime_s: int,
                                                                           shortest: float, longest: float) -> None:
    """Doubling backoff reaches 30 s; a certificate of seconds would lapse in it although the CA came back."""
    config = agent_config(tmp_path, ca_dir=tmp_path / "ca", address="127.0.0.1:1")
    running = agent.Agent(config)
    assert running.retry_wait(30.0) == 30.0  # nothing served yet: nothing to lose
    key = certs.new_key()
    csr, identity = certs.parse_csr(certs.make_csr(key, running.identity))
    chain = ca.load(tmp_path / "ca").sign_workload(csr, identity, datetime.timedelta(seconds=lifetime_s))
    leaf = certs.load_pems(chain[0].encode())[0]
    running.issued = agent.Issued(sds.Credentials(key_pem=b"", chain_pem=b"", roots_pem=b""), leaf, ())
    assert shortest <= running.retry_wait(30.0) <= longest  # at most half of what is left, not less than 1 s


def test_a_node_of_another_namespace_than_the_token_is_refused(tmp_path: Path) -> None:
    config = agent_config(tmp_path, ca_dir=tmp_path / "ca", address="127.0.0.1:1")
    wrong = agent.AgentConfig(**{**config.__dict__, "node": "sidecar~127.0.0.1~web-1.prod~prod.svc.cluster.local"})
    with pytest.raises(agent.AgentError, match="namespace 'prod' but the token is for 'shop'"):
        agent.Agent(wrong)


def test_an_unreadable_token_is_refused(tmp_path: Path) -> None:
    config = agent_config(tmp_path, ca_dir=tmp_path / "ca", address="127.0.0.1:1")
    config.token_file.write_text("garbage")
    with pytest.raises(agent.AgentError, match="cannot use --token-file .*malformed"):
        agent.Agent(config)


def test_the_agent_command_exits_2_on_a_bad_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = agent_config(tmp_path, ca_dir=tmp_path / "ca", address="127.0.0.1:1")
    config.token_file.write_text("garbage")
    assert cli.main(["agent", "--node", config.node, "--ca-address", config.ca_address, "--ca-root",
                     str(config.ca_root), "--token-file", str(config.token_file), "--sds-socket",
                     str(config.sds_socket)]) == 2
    assert capsys.readouterr().err.startswith("meshward agent: cannot use --token-file")


def _overlap_dir(target: Path, signing: Path, bundle: list[Path], token_key: Path) -> Path:
    """`signing`'s CA files, with `bundle`'s roots in root-cert.pem and one token key for both phases."""
    shutil.copytree(signing, target)
    (target / ca.ROOT_CERT).write_text("".join((b / ca.ROOT_CERT).read_text() for b in bundle))
    shutil.copy(token_key / tokens.TOKEN_KEY, target / tokens.TOKEN_KEY)
    return target


def _issued_by(leaf: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(root)
    except (ValueError, InvalidSignature):
        return False
    return True


async def _until_issued_by(client: SdsClient, root: x509.Certificate) -> tuple[secret_pb2.Secret, ...]:
    """The pushed (ROOTCA, default) once `default`'s leaf is signed by `root`."""
    for _ in range(10):
        _, secrets = await client.receive(timeout=10)
        if _issued_by(_leaf(secrets[1]), root):
            return tuple(secrets)
    raise AssertionError("no leaf of the new root was pushed")


def _roots(rootca: secret_pb2.Secret) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(rootca.validation_context.trusted_ca.inline_bytes)


def test_a_root_rotation_with_overlap_reaches_the_agent(tmp_path: Path) -> None:
    """Phase 1: the old root signs and the bundle holds both roots; phase 2 (a new CA on the same address): the new
    root signs. The agent, given only the old root, reaches the new CA through the bundle it learned, and serves a
    leaf of the new root with both roots trusted: leaves of either phase verify everywhere during the overlap."""
    old, new = ca.load_or_create(tmp_path / "old"), ca.load_or_create(tmp_path / "new")
    tokens.load_or_create_key(tmp_path / "old")
    phase1 = _overlap_dir(tmp_path / "p1", tmp_path / "old", [tmp_path / "old", tmp_path / "new"], tmp_path / "old")
    phase2 = _overlap_dir(tmp_path / "p2", tmp_path / "new", [tmp_path / "new", tmp_path / "old"], tmp_path / "old")

    async def main() -> tuple[tuple[secret_pb2.Secret, ...], tuple[secret_pb2.Secret, ...]]:
        first_ca = contextlib.AsyncExitStack()
        address = await first_ca.enter_async_context(ca_running(phase1))
        config = agent_config(tmp_path, phase1, address, ttl=datetime.timedelta(seconds=2))
        running, task = await _agent_running(config)
        client = SdsClient(config.sds_socket, [sds.DEFAULT, sds.ROOTCA])
        try:
            _, before = await client.receive()
            await first_ca.aclose()  # the old CA goes; the new one takes its address
            async with ca_running(phase2, address):
                after = await _until_issued_by(client, new.root)
        finally:
            await client.close()
            await _stop(running, task)
            await first_ca.aclose()
        return tuple(before), after

    (rootca1, default1), (rootca2, default2) = asyncio.run(main())
    assert _issued_by(_leaf(default1), old.root) and _issued_by(_leaf(default2), new.root)
    assert _roots(rootca1) == [old.root, new.root] and _roots(rootca2) == [new.root, old.root]
