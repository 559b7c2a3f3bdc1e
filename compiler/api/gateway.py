"""Gateway (networking.istio.io): the ports, hosts and TLS settings of an edge proxy."""

from __future__ import annotations

from compiler.api.base import ApiModel, UInt32
from compiler.api.common import ServerTLSSettings

__all__ = ["Gateway", "Port", "Server", "ServerTLSSettings"]


class Port(ApiModel):
    number: UInt32
    protocol: str
    name: str
    target_port: UInt32 | None = None


class Server(ApiModel):
    port: Port
    bind: str | None = None
    hosts: list[str]
    tls: ServerTLSSettings | None = None
    default_endpoint: str | None = None
    name: str | None = None


class Gateway(ApiModel):
    servers: list[Server] | None = None
    selector: dict[str, str] | None = None
