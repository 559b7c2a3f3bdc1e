"""Stage 3: the model in, Envoy v3 protobufs out. Mechanical: every decision was made in `compiler.translate`.

`snapshot(cfg)` gives what the ADS server sends one proxy; `consistency.check(snapshot)` must be empty before
it is published; `dump` renders it as JSON for golden files and `meshward compile`; `bootstrap_static` makes a
self-contained Envoy bootstrap of the same config. An `EmitError` is a bug upstream (a model that breaks the
emitter's contract), never a user error.
"""

from __future__ import annotations

from compiler import model
from compiler.emit import cluster, consistency, endpoint, listener, route, secret, type_urls
from compiler.emit.common import EmitError
from compiler.emit.snapshot import Snapshot, XdsResource


def resources(cfg: model.ProxyConfig) -> list[XdsResource]:
    """Every resource of the proxy, each serialized once (deterministically)."""
    out = [XdsResource.of(s.name, type_urls.SECRET, secret.of(s)) for s in cfg.secrets]
    out += [XdsResource.of(c.name, type_urls.CLUSTER, cluster.of(c)) for c in cfg.clusters]
    out += [
        XdsResource.of(la.cluster_name, type_urls.ENDPOINT, endpoint.of(la)) for la in cfg.load_assignments
    ]
    out += [XdsResource.of(li.name, type_urls.LISTENER, listener.of(li)) for li in cfg.listeners]
    out += [XdsResource.of(r.name, type_urls.ROUTE, route.of(r)) for r in cfg.route_configs]
    return out


def snapshot(cfg: model.ProxyConfig) -> Snapshot:
    """Raises EmitError on two resources of one type with one name, which a snapshot cannot hold."""
    duplicated = consistency.duplicates(cfg)
    if duplicated:
        raise EmitError(f"proxy {cfg.proxy.node_id}: " + "; ".join(duplicated))
    return Snapshot.of(resources(cfg))


__all__ = ["EmitError", "Snapshot", "XdsResource", "resources", "snapshot"]
