"""Stage 3: the model in, Envoy v3 protobufs out. Mechanical: every decision was made in `compiler.translate`.

`snapshot(cfg)` gives what the ADS server sends one proxy; `consistency.check(snapshot)` must be empty before
it is published; `dump` renders it as JSON for golden files and `meshward compile`; `bootstrap_static` makes a
self-contained Envoy bootstrap of the same config. An `EmitError` is a bug upstream (a model that breaks the
emitter's contract), never a user error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable

from google.protobuf.message import Message

from compiler import model
from compiler.emit import cluster, consistency, endpoint, listener, route, secret, type_urls
from compiler.emit.common import EmitError
from compiler.emit.memo import EmitMemo
from compiler.emit.snapshot import Snapshot, XdsResource


def resources(cfg: model.ProxyConfig, memo: EmitMemo | None = None) -> list[XdsResource]:
    """Every resource of the proxy, each serialized once (deterministically); with a memo, resources equal to
    ones emitted before (for another proxy, or the previous revision) are reused, not rebuilt."""
    memo = memo if memo is not None else EmitMemo()

    def one(item: Hashable, name: str, type_url: str, make: Callable[[], Message]) -> XdsResource:
        return memo.resource((type_url, item), lambda: XdsResource.of(name, type_url, make()))

    out = [one(s, s.name, type_urls.SECRET, functools.partial(secret.of, s)) for s in cfg.secrets]
    out += [one(c, c.name, type_urls.CLUSTER, functools.partial(cluster.of, c)) for c in cfg.clusters]
    out += [one(la, la.cluster_name, type_urls.ENDPOINT, functools.partial(endpoint.of, la))
            for la in cfg.load_assignments]
    out += [one(li, li.name, type_urls.LISTENER, functools.partial(listener.of, li)) for li in cfg.listeners]
    out += [one(r, r.name, type_urls.ROUTE, functools.partial(route.of, r)) for r in cfg.route_configs]
    return out


def snapshot(cfg: model.ProxyConfig, memo: EmitMemo | None = None) -> Snapshot:
    """Raises EmitError on two resources of one type with one name, which a snapshot cannot hold."""
    duplicated = consistency.duplicates(cfg)
    if duplicated:
        raise EmitError(f"proxy {cfg.proxy.node_id}: " + "; ".join(duplicated))
    return Snapshot.of(resources(cfg, memo))


__all__ = ["EmitError", "EmitMemo", "Snapshot", "XdsResource", "resources", "snapshot"]
