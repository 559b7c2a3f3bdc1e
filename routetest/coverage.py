"""Route coverage: which HTTP routes of which VirtualServices some test request reached.

A route is a VirtualService's `spec.http[i]`, at its own file:line. One that delegates has no Envoy route of its
own (its delegate's routes take its place), so it is not counted; the delegate's routes are. TCP and TLS routes are
not HTTP requests' and are not counted either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from compiler import load
from compiler.diagnostics import Position
from routetest import lines

RouteKey = tuple[str, int, int]  # (file, the resource's line, index in spec.http), as routetest.judge


@dataclasses.dataclass(frozen=True)
class Route:
    key: RouteKey
    position: Position
    resource: str  # namespace/name
    name: str  # the route's name, or "" when unnamed

    def __str__(self) -> str:
        label = f"route {self.name!r}" if self.name else f"route {self.key[2]}"
        return f"{self.position.file}:{self.position.line}: VirtualService {self.resource} {label}"


@dataclasses.dataclass(frozen=True)
class Coverage:
    routes: tuple[Route, ...]
    covered: frozenset[RouteKey]

    @property
    def percent(self) -> float:
        return 100.0 * len(self.hit()) / len(self.routes) if self.routes else 100.0

    def hit(self) -> list[Route]:
        return [r for r in self.routes if r.key in self.covered]

    def missed(self) -> list[Route]:
        return [r for r in self.routes if r.key not in self.covered]


def routes(documents: Sequence[load.Document]) -> tuple[Route, ...]:
    """Every HTTP route of the VirtualServices in the documents, in file order."""
    out: list[Route] = []
    for doc in documents:
        data = doc.data
        if not (isinstance(data, dict) and data.get("kind") == "VirtualService"
                and str(data.get("apiVersion", "")).startswith("networking.istio.io/")):
            continue
        spec, meta = data.get("spec") or {}, data.get("metadata") or {}
        http = spec.get("http") if isinstance(spec, dict) else None
        if not isinstance(http, list):
            continue
        locator = lines.Lines(doc)
        resource = f"{meta.get('namespace', 'default')}/{meta.get('name', '')}" if isinstance(meta, dict) else ""
        for i, rule in enumerate(http):
            if isinstance(rule, dict) and rule.get("delegate") is None:
                out.append(Route((doc.file, doc.line, i), locator.locate(("spec", "http", i)), resource,
                                 str(rule.get("name") or "")))
    return tuple(out)


def of(documents: Sequence[load.Document], reached: Iterable[RouteKey]) -> Coverage:
    return Coverage(routes(documents), frozenset(reached))
