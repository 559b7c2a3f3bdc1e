"""The registry service a MeshConfig extension provider sends to (an ext_authz server, a tracing collector, an
OpenTelemetry log sink): one lookup for every provider kind, as Pilot has one (extensionproviders.LookupCluster)."""

from __future__ import annotations

from compiler.translate.mesh import Mesh
from compiler.translate.services import Service


def lookup(mesh: Mesh, service: str) -> Service | None:
    """`NAMESPACE/HOSTNAME`, or a HOSTNAME defined in exactly one namespace."""
    namespace, _, host = service.rpartition("/")
    candidates = mesh.services.get(host, [])
    if namespace:
        return next((s for s in candidates if s.namespace == namespace), None)
    return candidates[0] if len({s.namespace for s in candidates}) == 1 else None
