"""`meshward agent` (Istio's pilot-agent part): beside each Envoy, it holds the workload's identity.

It makes a private key in memory (never written, never sent, never logged), asks the CA to sign a CSR for the
identity its token names, and serves the key and chain as SDS `default` and the trust bundle as `ROOTCA` on a Unix
socket (`sds.py`); the trust bundle is the one the CA hands out (every root of its `root-cert.pem`, so a root
rotation's overlap reaches every workload). At half the certificate's life it makes a new key and gets it signed, and the open SDS streams
push it to Envoy (Istio's SECRET_GRACE_PERIOD_RATIO, 0.5). A failed renewal is retried with backoff while the
current certificate is still served, more often as its expiry nears.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import signal
import sys
from pathlib import Path

import grpc
from cryptography import x509

from reconciler.identity import ca_client, certs, sds, tokens
from reconciler.identity.spiffe import DEFAULT_TRUST_DOMAIN, Identity
from reconciler.xds import xds_node

log = logging.getLogger(__name__)

RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds between attempts after a failed signing, doubling


class AgentError(Exception):
    """A configuration the agent cannot start with: printed, exit code 2."""


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    node: str
    ca_address: str
    ca_root: Path
    token_file: Path
    sds_socket: Path
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    cert_ttl: datetime.timedelta = datetime.timedelta(hours=24)


@dataclasses.dataclass(frozen=True)
class Issued:
    credentials: sds.Credentials
    leaf: x509.Certificate
    roots: tuple[x509.Certificate, ...]  # the trust bundle the CA handed out with it

    @property
    def renew_at(self) -> datetime.datetime:
        return self.leaf.not_valid_before_utc + (self.leaf.not_valid_after_utc - self.leaf.not_valid_before_utc) / 2


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        try:
            self.ca_roots = certs.load_pems(config.ca_root.read_bytes())
        except (OSError, ValueError) as err:
            raise AgentError(f"cannot read --ca-root {config.ca_root}: {err}") from err
        self.identity = self._identity()  # checked now, so a wrong token is an error at start
        self.store = sds.SecretStore()
        self.sds = sds.SdsServer(self.store)
        self.issued: Issued | None = None

    def _identity(self) -> Identity:
        """The identity the token claims (the CA verifies it); a node id of another namespace is a mistake."""
        try:
            caller = tokens.unverified_caller(self.config.token_file.read_text().strip())
            identity = Identity(self.config.trust_domain, caller.namespace, caller.service_account)
        except (OSError, ValueError) as err:
            raise AgentError(f"cannot use --token-file {self.config.token_file}: {err}") from err
        node = xds_node.parse_istio_node_id(self.config.node)
        if node is not None and node.namespace != identity.namespace:
            raise AgentError(f"node {self.config.node} is in namespace {node.namespace!r} but the token is for "
                             f"{identity.namespace!r}")
        return identity

    async def start(self) -> None:
        await self.sds.start(self.config.sds_socket)

    async def stop(self) -> None:
        await self.sds.stop()

    async def run(self) -> None:
        """Get a certificate, serve it, renew it at half life; until cancelled."""
        while True:
            self.issued = await self._issue_with_retry()
            await self.store.publish(self.issued.credentials)
            leaf = self.issued.leaf
            log.info("serving %s, serial %x, valid until %s, renewing at %s", self.identity.uri,
                     leaf.serial_number, leaf.not_valid_after_utc, self.issued.renew_at)
            await asyncio.sleep(max(0.0, (self.issued.renew_at - _now()).total_seconds()))

    def _ca_trust(self) -> bytes:
        """The roots that verify the CA: `--ca-root` and the bundle the CA last handed out, so that after a root
        rotation the agent reaches a CA whose certificate chains to the new root it learned during the overlap."""
        learned = self.issued.roots if self.issued else ()
        return b"".join(certs.pem(c).encode() for c in dict.fromkeys([*self.ca_roots, *learned]))

    async def _issue_with_retry(self) -> Issued:
        delay = RETRY_FIRST
        while True:
            try:
                async with ca_client.channel(self.config.ca_address, self._ca_trust()) as channel:
                    return await self.issue(channel)
            except (ca_client.CaCallError, OSError, ValueError) as err:
                wait = self.retry_wait(delay)
                log.warning("cannot get a certificate for %s from %s (retrying in %.0fs): %s", self.identity.uri,
                            self.config.ca_address, wait, err)
                await asyncio.sleep(wait)
            delay = min(delay * 2, RETRY_MAX)

    def retry_wait(self, backoff: float) -> float:
        """The backoff, but at most half of what the served certificate has left: doubling backoff alone would
        sleep past the expiry of a certificate of seconds or minutes although the CA came back before it."""
        if self.issued is None:
            return backoff
        left = (self.issued.leaf.not_valid_after_utc - _now()).total_seconds()
        return min(backoff, max(RETRY_FIRST, left / 2))

    async def issue(self, channel: grpc.aio.Channel) -> Issued:
        """A new key and its certificate; the token is read anew each time, as token files are rotated."""
        key = certs.new_key()
        token = self.config.token_file.read_text().strip()
        chain = await ca_client.create_certificate(channel, csr=certs.make_csr(key, self.identity), token=token,
                                                   validity_seconds=int(self.config.cert_ttl.total_seconds()))
        # Leaf first, then intermediates; the last element is the trust bundle, one or more roots (Istio's shape).
        parsed = [certs.load_pems(element.encode()) for element in chain]
        if len(parsed) < 2:
            raise ValueError("the CA returned no trust bundle after the certificate")
        leaf = parsed[0][0]
        if leaf.public_key() != key.public_key():
            raise ValueError("the CA returned a certificate for another key")
        served = [c for element in parsed[:-1] for c in element]  # the roots travel in ROOTCA, not in the chain
        credentials = sds.Credentials(key_pem=certs.key_pem(key),
                                      chain_pem=b"".join(certs.pem(c).encode() for c in served),
                                      roots_pem=b"".join(certs.pem(c).encode() for c in parsed[-1]))
        return Issued(credentials, leaf, tuple(parsed[-1]))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def serve(config: AgentConfig) -> None:
    agent = Agent(config)
    await agent.start()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    runner = asyncio.create_task(agent.run())
    await asyncio.wait({runner, asyncio.create_task(stopping.wait())}, return_when=asyncio.FIRST_COMPLETED)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await agent.stop()


def main(config: AgentConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(config))
    except AgentError as err:
        print(f"meshward agent: {err}", file=sys.stderr)
        return 2
    return 0
