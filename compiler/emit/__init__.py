"""Stage 3: the model in, Envoy v3 protobufs out. Mechanical: every decision was made in `compiler.translate`.

`snapshot(cfg)` gives what the ADS server sends one proxy; `meshxds.consistency.check(snapshot)` must be empty before
it is published; `dump` renders it as JSON for golden files and `meshward compile`; `bootstrap_static` makes a
self-contained Envoy bootstrap of the same config. An `EmitError` is a bug upstream (a model that breaks the
emitter's contract), never a user error.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.message import Message

from compiler import model
from compiler.emit import assembled, cluster, consistency, endpoint, hooks, listener, secret
from compiler.emit.common import EmitError
from compiler.reuse.memo import EmitMemo, Part
from meshxds import type_urls
from meshxds.snapshot import Snapshot, TypeTable, XdsResource


def _typed(cfg: model.ProxyConfig) -> list[tuple[str, tuple[Any, ...]]]:
    return [(type_urls.SECRET, cfg.secrets), (type_urls.CLUSTER, cfg.clusters),
            (type_urls.ENDPOINT, cfg.load_assignments), (type_urls.LISTENER, cfg.listeners),
            (type_urls.ROUTE, cfg.route_configs)]


def _emitted(type_url: str, items: Sequence[Any], reuse: hooks.Reuse) -> list[XdsResource]:
    if type_url == type_urls.ROUTE:
        return [reuse.resource(type_url, item, functools.partial(assembled.route_table, item, reuse))
                for item in items]
    make = _EMITTERS[type_url]
    return [reuse.resource(type_url, item, functools.partial(_resource, type_url, item, make, reuse))
            for item in items]


def _resource(type_url: str, item: Any, make: Callable[[Any], Message], reuse: hooks.Reuse) -> XdsResource:
    if type_url == type_urls.CLUSTER and assembled.applies(item):
        return assembled.eds_cluster(item, reuse)
    if type_url == type_urls.ENDPOINT:
        return assembled.load_assignment(item)
    return XdsResource.of(_name(type_url, item), type_url, make(item))


_EMITTERS: dict[str, Callable[[Any], Message]] = {
    type_urls.SECRET: secret.of, type_urls.CLUSTER: cluster.of, type_urls.ENDPOINT: endpoint.of,
    type_urls.LISTENER: listener.of,
}


@dataclasses.dataclass(frozen=True, slots=True)
class _Table:
    """One type's table, as the reuse layer sees it (compiler.reuse.memo.TableKind): how it is made from the
    type's model items, and what it is made of."""

    type_url: str
    reuse: hooks.Reuse

    def make(self, items: tuple[Any, ...]) -> TypeTable:
        return TypeTable.of(self.emit(items))

    def emit(self, items: Sequence[Any]) -> list[XdsResource]:
        return _emitted(self.type_url, items, self.reuse)

    def item_name(self, item: Any) -> str:
        return _name(self.type_url, item)

    def resources(self, table: TypeTable) -> Mapping[str, XdsResource]:
        return table.resources

    def resource_name(self, resource: XdsResource) -> str:
        return resource.name

    def sorted(self, resources: dict[str, XdsResource]) -> TypeTable:
        return TypeTable.sorted(resources)

    def places(self, items: tuple[Any, ...]) -> Iterable[tuple[Part, str, int]]:
        # a route table is written from its virtual hosts' parts (assembled)
        return ((Part.VHOST, rc.name, len(rc.virtual_hosts)) for rc in items) if self.type_url == type_urls.ROUTE \
            else ()


def _name(type_url: str, item: Any) -> str:
    return str(item.cluster_name if type_url == type_urls.ENDPOINT else item.name)


def snapshot(cfg: model.ProxyConfig, reuse: hooks.Reuse = hooks.NO_REUSE) -> Snapshot:
    """Raises EmitError on two resources of one type with one name, which a snapshot cannot hold. With a reuse
    layer (a build's EmitMemo), a type whose resources are all the same as for an earlier proxy (or revision)
    reuses that table and version, and a proxy whose tables are all the same gets the same Snapshot object (the
    cache then has nothing to push)."""
    typed = _typed(cfg)
    tables = tuple(reuse.table(type_url, items, _Table(type_url, reuse)) for type_url, items in typed)
    if any(len(table.resources) != len(items) for table, (_, items) in zip(tables, typed, strict=True)):
        raise EmitError(f"proxy {cfg.proxy.node_id}: " + "; ".join(consistency.duplicates(cfg)))
    return reuse.snapshot(tables, lambda: Snapshot.from_tables(
        {t: table for (t, _), table in zip(typed, tables, strict=True)}))


__all__ = ["EmitError", "EmitMemo", "Snapshot", "XdsResource", "snapshot"]

