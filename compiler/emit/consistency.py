"""Model-level consistency: two resources of one type with one name, which a snapshot cannot hold (it would keep
the last silently). The snapshot's own check, that every resource a listener or cluster references is in it, is
`meshxds.consistency.check`."""

from __future__ import annotations

from collections import Counter

from compiler import model


def duplicates(cfg: model.ProxyConfig) -> list[str]:
    """Two resources of one type with one name: the snapshot would silently keep only the last."""
    named = {
        "listener": [x.name for x in cfg.listeners],
        "route config": [x.name for x in cfg.route_configs],
        "cluster": [x.name for x in cfg.clusters],
        "load assignment": [x.cluster_name for x in cfg.load_assignments],
        "secret": [x.name for x in cfg.secrets],
    }
    return [
        f"{kind} {name!r} is defined {n} times"
        for kind, names in named.items()
        for name, n in sorted(Counter(names).items())
        if n > 1
    ]
