"""Stage 3: the model in, Envoy v3 protobufs out. Mechanical: every decision was made in `compiler.translate`.

`snapshot(cfg)` gives what the ADS server sends one proxy; `dump` renders it as JSON for golden files and
`meshward compile`; `bootstrap_static` makes a self-contained Envoy bootstrap of the same config.
"""

from __future__ import annotations

from compiler import model
from compiler.emit import cluster, endpoint, listener, route, secret, type_urls
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
    return Snapshot.of(resources(cfg))


__all__ = ["Snapshot", "XdsResource", "resources", "snapshot"]
