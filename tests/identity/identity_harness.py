"""A CA server and agents in one event loop for the identity tests: the CA on a free loopback port, tokens from
its directory, agents with their SDS sockets in a temporary directory."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from reconciler.identity import agent, ca, ca_server, certs, tokens


@asynccontextmanager
async def ca_running(ca_dir: Path, address: str = "127.0.0.1:0") -> AsyncIterator[str]:
    """The CA of `ca_dir` served on `address` (a free loopback port by default); yields the address."""
    authority = ca.load_or_create(ca_dir)
    server = ca_server.CaServer(ca_server.CaService(authority, ca_server.local_authenticator(ca_dir)))
    port = await server.start(address)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def agent_config(tmp_path: Path, ca_dir: Path, address: str, *, name: str = "web", namespace: str = "shop",
                 ttl: datetime.timedelta = datetime.timedelta(hours=1)) -> agent.AgentConfig:
    """An agent's files (root, token) written under `tmp_path/name`, and its configuration."""
    home = tmp_path / name
    home.mkdir()
    (home / "root.pem").write_text(certs.pem(ca.load_or_create(ca_dir).root))
    token = tokens.mint(tokens.load_or_create_key(ca_dir), tokens.Caller(namespace, name), ttl=datetime.timedelta(hours=1))
    (home / "token").write_text(token)
    return agent.AgentConfig(node=f"sidecar~127.0.0.1~{name}-1.{namespace}~{namespace}.svc.cluster.local",
                             ca_address=address, ca_root=home / "root.pem", token_file=home / "token",
                             sds_socket=home / "sds.sock", cert_ttl=ttl)
