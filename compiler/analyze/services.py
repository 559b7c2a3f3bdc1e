"""Service port names: Istio reads a port's protocol from its name (`http-web`) or appProtocol.

Istio: service.PortNameAnalyzer (IST0118: no protocol can be read, so Istio falls back to sniffing or plain TCP;
IST0150: an ExternalName Service port must name its protocol, and `tcp` is not enough, because Istio builds the
external host's listeners from it). Control-plane Services (label `istio` or `release: istio`) and Services of
gateways that Istio manages are skipped, as Istio does.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.analyze.context import Context
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

# pkg/config/protocol Parse (case-insensitive)
PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "grpc": "GRPC", "grpc-web": "GRPC-Web", "http": "HTTP",
             "http_proxy": "HTTP_PROXY", "http2": "HTTP2", "https": "HTTPS", "tls": "TLS", "mongo": "Mongo",
             "redis": "Redis", "mysql": "MySQL", "hbone": "HBONE"}
# pkg/config/kube ConvertProtocol: these ports default to TCP when the name says nothing
WELL_KNOWN_TCP_PORTS = {25, 53, 3306, 27017}
_MANAGED_LABEL = "gateway.istio.io/managed"


def protocol_of(port: int, name: str | None, l4: str | None, app_protocol: str | None) -> str | None:
    """The protocol Istio assigns a Service port, or None when it cannot tell."""
    if l4 == "UDP":
        return "UDP"
    text = app_protocol if app_protocol is not None else (name or "")
    if text.lower().startswith("grpc-web"):
        return "GRPC-Web"
    found = PROTOCOLS.get(text.split("-", 1)[0].lower())
    if found is None and port in WELL_KNOWN_TCP_PORTS:
        return "TCP"
    return found


def _skipped(svc: Resource) -> bool:
    return "istio" in svc.labels or svc.labels.get("release") == "istio" or _MANAGED_LABEL in svc.labels


def check(ctx: Context) -> Iterator[Diagnostic]:
    for svc in ctx.of_kind("Service"):
        if _skipped(svc):
            continue
        external = svc.spec.type == "ExternalName"
        for i, port in enumerate(svc.spec.ports or ()):
            proto = protocol_of(port.port, port.name, port.protocol, port.app_protocol)
            label = f"port {port.port} (name \"{port.name}\")" if port.name else f"port {port.port} (no name)"
            if external and (proto is None or port.name == "tcp"):
                yield svc.diag("MW0322", f"ExternalName Service {label}: name the port after its protocol, "
                                         "e.g. https or http-web", ("spec", "ports", i))
            elif proto is None:
                yield svc.diag("MW0308", f"{label} does not follow <protocol>[-suffix] and has no appProtocol",
                               ("spec", "ports", i))
