"""The mesh's HTTP routing as a graph, read from the compiled proxies' model (compiler/model.py): gateways and
services route (with the route's match in short form) to services and subsets (with weights).

Read from what was compiled rather than from the VirtualServices, so that the picture is what the proxies do
(merged VirtualServices, delegation, Sidecar scope, gateway binding). A gateway is drawn as its workload; a sidecar
is not drawn: the routes it holds are drawn from the service it calls (the virtual host), the same for every sidecar
that sees the service, so each edge appears once. `meshward graph` draws it whole, `meshward diff` the services
whose edges differ between two revisions, and the reconciler's mesh page (reconciler/ops/mesh_view.py) the served
revision's, which is why it lives in the compiler (pure: the model in, plain values out) and not in the command line.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from compiler import model

_CLUSTER_SUFFIX = ".svc.cluster.local"
_OPS = {model.MatchKind.EXACT: "=", model.MatchKind.PREFIX: "^=", model.MatchKind.SUFFIX: "$=",
        model.MatchKind.REGEX: "~", model.MatchKind.PRESENT: ""}  # present: the name alone (`!name`: absent)


class NodeKind(enum.StrEnum):
    GATEWAY = "gateway"
    SERVICE = "service"
    SUBSET = "subset"


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Node:
    kind: NodeKind
    host: str  # the service's host, or the gateway workload's namespace/name
    subset: str = ""

    @property
    def label(self) -> str:
        host = self.host.removesuffix(_CLUSTER_SUFFIX)
        return f"{host} {self.subset}" if self.subset else host


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Edge:
    source: Node
    target: Node
    label: str  # the match in short form and the weight ("prefix /api, 80%"), "" for a plain route
    weight: int = 100  # the percentage of the route's traffic the edge carries (the share in `label`)


@dataclasses.dataclass(frozen=True, slots=True)
class Graph:
    edges: frozenset[Edge] = frozenset()
    services: frozenset[Node] = frozenset()  # every service a proxy routes for, with edges or not

    def nodes(self) -> list[Node]:
        return sorted({*self.services, *(e.source for e in self.edges), *(e.target for e in self.edges)})

    def of(self, sources: Iterable[Node]) -> Graph:
        """The part of the graph leaving `sources`."""
        keep = set(sources)
        edges = frozenset(e for e in self.edges if e.source in keep)
        return Graph(edges, frozenset(n for n in self.services if n in keep))


def of_configs(configs: Iterable[model.ProxyConfig]) -> Graph:
    edges: set[Edge] = set()
    services: set[Node] = set()
    # route configs are shared objects (every sidecar that sees the same services holds the same one): each is read
    # once per gateway it serves, or once for all sidecars
    done: set[tuple[model.RouteConfig, Node | None]] = set()
    # and the route tables of different scopes repeat one another's routes as equal values, not shared objects:
    # each route's edges are made once per source, match and targets (most of the graph's time otherwise)
    drawn: set[tuple[Node, model.RouteMatch, _Targets]] = set()
    for cfg in configs:
        clusters: dict[str, model.Cluster] | None = None
        router = cfg.proxy.kind is model.ProxyKind.ROUTER
        gateway = Node(NodeKind.GATEWAY, f"{cfg.proxy.namespace}/{cfg.proxy.name}") if router else None
        for rc in cfg.route_configs:
            if (rc, gateway) in done:
                continue
            done.add((rc, gateway))
            clusters = clusters if clusters is not None else {c.name: c for c in cfg.clusters}
            for vh in rc.virtual_hosts:
                if vh.host == "*" and gateway is None:
                    continue  # a catch-all (allow_any, block_all, inbound): no service's routing
                source = gateway or Node(NodeKind.SERVICE, vh.host)
                if gateway is None:
                    services.add(source)
                for route in vh.routes:
                    if not isinstance(route.action, model.Forward):
                        continue
                    drawing = (source, route.match, _targets(route.action, clusters))
                    if drawing not in drawn:
                        drawn.add(drawing)
                        edges.update(_route_edges(*drawing, router=router))
    return Graph(frozenset(edges), frozenset(services))


_Targets = tuple[tuple[str, str, int], ...]  # a route's outbound service clusters: (service host, subset, weight)


def _targets(action: model.Forward, clusters: dict[str, model.Cluster]) -> _Targets:
    found = ((clusters.get(w.cluster), w.weight) for w in action.clusters)
    return tuple((c.service_host, c.subset, w) for c, w in found
                 if c is not None and c.service_host and c.direction is model.TrafficDirection.OUTBOUND)


def _route_edges(source: Node, route_match: model.RouteMatch, known: _Targets, *, router: bool) -> Iterable[Edge]:
    total = sum(w for _, _, w in known) or 1
    match = short_match(route_match)
    out: list[Edge] = []
    for host, subset_name, weight in known:
        percent = round(100 * weight / total)
        share = f"{percent}%" if len(known) > 1 else ""
        subset = Node(NodeKind.SUBSET, host, subset_name) if subset_name else None
        service = Node(NodeKind.SERVICE, host)
        if router:  # gateway -(match)-> service -(weight)-> subset
            out.append(Edge(source, service, match))
            if subset is not None or share:
                out.append(Edge(service, subset or service, share, percent))
        elif subset is not None or service != source or match or share:
            out.append(Edge(source, subset or service, ", ".join(p for p in (match, share) if p), percent))
    return out


def short_match(match: model.RouteMatch) -> str:
    """`prefix /api`, `exact /login`, `end-user=jason`, `?v~^2`, `x-canary` (present), `!x-canary` (absent): ""
    for the match-everything prefix /."""
    parts: list[str] = []
    if match.path != model.RouteMatch().path:
        parts.append(f"{match.path.kind.value} {match.path.value}")
    parts += [f"{'!' if h.invert else ''}{h.name}{_OPS[h.match.kind]}{h.match.value}" for h in match.headers]
    parts += [f"?{q.name}{_OPS[q.match.kind]}{q.match.value}" for q in match.query]
    return " ".join(parts)


def changed(before: Graph, after: Graph) -> tuple[Graph, Graph]:
    """The parts of the two graphs leaving the nodes whose outgoing edges differ (and the services only one
    holds)."""
    nodes = {e.source for e in before.edges ^ after.edges} | (before.services ^ after.services)
    return before.of(nodes), after.of(nodes)
