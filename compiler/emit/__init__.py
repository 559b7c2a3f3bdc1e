"""Stage 3: the model in, Envoy v3 protobufs out. Mechanical: every decision was made in `compiler.translate`.

`snapshot(cfg)` gives what the ADS server sends one proxy; `meshxds.consistency.check(snapshot)` must be empty before
it is published; `dump` renders it as JSON for golden files and `meshward compile`; `bootstrap_static` makes a
self-contained Envoy bootstrap of the same config. An `EmitError` is a bug upstream (a model that breaks the
emitter's contract), never a user error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from compiler import model
from compiler.emit import assembled, cluster, consistency, endpoint, listener, secret
from compiler.emit.common import EmitError
from compiler.reuse.memo import EmitMemo, Part
from compiler.reuse.patch import patch_sorted
from meshxds import type_urls
from meshxds.snapshot import Snapshot, TypeTable, XdsResource


def _typed(cfg: model.ProxyConfig) -> list[tuple[str, tuple[Any, ...]]]:
    return [(type_urls.SECRET, cfg.secrets), (type_urls.CLUSTER, cfg.clusters),
            (type_urls.ENDPOINT, cfg.load_assignments), (type_urls.LISTENER, cfg.listeners),
            (type_urls.ROUTE, cfg.route_configs)]


def _emitted(type_url: str, items: tuple[Any, ...], memo: EmitMemo) -> list[XdsResource]:
    if type_url == type_urls.ROUTE:
        return [memo.resource(type_url, item, functools.partial(assembled.route_table, item, memo)) for item in items]
    make = _EMITTERS[type_url]
    return [memo.resource(type_url, item, functools.partial(_resource, type_url, item, make, memo)) for item in items]


def _resource(type_url: str, item: Any, make: Callable[[Any], Message], memo: EmitMemo) -> XdsResource:
    if type_url == type_urls.CLUSTER and assembled.applies(item):
        return assembled.eds_cluster(item, memo)
    if type_url == type_urls.ENDPOINT:
        return assembled.load_assignment(item)
    return XdsResource.of(_name(type_url, item), type_url, make(item))


_EMITTERS: dict[str, Callable[[Any], Message]] = {
    type_urls.SECRET: secret.of, type_urls.CLUSTER: cluster.of, type_urls.ENDPOINT: endpoint.of,
    type_urls.LISTENER: listener.of,
}


def _table_of(type_url: str, items: tuple[Any, ...], memo: EmitMemo) -> TypeTable:
    table: TypeTable = memo.table(type_url, items, lambda: TypeTable.of(_emitted(type_url, items, memo)),
                       functools.partial(_patched_table, type_url, items, memo=memo))
    if type_url == type_urls.ROUTE:  # a route table is patched from its virtual hosts' parts (assembled)
        for rc in items:
            memo.keep_parts_by_place(Part.VHOST, rc.name, len(rc.virtual_hosts))
    return table


def _patched_table(type_url: str, items: tuple[Any, ...], old_items: tuple[Any, ...], old: TypeTable, *,
                   memo: EmitMemo) -> TypeTable | None:
    """`old` with the resources of the items that differ (by identity, place by place) emitted again, when few
    differ and keep their names (compiler.reuse.patch)."""
    if len(old.resources) != len(old_items):
        return None  # two items of one name: the table is not one resource per item

    def swaps(changed: list[int]) -> list[tuple[XdsResource, XdsResource]]:
        emitted = _emitted(type_url, tuple(items[i] for i in changed), memo)
        return [(old.resources[_name(type_url, old_items[i])], res) for i, res in zip(changed, emitted, strict=True)]

    resources = patch_sorted(old.resources, _resource_name, old_items, items, swaps)
    if resources is None or resources is old.resources:  # too much changed, or nothing
        return None if resources is None else old
    assert isinstance(resources, dict)  # a patched table is a new dict
    return TypeTable.sorted(resources)


def _resource_name(res: XdsResource) -> str:
    return res.name


def _name(type_url: str, item: Any) -> str:
    return str(item.cluster_name if type_url == type_urls.ENDPOINT else item.name)


def snapshot(cfg: model.ProxyConfig, memo: EmitMemo | None = None) -> Snapshot:
    """Raises EmitError on two resources of one type with one name, which a snapshot cannot hold. With a memo, a
    type whose resources are all the same as for an earlier proxy (or revision) reuses that table and version, and
    a proxy whose tables are all the same gets the same Snapshot object (the cache then has nothing to push)."""
    memo = memo if memo is not None else EmitMemo()
    typed = _typed(cfg)
    tables = tuple(_table_of(type_url, items, memo) for type_url, items in typed)
    if any(len(table.resources) != len(items) for table, (_, items) in zip(tables, typed, strict=True)):
        raise EmitError(f"proxy {cfg.proxy.node_id}: " + "; ".join(consistency.duplicates(cfg)))
    return memo.snapshot(tables, lambda: Snapshot.from_tables(
        {t: table for (t, _), table in zip(typed, tables, strict=True)}))


__all__ = ["EmitError", "EmitMemo", "Snapshot", "XdsResource", "snapshot"]

