"""VirtualService delegation: a root VirtualService's `delegate` route is replaced by the delegate's routes, each
merged with it, as Pilot merges them (pilot/pkg/model/virtualservice.go, mergeVirtualServicesIfNeeded).

A delegate is a VirtualService without hosts, in the namespace the `delegate` names (the root's by default), and
exported to the root's namespace. Each of its HTTP routes is merged with the root route: its matches must each fall
inside one of the root's (a prefix inside the root's prefix, equal exact values, no regex next to another kind of
match, no header, query, port, gateway or source condition that contradicts the root's), and are merged with every
root match they fall inside; a route with a match that falls inside none is dropped. The merged route keeps the
delegate's rewrite, timeout, retries, fault, mirror, CORS and headers, and takes the root's where it sets none.
Names join as `root-delegate`. Hosts and gateways are resolved first in the namespace of the VirtualService that
names them (Pilot resolves short names before merging), so a delegate's `reviews` is the delegate namespace's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from compiler import naming
from compiler.api.virtual_service import Destination, HTTPMatchRequest, HTTPRoute, StringMatch
from compiler.resources import Resource
from compiler.translate import specs


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class HttpRule:
    """One HTTP route as a VirtualService's route table sees it: the route, the namespace its short names were
    written in, and the VirtualService it comes from (the metadata's back-reference). Compared and hashed
    by identity (its route, a pydantic model with lists, is not hashable), so the root entry that holds it is
    equal only to itself once merged."""

    http: HTTPRoute
    namespace: str
    res: Resource
    index: int  # its place in `res`'s spec.http


@dataclasses.dataclass(frozen=True, slots=True)
class Skipped:
    """A route left out of a root's table, and why (reported as MW0405)."""

    res: Resource
    path: tuple[str | int, ...]
    reason: str


def delegate_key(root: Resource, index: int) -> tuple[str, str]:
    """(namespace, name) of the VirtualService the root's route `index` (one that delegates) delegates to."""
    ref = (specs.virtual_service(root).http or [])[index].delegate
    if ref is None:
        raise ValueError(f"{root.origin}: route {index} does not delegate")
    return (ref.namespace or root.namespace, ref.name or "")


def merged(root: Resource, targets: dict[tuple[str, str], Resource | None], exported: dict[tuple[str, str], bool]
           ) -> tuple[tuple[HttpRule, ...], tuple[Skipped, ...]]:
    """The root's HTTP routes with each delegating one replaced by its delegate's merged routes. `targets` has
    the delegate (None: no such VirtualService without hosts) and `exported` whether it is visible in the root's
    namespace, for each key `delegate_key` gives."""
    rules: list[HttpRule] = []
    skipped: list[Skipped] = []
    for i, http in enumerate(specs.virtual_service(root).http or ()):
        if http.delegate is None:
            rules.append(HttpRule(http, root.namespace, root, i))
            continue
        key = delegate_key(root, i)
        target = targets.get(key)
        where = ("spec", "http", i, "delegate")
        if target is None:
            skipped.append(Skipped(root, where, f"delegate VirtualService {key[0]}/{key[1]} (one without hosts) "
                                                "does not exist; the route is skipped"))
            continue
        if not exported.get(key, False):
            skipped.append(Skipped(root, where, f"delegate VirtualService {key[0]}/{key[1]} is not exported to "
                                                f"namespace {root.namespace}; the route is skipped"))
            continue
        base = resolved(http, root.namespace)
        for j, sub in enumerate(specs.virtual_service(target).http or ()):
            route = merge_route(base, resolved(sub, target.namespace))
            if route is None:
                skipped.append(Skipped(target, ("spec", "http", j, "match"),
                                       f"its match falls inside none of the matches of {root.kind} "
                                       f"{root.namespace}/{root.name} route {i} that delegates to it; the route is "
                                       "skipped there"))
            else:
                rules.append(HttpRule(route, target.namespace, target, j))
    return tuple(rules), tuple(skipped)


def resolved(http: HTTPRoute, namespace: str) -> HTTPRoute:
    """`http` with destination and mirror hosts, and match gateways, resolved in `namespace`."""
    def dest(d: Destination) -> Destination:
        return d.model_copy(update={"host": naming.resolve_host(d.host, namespace)})

    update: dict[str, object] = {}
    if http.route:
        update["route"] = [r.model_copy(update={"destination": dest(r.destination)}) for r in http.route]
    if http.mirror is not None:
        update["mirror"] = dest(http.mirror)
    if http.mirrors:
        update["mirrors"] = [m.model_copy(update={"destination": dest(m.destination)}) for m in http.mirrors]
    if http.match:
        update["match"] = [m.model_copy(update={"gateways": [naming.resolve_gateway(g, namespace) for g in m.gateways]})
                           if m.gateways else m for m in http.match]
    return http.model_copy(update=update) if update else http


_INHERITED = ("rewrite", "timeout", "retries", "fault", "mirror", "mirror_percent", "mirror_percent_legacy",
              "mirror_percentage", "cors_policy", "headers")


def merge_route(root: HTTPRoute, sub: HTTPRoute) -> HTTPRoute | None:
    """`sub` merged with `root` (Pilot's mergeHTTPRoute), or None when its matches conflict with root's."""
    matches = merge_matches(root.match or [], sub.match or [])
    if matches is None:
        return None
    update: dict[str, object] = {"match": matches or None, "name": _joined(root.name, sub.name)}
    update.update({f: getattr(root, f) for f in _INHERITED if getattr(sub, f) is None})
    return sub.model_copy(update=update)


def merge_matches(root: Sequence[HTTPMatchRequest], sub: Sequence[HTTPMatchRequest]
                  ) -> list[HTTPMatchRequest] | None:
    """Each of `sub`'s matches merged with every one of `root`'s it does not conflict with; None when one of
    `sub`'s conflicts with all of them (Pilot's mergeHTTPMatchRequests)."""
    if not root:
        return list(sub)
    if not sub:
        return list(root)
    out: list[HTTPMatchRequest] = []
    for leaf in sub:
        inside = [merge_match(r, leaf) for r in root if not conflicts(r, leaf)]
        if not inside:
            return None
        out.extend(inside)
    return out


def merge_match(root: HTTPMatchRequest, leaf: HTTPMatchRequest) -> HTTPMatchRequest:
    """Pilot's mergeHTTPMatchRequest: the leaf's conditions, the root's where the leaf has none; maps united
    (the leaf's entry wins)."""
    update: dict[str, object] = {"name": _joined(root.name, leaf.name)}
    for f in ("uri", "scheme", "method", "authority", "port", "source_namespace"):
        if not getattr(leaf, f):
            update[f] = getattr(root, f)
    for f in ("headers", "without_headers", "query_params", "source_labels"):
        a, b = getattr(root, f) or {}, getattr(leaf, f) or {}
        update[f] = {**a, **b} if a or b else None
    if not leaf.gateways:
        update["gateways"] = root.gateways
    return leaf.model_copy(update=update)


def conflicts(root: HTTPMatchRequest, leaf: HTTPMatchRequest) -> bool:
    """Pilot's hasConflict: whether `leaf` cannot be narrowed inside `root`."""
    for f in ("uri", "scheme", "method", "authority"):
        if string_match_conflict(getattr(root, f), getattr(leaf, f)):
            return True
    for f in ("headers", "without_headers", "query_params"):
        mine = getattr(root, f) or {}
        if any(string_match_conflict(mine.get(k), v) for k, v in (getattr(leaf, f) or {}).items()):
            return True
    if bool(root.ignore_uri_case) != bool(leaf.ignore_uri_case):
        return True
    if root.port and leaf.port and root.port != leaf.port:
        return True
    if root.source_namespace and leaf.source_namespace != root.source_namespace:
        return True
    labels = root.source_labels or {}
    if any(k in labels and labels[k] != v for k, v in (leaf.source_labels or {}).items()):
        return True
    if root.gateways and leaf.gateways:
        return len(root.gateways) < len(leaf.gateways) or not set(leaf.gateways) <= set(root.gateways)
    return False


def string_match_conflict(root: StringMatch | None, leaf: StringMatch | None) -> bool:
    """Pilot's stringMatchConflict: a leaf match that is not a narrowing of the root's (an empty value counts as
    unset, as Go's getters read it)."""
    if root is None or leaf is None:
        return False
    r_exact, r_prefix, r_regex = root.exact or "", root.prefix or "", root.regex or ""
    l_exact, l_prefix, l_regex = leaf.exact or "", leaf.prefix or "", leaf.regex or ""
    if r_regex and (l_regex or l_prefix or l_exact):
        return True
    if l_regex and (r_regex or r_prefix or r_exact):
        return True
    if r_exact:
        return bool(l_prefix) or l_exact != r_exact
    if r_prefix:
        if l_prefix:
            return not l_prefix.startswith(r_prefix)
        if l_exact:
            return not l_exact.startswith(r_prefix)
    return True


def _joined(root: str | None, leaf: str | None) -> str | None:
    if not leaf:
        return root
    return f"{root}-{leaf}" if root else leaf
