"""Request rates for the mesh page's edges, read from Prometheus (`serve --prometheus-url`), as Kiali reads its graph's.

One instant query over the series the proxies' bootstrap makes with Istio's labels (README, Metrics: Prometheus and
Grafana; deploy/grafana/meshward-mesh.json asks the same series): requests per second over the last minute, by
calling workload and destination service and subset. The answer is bounded in time; a Prometheus that is down, slow
or answers something else is `Unavailable` with the reason, which the page shows beside a graph without rates.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp

WINDOW = "1m"
# `source` is "NAMESPACE/NAME", the form the routing graph gives a gateway (compiler/routing_graph.py), made by
# Prometheus (label_join) so that no one parses it back apart.
QUERY = ('sum by (source, destination_service, destination_subset) (label_join(rate('
         f'envoy_cluster_upstream_rq_total{{reporter="source"}}[{WINDOW}]), '
         '"source", "/", "source_workload_namespace", "source_workload"))')
TIMEOUT_S = 2.0  # the page polls every few seconds: a slow Prometheus must not hold the answer longer
_MAX_BODY_BYTES = 8 << 20


class Unavailable(Exception):
    """Prometheus gave no usable answer (down, too slow, an error, not Prometheus); the message says which."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """Requests per second from one calling workload to one destination service and subset."""

    source: str  # NAMESPACE/NAME of the calling proxy's workload
    service: str  # destination_service: the host
    subset: str  # destination_subset: "" for the whole service
    rate: float


async def fetch(url: str, *, timeout: float = TIMEOUT_S) -> list[Sample]:
    """The current rates from the Prometheus at `url` (its base URL: `http://prometheus:9090`)."""
    endpoint = url.rstrip("/") + "/api/v1/query"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.get(endpoint, params={"query": QUERY}, allow_redirects=False) as resp:
            body = await resp.content.read(_MAX_BODY_BYTES + 1)
            status = resp.status
    except TimeoutError:
        raise Unavailable(f"Prometheus did not answer within {timeout:g}s") from None
    except aiohttp.ClientError as err:
        raise Unavailable(f"Prometheus is unreachable: {err}") from None
    if len(body) > _MAX_BODY_BYTES:
        raise Unavailable("Prometheus's answer is too large")
    return samples(status, body)


def samples(status: int, body: bytes) -> list[Sample]:
    """An instant query's answer (Prometheus HTTP API: `{"status": "success", "data": {"resultType": "vector",
    "result": [{"metric": {...}, "value": [TIME, "VALUE"]}]}}`) as samples; NaN and infinite values are left out."""
    try:
        answer: Any = json.loads(body)
    except ValueError:
        raise Unavailable(f"Prometheus answered {status} with no JSON") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error") if isinstance(answer, dict) else None
        raise Unavailable(f"Prometheus answered {status}: {error or 'not a query result'}")
    try:
        out = [Sample(str(r["metric"].get("source", "")), str(r["metric"].get("destination_service", "")),
                      str(r["metric"].get("destination_subset", "")), float(r["value"][1]))
               for r in answer["data"]["result"]]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise Unavailable("Prometheus's answer is not an instant vector") from None
    return [s for s in out if math.isfinite(s.rate)]


def edge_rate(samples: Sequence[Sample], *, service: str, subset: str = "", source: str | None = None) -> float:
    """Requests per second into `service` (only its `subset` when given), from one gateway workload when `source`
    is given, else from every caller: Envoy counts a request at the upstream cluster it is sent to, which names the
    destination, not the route that chose it."""
    return sum(s.rate for s in _matching(samples, service, subset, source))


def _matching(samples: Iterable[Sample], service: str, subset: str, source: str | None) -> Iterable[Sample]:
    return (s for s in samples
            if s.service == service and (not subset or s.subset == subset) and (source is None or s.source == source))
