"""MW0403: what a revision asks for that meshward validates but does not compile (the fields compiler.coverage lists
as warned, and unix:// endpoints), MW0405: delegated routes a root VirtualService leaves out, MW0411: Gateway
servers a gateway proxy does not serve (as Pilot drops them), MW0412: jwksUris whose key set the build does not
have (rules that then reject every token), and MW0413: principals of another trust domain; found
once per revision so that `compile` and the reconciler's status say so (not once per proxy, and not silently).
`validate` reports the field notes too (`field_notes`: they need no index of the revision)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from compiler import coverage, model
from compiler.diagnostics import Diagnostic
from compiler.inputs import BuildInputs
from compiler.resources import Resource, ResourceSet
from compiler.reuse.carry import Carry
from compiler.translate import authz, gateways, jwt, specs
from compiler.translate.mesh import Mesh
from compiler.translate.proxies import proxies as list_proxies
from compiler.translate.routes import skipped_notes

_UNIX = ("unix:// endpoints are not compiled: Envoy's endpoint discovery takes IP addresses, and the endpoint is left "
         "out of its service's load assignment")


def unsupported(mesh: Mesh) -> list[Diagnostic]:
    notes = [note for vs in mesh.virtual_services if vs.skipped for note in skipped_notes(vs)]
    notes += [res.diag("MW0403", _UNIX, path) for res, path in _unix_endpoints(mesh)]
    notes += input_notes(mesh.resources, mesh.inputs)
    return notes + field_notes(mesh.resources, mesh.carry) + _dropped_servers(mesh)


def input_notes(resources: ResourceSet, inputs: BuildInputs, *, fetched_only: bool = False) -> list[Diagnostic]:
    """What the build's inputs make of the policies: jwksUris without a usable key set (MW0412; `fetched_only`:
    only those fetched) and principals of another trust domain (MW0413). `meshward validate` asks too."""
    return [*jwt.unavailable(resources, inputs.jwks, fetched_only=fetched_only),
            *authz.foreign_principals(resources, inputs.trust)]


def field_notes(resources: ResourceSet, carry: Carry) -> list[Diagnostic]:
    """MW0403 at each field a document sets that meshward does not compile (coverage.TABLE), found again only for
    the documents that changed since the revision `carry` remembers. `meshward validate` asks too."""
    notes: list[Diagnostic] = []
    for kind, entries in coverage.TABLE.items():
        warned = {key: e.reason for key, e in entries.items() if isinstance(e, coverage.Warned)}
        found_in = resources.of_kind(kind)
        if warned and found_in:
            finder = coverage.Finder(kind, warned)
            for found in carry.field_notes(kind, found_in, functools.partial(_set, finder, warned)):
                notes += found
    return notes


def _set(finder: coverage.Finder, warned: dict[str, str], res: Resource) -> list[Diagnostic]:
    return [res.diag("MW0403", warned[key], path) for key, path in finder.find(res.doc.data)]


def _dropped_servers(mesh: Mesh) -> list[Diagnostic]:
    """Pilot logs and drops a server that conflicts with an earlier one on the same proxy port; the analyzer
    reports only overlapping hosts (MW0316), so a different protocol on a taken port would pass unnoticed."""
    if not mesh.gateways:
        return []
    notes: dict[tuple[str, int, str], Diagnostic] = {}
    for proxy in (p for p in list_proxies(mesh) if p.kind is model.ProxyKind.ROUTER):
        for gw, index, why in gateways.dropped_servers(mesh, proxy):
            notes.setdefault((gw.key, index, why), gw.res.diag(
                "MW0411", f"server not served: {why} (Pilot's mergeGateways drops it too)",
                ("spec", "servers", index)))
    return list(notes.values())


def _unix_endpoints(mesh: Mesh) -> Iterator[tuple[Resource, tuple[str | int, ...]]]:
    for res in mesh.resources.of_kind("ServiceEntry"):
        for i, endpoint in enumerate(specs.service_entry(res).endpoints or ()):
            if endpoint.address and endpoint.address.startswith("unix://"):
                yield res, ("spec", "endpoints", i, "address")
    for res in mesh.resources.of_kind("WorkloadEntry"):
        if (specs.workload_entry(res).address or "").startswith("unix://"):
            yield res, ("spec", "address")
