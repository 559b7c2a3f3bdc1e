"""What translate's stages ask of a reuse layer, one small Protocol per stage, and what they get when there is none.

A stage is a function of its inputs (the mesh index, the proxy); what a revision (or another proxy) may take from
an earlier one is asked through the hooks passed in. `compiler.reuse.carry.Carry` answers them all (matched
structurally: the reuse layer does not import translate) and decides what is still valid; `NO_REUSE` makes every
value again, so a stage can be read and tested alone: the cold path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Protocol, TypeVar

from compiler import model
from compiler.reuse import recorded, refill, tables
from compiler.translate.locality import Origin
from compiler.translate.mesh import DestinationRuleEntry, VirtualServiceEntry
from compiler.translate.services import Service

_T = TypeVar("_T")
RouteScope = tuple[int, str, Hashable]  # listener port, gateway, proxy scope (compiler.translate.routes.route_scope)
_M = TypeVar("_M", bound=refill.Made[object, object])
_N = TypeVar("_N", model.Listener, model.RouteConfig, model.Cluster)
_I = TypeVar("_I")
_D = TypeVar("_D")
_P = TypeVar("_P", bound=tuple[tuple[object, ...], ...])
_Tt = TypeVar("_Tt", bound=tuple[tuple[object, ...], ...])


class ClusterReuse(Protocol):
    """compiler.translate.clusters"""

    def service_clusters(self, service: Service, rule: DestinationRuleEntry | None, auto_mtls: bool,
                         credentials_withheld: bool, locality: Origin, make: Callable[[], _T]) -> _T:
        """`make()`: the service's outbound clusters and load assignments under this rule (`credentials_withheld`:
        as a sidecar makes them of a rule whose credentialName is for gateways), for proxies of this origin (none
        where locality load balancing does not weigh them: compiler.translate.locality)."""
        ...

    def outbound_tables(self, scope: Hashable, items: Sequence[_I], recipe: tables.Recipe[_I, _D, _P, _Tt]) -> _Tt:
        """The sorted tables `recipe` makes of `items` for the sidecars of this scope (`Mesh.outbound_key`)."""
        ...


class SidecarReuse(Protocol):
    """compiler.translate's sidecar assembly"""

    def outbound_half(self, scope: Hashable, make: Callable[[], _T]) -> _T:
        """`make()`: the outbound half the sidecars of this scope (`Mesh.outbound_key`) share."""
        ...

    def inbound_half(self, proxy: model.Proxy, value: _T) -> _T:
        """`value`: a sidecar's inbound listeners, route configs and clusters."""
        ...

    def merged(self, mine: tuple[_N, ...], shared: tuple[_N, ...], make: Callable[[], tuple[_N, ...]]
               ) -> tuple[_N, ...]:
        """`make()`: a sidecar's inbound resources of one type merged into the shared outbound ones."""
        ...

    def sidecar_config(self, proxy: model.Proxy, inputs: tuple[object, ...],
                       make: Callable[[], model.ProxyConfig]) -> model.ProxyConfig:
        """`make()`: the sidecar's config, made of `inputs` (objects that stay the same while unchanged)."""
        ...


class RouteReuse(Protocol):
    """compiler.translate.routes and compiler.translate.vhosts"""

    def routes(self, vs: VirtualServiceEntry, scope: RouteScope, tables: tuple[object, ...], look: recorded.Look,
               make: Callable[[recorded.Report], _T]) -> recorded.Recorded[_T]:
        """`make(report)`: one VirtualService's routes for a listener port, gateway and proxy scope, made in these
        `tables` with the lookups `look` answers."""
        ...

    def route_use(self, vs: VirtualServiceEntry, scope: RouteScope, before: recorded.Recorded[_T] | None,
                  before_in: tuple[object, ...] | None, tables: tuple[object, ...], look: recorded.Look,
                  make: Callable[[recorded.Report], _T]) -> recorded.Recorded[_T]:
        """`make(report)`, where `before` is what a route table built in the tables `before_in` holds for `vs`."""
        ...

    def route_table(self, scope: Hashable, recipe: refill.Recipe[_I, _D, _M]) -> _M:
        """`recipe.build(None)`: a sidecar's route table for a listener port, gateway, proxy scope and registry
        mode."""
        ...


class NoReuse:
    """Every value made again."""

    def routes(self, vs: VirtualServiceEntry, scope: RouteScope, tables: tuple[object, ...], look: recorded.Look,
               make: Callable[[recorded.Report], _T]) -> recorded.Recorded[_T]:
        return recorded.unrecorded(make)

    def route_table(self, scope: Hashable, recipe: refill.Recipe[_I, _D, _M]) -> _M:
        return recipe.build(None)

    def route_use(self, vs: VirtualServiceEntry, scope: RouteScope, before: recorded.Recorded[_T] | None,
                  before_in: tuple[object, ...] | None, tables: tuple[object, ...], look: recorded.Look,
                  make: Callable[[recorded.Report], _T]) -> recorded.Recorded[_T]:
        return recorded.unrecorded(make)

    def outbound_half(self, scope: Hashable, make: Callable[[], _T]) -> _T:
        return make()

    def inbound_half(self, proxy: model.Proxy, value: _T) -> _T:
        return value

    def merged(self, mine: tuple[_N, ...], shared: tuple[_N, ...], make: Callable[[], tuple[_N, ...]]
               ) -> tuple[_N, ...]:
        return make()

    def sidecar_config(self, proxy: model.Proxy, inputs: tuple[object, ...],
                       make: Callable[[], model.ProxyConfig]) -> model.ProxyConfig:
        return make()

    def service_clusters(self, service: Service, rule: DestinationRuleEntry | None, auto_mtls: bool,
                         credentials_withheld: bool, locality: Origin, make: Callable[[], _T]) -> _T:
        return make()

    def outbound_tables(self, scope: Hashable, items: Sequence[_I], recipe: tables.Recipe[_I, _D, _P, _Tt]) -> _Tt:
        return tables.made(items, recipe)


NO_REUSE = NoReuse()
