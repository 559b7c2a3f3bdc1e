"""Locality load balancing, as Pilot applies it to a cluster's endpoints for one proxy
(pilot/pkg/networking/core/loadbalancer/loadbalancer.go).

The setting is the DestinationRule's `loadBalancer.localityLbSetting`, else MeshConfig's (Istio's default mesh
config has `localityLbSetting: {enabled: true}`); `enabled: false` turns it off (GetEffectiveLbSetting). Then:
- `distribute`: the first rule whose `from` matches the proxy's locality gives each locality of `to` its weight,
  shared among the endpoint localities it matches in proportion to their own weight (rounded up); localities no
  entry matches get no traffic (applyLocalityWeights). Pilot walks `to` as a Go map, in no fixed order, when two
  entries match one locality; meshward walks it in the YAML's order.
- failover, only with outlier detection (Envoy would never move to a lower priority without it): each locality's
  priority by what it shares with the proxy's (region, zone and subzone 0, region and zone 1, region 2, else 3;
  4 for a region a `failover` entry does not name for the proxy's), numbered from 0 without gaps
  (applyLocalityFailover).
Envoy reads locality weights with `locality_weighted_lb_config`, set for `distribute`, and for failover with
`failover` entries (ApplyToCluster). `failoverPriority` (label-based failover) is not built (MW0403): with it,
the endpoints keep equal priorities.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from compiler import model
from compiler.api.destination_rule import LoadBalancerSettings, LocalityLoadBalancerSetting

_MESH_DEFAULT = LocalityLoadBalancerSetting(enabled=True)  # pkg/config/mesh/mesh.go DefaultMeshConfig


def effective(lb: LoadBalancerSettings | None,
              mesh: LocalityLoadBalancerSetting | None) -> LocalityLoadBalancerSetting | None:
    """The rule's setting, else the mesh's; None when the one that applies is disabled."""
    setting = lb.locality_lb_setting if lb is not None and lb.locality_lb_setting is not None else mesh
    setting = setting if setting is not None else _MESH_DEFAULT
    return None if setting.enabled is False else setting


def weighted(setting: LocalityLoadBalancerSetting | None, *, outlier: bool) -> bool:
    """Envoy's locality_weighted_lb_config (ApplyToCluster)."""
    return setting is not None and (bool(setting.distribute) or (
        outlier and (bool(setting.failover) or bool(setting.failover_priority))))


def apply(setting: LocalityLoadBalancerSetting | None, endpoints: Sequence[model.Endpoint], *, outlier: bool,
          proxy: str) -> tuple[model.Endpoint, ...]:
    """The endpoints with their localities' priority and weight for a proxy in locality `proxy`."""
    if setting is None or not endpoints:
        return tuple(endpoints)
    if setting.distribute:
        return _distribute(setting, endpoints, proxy)
    if outlier and not setting.failover_priority:
        return _failover(setting, endpoints, proxy)
    return tuple(endpoints)


def _split(locality: str) -> tuple[str, str, str]:
    region, zone, subzone = (locality.split("/") + ["", "", ""])[:3]
    return region, zone, subzone


def matches(locality: str, pattern: str) -> bool:
    """pilot/pkg/networking/util LocalityMatch: `region/zone/subzone` with `*` for any; a missing zone or subzone
    matches any."""
    have, want = _split(locality), _split(pattern)
    return want[0] in ("*", have[0]) and all(w in ("*", "", h) for h, w in zip(have[1:], want[1:], strict=True))


def _distribute(setting: LocalityLoadBalancerSetting, endpoints: Sequence[model.Endpoint],
                proxy: str) -> tuple[model.Endpoint, ...]:
    rule = next((r for r in setting.distribute or () if r is not None and matches(proxy, r.from_ or "")), None)
    if rule is None:
        return tuple(endpoints)
    groups = _groups(endpoints)
    weights: dict[str, int] = {}
    for pattern, weight in (rule.to or {}).items():
        chosen = [loc for loc in groups if loc not in weights and matches(loc, pattern)]
        total = sum(_weight(groups[loc]) for loc in chosen)
        for loc in chosen:  # a share of 0 leaves the locality its own weight, as in Pilot
            weights[loc] = math.ceil(_weight(groups[loc]) * weight / total) or _weight(groups[loc])
    return tuple(_with(ep, locality_weight=weights[ep.locality]) for ep in endpoints if ep.locality in weights)


def _failover(setting: LocalityLoadBalancerSetting, endpoints: Sequence[model.Endpoint],
              proxy: str) -> tuple[model.Endpoint, ...]:
    mine = _split(proxy)
    regions = next((f.to for f in setting.failover or () if f.from_ == mine[0]), None)
    raw = {loc: _priority(mine, _split(loc), regions) for loc in _groups(endpoints)}
    if len(set(raw.values())) == 1:  # one priority (the usual: no localities) is 0, as the endpoints already are
        return tuple(endpoints)
    rank = {p: i for i, p in enumerate(sorted(set(raw.values())))}  # Envoy's priorities have no gaps
    return tuple(_with(ep, priority=rank[raw[ep.locality]]) for ep in endpoints)


def _priority(proxy: tuple[str, str, str], endpoint: tuple[str, str, str], failover_to: str | None) -> int:
    """pilot/pkg/networking/util LbPriority, then the failover regions: another region than the one named for the
    proxy's is last."""
    shared = len(list(itertools.takewhile(bool, (p == e for p, e in zip(proxy, endpoint, strict=True)))))
    priority = 3 - shared
    if priority == 3 and failover_to is not None and endpoint[0] != failover_to:
        return 4
    return priority


def _groups(endpoints: Sequence[model.Endpoint]) -> dict[str, list[model.Endpoint]]:
    out: dict[str, list[model.Endpoint]] = {}
    for ep in endpoints:
        out.setdefault(ep.locality, []).append(ep)
    return out


def _weight(group: Sequence[model.Endpoint]) -> int:
    """A locality's weight before distribution: its endpoints' (Pilot's LocalityLbEndpoints weight)."""
    return sum(ep.weight for ep in group)


def _with(ep: model.Endpoint, *, priority: int = 0, locality_weight: int = 0) -> model.Endpoint:
    return model.Endpoint(ep.address, ep.port, ep.weight, ep.locality, ep.healthy, ep.tls_mode, priority,
                          locality_weight)
