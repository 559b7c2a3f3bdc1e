"""The mesh page's data (`GET /mesh/graph`; `GET /mesh` is the page that draws it, mesh_page.html): what Kiali's
graph and Argo CD's sync view show, for the commit being served.

- The routing graph of the served revision: `compiler.build.routing`, the model `meshward graph` draws (gateways,
  services, subsets, weighted edges), made once per served build on a worker thread (the event loop never
  compiles) and kept while that build is served. It reads the sidecars' outbound halves, which the configs of the
  proxies already served have made (the build's carry), so only the scopes no connected proxy has cost a compile.
- Each connected proxy's sync state as the ADS server knows it: the commit of the config it was sent, whether it
  ACKed it, whether that is the served commit, and what it rejected.
- With `serve --prometheus-url`, requests per second per edge (prom_rates.py); Prometheus failing leaves the rates
  out with a note saying why, never an error.

Nothing here is a secret: the graph is the policy's routing as Git holds it, and the proxies are those /status
already names. Who may reach it is the admin port's bind address (exposure.py; README, Seeing the mesh).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from compiler import build as build_mod
from reconciler.ops import prom_rates
from reconciler.ops.status import Status
from reconciler.xds import ads_status


class MeshView:
    """Answers /mesh/graph. Holds the graph of the last served build it was asked about (weakly: a replaced build
    is not kept alive for it) and the Prometheus to ask for rates."""

    def __init__(self, prometheus_url: str | None = None, *, timeout: float = prom_rates.TIMEOUT_S) -> None:
        self._prometheus = prometheus_url
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._graph: tuple[weakref.ref[build_mod.Build], build_mod.RoutingGraph] | None = None

    async def graph(self, served: build_mod.Build | None) -> build_mod.RoutingGraph:
        if served is None:
            return build_mod.RoutingGraph()
        async with self._lock:  # concurrent pollers wait for one computation
            if self._graph is None or self._graph[0]() is not served:
                self._graph = (weakref.ref(served), await asyncio.to_thread(build_mod.routing, served))
            return self._graph[1]

    async def rates(self) -> tuple[list[prom_rates.Sample] | None, str | None]:
        """The current samples and None, or None and why there are none (None, None: no Prometheus configured)."""
        if self._prometheus is None:
            return None, None
        try:
            return await prom_rates.fetch(self._prometheus, timeout=self._timeout), None
        except prom_rates.Unavailable as err:
            return None, f"no request rates: {err}"

    async def to_json(self, served: build_mod.Build | None, status: Status,
                      proxies: Sequence[ads_status.ProxyStatus], origin: Callable[[str], str | None]) -> dict[str, Any]:
        graph, (samples, note) = await asyncio.gather(self.graph(served), self.rates())
        return document(graph, status, proxies, origin, samples=samples, rates_note=note,
                        rates_configured=self._prometheus is not None)


def document(graph: build_mod.RoutingGraph, status: Status, proxies: Sequence[ads_status.ProxyStatus],
             origin: Callable[[str], str | None], *, samples: Sequence[prom_rates.Sample] | None = None,
             rates_note: str | None = None, rates_configured: bool = False) -> dict[str, Any]:
    """The page's JSON. `origin`: a snapshot version -> the commit it was built from (None: not this server's)."""
    serving = status.serving.sha if status.serving is not None else None
    return {
        "serving": status.serving.to_json() if status.serving is not None else None,
        "lastSeen": status.last_seen.to_json() if status.last_seen is not None else None,
        "lastResult": str(status.last_result),
        "errors": list(status.errors),
        "nodes": [{"id": node_id(n), "kind": str(n.kind), "host": n.host, "subset": n.subset, "label": n.label}
                  for n in graph.nodes()],
        "edges": [{"source": node_id(e.source), "target": node_id(e.target), "label": e.label, "weight": e.weight,
                   "rate": _rate(e, samples) if samples is not None else None} for e in sorted(graph.edges)],
        "proxies": [_proxy(p, origin, serving) for p in sorted(proxies, key=lambda p: (p.node_id, p.stream_id))],
        "rates": {"configured": rates_configured, "window": prom_rates.WINDOW, "note": rates_note},
    }


def node_id(node: build_mod.RoutingNode) -> str:
    """A node's key in the page's JSON: stable across revisions, so the page can tell what is new."""
    return f"{node.kind}|{node.host}|{node.subset}"


def _rate(edge: build_mod.RoutingEdge, samples: Sequence[prom_rates.Sample]) -> float:
    from_gateway = edge.source.kind is build_mod.RoutingNodeKind.GATEWAY
    return prom_rates.edge_rate(samples, service=edge.target.host, subset=edge.target.subset,
                                source=edge.source.host if from_gateway else None)


def _proxy(p: ads_status.ProxyStatus, origin: Callable[[str], str | None], serving: str | None) -> dict[str, Any]:
    commit = origin(p.snapshot_version) if p.snapshot_version else None
    return {
        "node": p.node_id,
        "mode": p.mode,
        "state": str(p.state),
        "commit": commit,  # of the config it was sent last; ACKed when the state is SYNCED
        "served": commit is not None and commit == serving,
        "types": [_type(t) for _, t in sorted(p.types.items())],
    }


def _type(t: ads_status.TypeStatus) -> dict[str, Any]:
    """One xDS type of a proxy: the version sent and the one ACKed, and while it rejects the latest, Envoy's why."""
    nack = t.last_nack.message if t.state is ads_status.SyncState.NACKED and t.last_nack is not None else None
    return {"type": t.type_url.rsplit(".", 1)[-1], "state": str(t.state), "sent": t.sent_version,
            "acked": t.acked_version, "nack": nack}
