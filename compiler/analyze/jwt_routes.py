"""VirtualServices that route on JWT claims at a gateway whose pods no RequestAuthentication applies to: without
one, no token is verified and the claims the route matches are never there.

Istio: virtualservice.JWTClaimRouteAnalyzer (IST0149). A route on claims is a `headers` or `withoutHeaders` match
key `@request.auth.claims.NAME` or `@request.auth.claims[NAME]` (pkg/jwt/routing.go ToRoutingClaim); for each
Gateway (not `mesh`) the VirtualService binds, every workload its selector picks (any namespace, as Istio matches
pods) must be selected by a RequestAuthentication of the root namespace or of its own (no selector: all of them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from compiler.analyze import hosts, vs_gateways
from compiler.analyze.authorization import root_namespace
from compiler.analyze.context import Context
from compiler.api.virtual_service import VirtualService
from compiler.diagnostics import Diagnostic
from compiler.resources import Resource

CLAIM_HEADER = "@request.auth.claims"  # jwt.HeaderJWTClaim


def is_claim(key: str) -> bool:
    if not key.lower().startswith(CLAIM_HEADER):
        return False
    name = key[len(CLAIM_HEADER):]
    return (name.startswith(".") and len(name) > 1) or (name.startswith("[") and name.endswith("]") and len(name) > 2)


def claim_key(vs: Resource) -> str:
    """routeBasedOnJWTClaimKey: a claim key of the VirtualService's HTTP matches ("" when none; the first in
    document order, where Istio's map order picks any)."""
    spec: VirtualService = vs.spec
    for route in spec.http or ():
        for match in route.match or ():
            keys: list[str] = [*(match.headers or {}), *(match.without_headers or {})]
            for key in keys:
                if is_claim(key):
                    return key
    return ""


def check(ctx: Context) -> Iterator[Diagnostic]:
    selectors: dict[str, list[Mapping[str, str]]] = {}
    for ra in ctx.resources.of_kind("RequestAuthentication"):
        selectors.setdefault(ra.namespace, []).append(dict(ra.spec.selector.match_labels or {})
                                                      if ra.spec.selector is not None else {})
    for vs in ctx.of_kind("VirtualService"):
        key = claim_key(vs)
        if key:
            yield from _unauthenticated(ctx, vs, key, selectors)


def _unauthenticated(ctx: Context, vs: Resource, key: str,
                     selectors: Mapping[str, list[Mapping[str, str]]]) -> Iterator[Diagnostic]:
    for i, ref in enumerate(vs.spec.gateways or ()):
        if ref == hosts.MESH_GATEWAY:
            continue
        ns, name = vs_gateways.resolve(ref, vs.namespace)
        gateway = ctx.resources.get("Gateway", ns, name)
        if gateway is None:  # MW0301 says so
            continue
        for pod in ctx.pods:
            if not hosts.selects(gateway.spec.selector, pod.labels):
                continue
            applying = (*selectors.get(root_namespace(ctx), ()), *selectors.get(pod.namespace, ()))
            if not any(hosts.selects(s, pod.labels) for s in applying):
                yield vs.diag("MW0327", f"The virtual service uses the JWT claim based routing (key: {key}) but "
                                        f"found no request authentication for the gateway ({ns}/{name}) pod "
                                        f"({pod.name}). The request authentication must first be applied for the "
                                        "gateway pods to validate the JWT token and make the claims available for "
                                        "routing.", ("spec", "gateways", i))
