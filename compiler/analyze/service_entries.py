"""ServiceEntry checks: TCP ports need addresses, and one host and port must have one protocol.

Istio: serviceentry.ProtocolAddressesAnalyzer (IST0134: without `addresses`, a TCP (or unset) protocol port cannot
be told apart from other traffic to that port, unless MeshConfig's proxyMetadata turns on DNS address
auto-allocation) and
serviceentry.ConflictingServiceEntryProtocolAnalyzer (IST0177: ServiceEntries visible in a common namespace that
give one host:port different protocols; each ServiceEntry is reported once).
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler import mesh_config
from compiler.analyze import hosts
from compiler.analyze.context import Context
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource


def check_addresses(ctx: Context) -> Iterator[Diagnostic]:
    if mesh_config.config_of(ctx.of_kind("ConfigMap")).auto_allocates_addresses:
        return
    for se in ctx.of_kind("ServiceEntry"):
        if se.spec.addresses:
            continue
        for i, port in enumerate(se.spec.ports or ()):
            if not port.protocol or port.protocol.upper() == "TCP":
                proto = port.protocol or "unset"
                yield se.diag("MW0321", f"port {port.number} (protocol {proto}) of hosts {se.spec.hosts} needs "
                                        "addresses to be routed", ("spec", "ports", i))


Key = tuple[str, str, int]  # (scope, host, port)


def check_protocols(ctx: Context) -> Iterator[Diagnostic]:
    index: dict[Key, list[tuple[str, Resource]]] = {}
    default = ctx.mesh_config.service_exports
    for se in ctx.of_kind("ServiceEntry"):
        for scope in sorted(hosts.export_scopes(se.spec.export_to or default, se.namespace)):
            for host in se.spec.hosts:
                for port in se.spec.ports or ():
                    index.setdefault((scope, host, port.number), []).append(((port.protocol or "").upper(), se))
    reported: set[int] = set()
    for (scope, host, number), entries in index.items():
        if scope != hosts.EXPORT_ALL:
            entries = entries + index.get((hosts.EXPORT_ALL, host, number), [])
        protocols = sorted({p for p, _ in entries})
        if len(protocols) < 2:
            continue
        names = ", ".join(sorted({se.origin for _, se in entries}))
        for _, se in entries:
            if id(se) not in reported:
                reported.add(id(se))
                yield se.diag("MW0319", f"{host}:{number} has protocols {protocols} in {names}",
                              _port_path(se, number))


def _port_path(se: Resource, number: int) -> tuple[str | int, ...]:
    for i, port in enumerate(se.spec.ports or ()):
        if port.number == number:
            return ("spec", "ports", i, "protocol")
    return ("metadata", "name")
