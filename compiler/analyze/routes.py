"""Every destination a VirtualService sends traffic to, with the field path it is written at.

Route destinations (http, tcp, tls) and HTTP mirrors (`mirror`, `mirrors[].destination`) are checked alike, as in
Istio's analyzers (pkg/config/analysis/analyzers/virtualservice/util.go).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from compiler.api.virtual_service import Destination, VirtualService

Path = tuple[str | int, ...]


class RouteDestination(NamedTuple):  # a tuple: made for every destination of every VirtualService of a revision
    destination: Destination
    path: Path  # path of the `destination` mapping, e.g. ('spec', 'http', 0, 'route', 1, 'destination')
    mirror: bool = False

    @property
    def what(self) -> str:
        return "mirror host" if self.mirror else "host"


def destinations(vs: VirtualService) -> Iterator[RouteDestination]:
    for section in ("tcp", "tls", "http"):
        for i, rule in enumerate(getattr(vs, section) or ()):
            for j, route in enumerate(rule.route or ()):
                yield RouteDestination(route.destination, ("spec", section, i, "route", j, "destination"))
    for i, rule in enumerate(vs.http or ()):
        if rule.mirror is not None:
            yield RouteDestination(rule.mirror, ("spec", "http", i, "mirror"), mirror=True)
        for j, policy in enumerate(rule.mirrors or ()):
            yield RouteDestination(policy.destination, ("spec", "http", i, "mirrors", j, "destination"), mirror=True)


def gateway_names(vs: VirtualService) -> list[str]:
    return list(vs.gateways or ())


def binds_mesh(vs: VirtualService) -> bool:
    """A VirtualService without gateways applies to the mesh (sidecars); so does one that lists `mesh`."""
    return not vs.gateways or "mesh" in vs.gateways
