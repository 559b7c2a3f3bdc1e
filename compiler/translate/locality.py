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
- failoverPriority, only with outlier detection, instead: each endpoint's priority by the first label of the list
  whose value differs between the proxy and the endpoint (a `key=value` entry compares the endpoint with `value`),
  a locality split into one group per priority (applyFailoverPriorities); then, with `failover` entries, the
  region failover inside each (applyLocalityFailover). Labels are the workloads' plus their locality's region,
  zone and subzone (AugmentLabels), so proxies whose labels on the list agree share their clusters (`Origin`).
Envoy reads locality weights with `locality_weighted_lb_config`, set for `distribute`, and for failover with
`failover` or `failoverPriority` entries (ApplyToCluster).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from compiler import model, naming
from compiler.api.destination_rule import LoadBalancerSettings, LocalityLoadBalancerSetting
from compiler.translate.services import Instance, Labels

_MESH_DEFAULT = LocalityLoadBalancerSetting(enabled=True)  # pkg/config/mesh/mesh.go DefaultMeshConfig
NETWORK = "topology.istio.io/network"


class Origin(NamedTuple):
    """What a proxy's locality load balancing is relative to: its locality and, for failoverPriority, its labels
    (`augmented`) of the keys some failoverPriority list compares (None: a proxy without labels, which Pilot's
    applyFailoverPriorities leaves alone)."""

    locality: str = ""
    labels: Labels | None = ()


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
          proxy: Origin, instances: Sequence[Instance] = ()) -> tuple[model.Endpoint, ...]:
    """The endpoints with their localities' priority and weight for `proxy`; `instances`: those behind the
    endpoints (their labels, for failoverPriority)."""
    if setting is None or not endpoints:
        return tuple(endpoints)
    if setting.distribute:
        return _distribute(setting, endpoints, proxy.locality)
    if not outlier:
        return tuple(endpoints)
    if setting.failover_priority:
        if proxy.labels is not None:
            by_address = {i.address: i for i in instances}
            endpoints = _by_labels(setting.failover_priority, endpoints, dict(proxy.labels), lambda ep: augmented(
                by_address[ep.address].labels if ep.address in by_address else (), ep.locality))
        if not setting.failover:  # ApplyLocalityLoadBalancer: failoverPriority alone leaves localities alone
            return tuple(endpoints)
    return _failover(setting, endpoints, proxy.locality)


def augmented(labels: Iterable[tuple[str, str]], locality: str) -> dict[str, str]:
    """pilot/pkg/serviceregistry/util/label AugmentLabels: the labels with the locality's region, zone and subzone
    (Pilot augments proxies' and endpoints' labels alike; meshward has one network and one cluster)."""
    out = dict(labels)
    out.update((k, v) for k, v in zip(naming.TOPOLOGY_LABELS, _split(locality), strict=True) if v)
    return out


def compared_keys(entries: Iterable[str]) -> set[str]:
    """The label keys of failoverPriority entries whose value is the proxy's (not `key=value`)."""
    return {parts[0] for parts in (e.split("=") for e in entries) if len(parts) != 2}


def _by_labels(entries: Sequence[str], endpoints: Sequence[model.Endpoint], mine: Mapping[str, str],
               labels_of: Callable[[model.Endpoint], Mapping[str, str]]) -> tuple[model.Endpoint, ...]:
    """applyFailoverPriorities: each endpoint's priority, numbered without gaps, and its locality split into one
    group per priority weighing what its endpoints weigh."""
    raw = [label_priority(entries, mine, labels_of(ep)) for ep in endpoints]
    rank = {p: i for i, p in enumerate(sorted(set(raw)))}
    weights: dict[tuple[str, int], int] = {}
    for ep, p in zip(endpoints, raw, strict=True):
        weights[ep.locality, p] = weights.get((ep.locality, p), 0) + ep.weight
    return tuple(_with(ep, priority=rank[p], locality_weight=weights[ep.locality, p])
                 for ep, p in zip(endpoints, raw, strict=True))


def label_priority(entries: Sequence[str], mine: Mapping[str, str], theirs: Mapping[str, str]) -> int:
    """applyFailoverPriorityPerLocality: len(entries) - j for the first entry j whose value differs, 0 when none
    does; a network first on the list that differs does not stop the walk but adds len(entries)."""
    lowest, adjust = len(entries), 0
    for j, entry in enumerate(entries):
        parts = entry.split("=")  # priorityLabelOverrides: `key=value` compares the endpoint with value
        want = parts[1] if len(parts) == 2 else mine.get(parts[0], "")
        if want != theirs.get(parts[0], ""):
            if j == 0 and entry == NETWORK:
                adjust = lowest
                continue
            return lowest - j + adjust
    return adjust


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
    # after failoverPriority's, an endpoint's priority is its label priority's times 5 plus its locality's
    raw = {loc: _priority(mine, _split(loc), regions) for loc in _groups(endpoints)}
    combined = [ep.priority * 5 + raw[ep.locality] for ep in endpoints]
    if len(set(combined)) == 1:  # one priority (the usual: no localities) is 0, as the endpoints already are
        return tuple(endpoints)
    rank = {p: i for i, p in enumerate(sorted(set(combined)))}  # Envoy's priorities have no gaps
    return tuple(_with(ep, priority=rank[p], locality_weight=ep.locality_weight)
                 for ep, p in zip(endpoints, combined, strict=True))


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
