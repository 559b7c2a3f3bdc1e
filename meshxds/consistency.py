"""Snapshot consistency, checked before a snapshot is published (go-control-plane's `Snapshot.Consistent()`).

Envoy waits for every resource a listener or cluster references: a missing route table, load assignment or
secret leaves the listener or cluster warming forever. Such a snapshot is an emitter or translator bug, a
system error that blocks publishing; the proxy keeps its last good snapshot. The check reads each resource's
references (`XdsResource.refs`), found when it was built, and nothing else: it belongs with the snapshot, as
go-control-plane keeps it, so that whoever holds a snapshot can check it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

from meshxds import type_urls
from meshxds.snapshot import Snapshot, XdsResource


def _listener_problems(listeners: Mapping[str, XdsResource], routes: Mapping[str, XdsResource],
                       secrets: Mapping[str, XdsResource]) -> Iterator[str]:
    for name, res in listeners.items():
        for rds, filters in res.refs.routes:
            if rds not in routes:
                yield f"listener {name} references route config {rds!r}, which is not in the snapshot"
                continue
            # every filter the routes configure runs in the chain (else Envoy would quietly ignore, say, a
            # route's fault injection)
            for filter_name in sorted(routes[rds].refs.per_route_filters - filters):
                yield f"route config {rds!r} configures {filter_name} per route, but listener {name} does not run it"
        for chain, sds in res.refs.secrets:
            if sds not in secrets:
                yield f"listener {name} chain {chain!r} references secret {sds!r}, which is not in the snapshot"


def _cluster_problems(clusters: Mapping[str, XdsResource], endpoints: Mapping[str, XdsResource],
                      secrets: Mapping[str, XdsResource]) -> Iterator[str]:
    for name, res in clusters.items():
        eds = res.refs.endpoints
        if eds is not None and eds not in endpoints:
            yield f"EDS cluster {name} has no load assignment {eds!r} in the snapshot"
        for _, sds in res.refs.secrets:
            if sds not in secrets:
                yield f"cluster {name} references secret {sds!r}, which is not in the snapshot"


Memo = Callable[[Hashable, Callable[[], Any]], Any]


def check(snap: Snapshot, memo: Memo | None = None) -> list[str]:
    """Problems, empty when consistent: every route config a listener names over RDS, every EDS cluster's load
    assignment and every SDS secret a listener or cluster takes over ADS is in the snapshot (not the agent's, which
    come over `sds-grpc`: meshxds.refs), and every filter a route configures runs in the connection managers that
    use the route table. With a memo (the compiler's emit memo:
    `get(key, make)`), the checks of tables shared with another proxy's snapshot are not repeated: tables are
    keyed by identity (the entry keeps them alive)."""
    listeners, routes, clusters, endpoints, secrets = (
        snap.get(t) for t in (type_urls.LISTENER, type_urls.ROUTE, type_urls.CLUSTER, type_urls.ENDPOINT,
                              type_urls.SECRET))

    def memoized(tag: str, tables: tuple[Mapping[str, XdsResource], ...],
                 problems: Callable[..., Iterator[str]]) -> list[str]:
        if memo is None:
            return list(problems(*tables))
        entry = memo(("consistency", tag, tuple(map(id, tables))), lambda: (tables, list(problems(*tables))))
        return list(entry[1])

    return [*memoized("listeners", (listeners, routes, secrets), _listener_problems),
            *memoized("clusters", (clusters, endpoints, secrets), _cluster_problems)]
