"""Locality load balancing (compiler.translate.locality) as Pilot's loadbalancer.go applies it: which setting applies,
failover priorities, distribute weights; and per proxy: sidecars of different localities get their own endpoints."""

from __future__ import annotations

import pytest
from translate_harness import build_mesh, by_name

from compiler import model, translate
from compiler.api.destination_rule import LoadBalancerSettings, LocalityLoadBalancerSetting
from compiler.translate import locality
from compiler.translate.services import Instance


def eps(*localities: str) -> tuple[model.Endpoint, ...]:
    return tuple(model.Endpoint(f"10.0.0.{i}", 80, locality=loc) for i, loc in enumerate(localities, start=1))


def setting(**fields: object) -> LocalityLoadBalancerSetting:
    return LocalityLoadBalancerSetting.model_validate(fields, by_alias=True)


@pytest.mark.parametrize(("have", "pattern", "match"), [
    ("us/a/x", "us/a/x", True), ("us/a/x", "us/*", True), ("us/a/x", "us", True), ("us/a/x", "*", True),
    ("us/a/x", "us/b", False), ("us/a/x", "eu/*", False), ("us/a/x", "us/a/y", False), ("us/a", "us/a/*", True),
])
def test_locality_match_is_pilots(have: str, pattern: str, match: bool) -> None:
    assert locality.matches(have, pattern) is match


def test_the_rules_setting_wins_and_disabled_is_none() -> None:
    mesh = setting(distribute=[{"from": "*", "to": {"*": 100}}])
    own = setting(failover=[{"from": "us", "to": "eu"}])
    assert locality.effective(LoadBalancerSettings(locality_lb_setting=own), mesh) is own
    assert locality.effective(None, mesh) is mesh
    assert locality.effective(LoadBalancerSettings(locality_lb_setting=setting(enabled=False)), mesh) is None
    assert locality.effective(None, setting(enabled=False)) is None
    assert locality.effective(None, None) == setting(enabled=True)  # Istio's default mesh config


def priorities(found: tuple[model.Endpoint, ...]) -> dict[str, int]:
    return {ep.locality: ep.priority for ep in found}


def test_failover_needs_outlier_detection_and_numbers_priorities_without_gaps() -> None:
    endpoints = eps("us/a/x", "us/a/y", "eu/b/z")
    assert priorities(locality.apply(setting(), endpoints, outlier=False, proxy=locality.Origin("us/a/x"))) == dict.fromkeys(
        ("us/a/x", "us/a/y", "eu/b/z"), 0)
    assert priorities(locality.apply(setting(), endpoints, outlier=True, proxy=locality.Origin("us/a/x"))) == {
        "us/a/x": 0, "us/a/y": 1, "eu/b/z": 2}  # raw 0, 1, 3


def test_failover_regions_come_before_the_others() -> None:
    endpoints = eps("us/a", "ap/b", "eu/c")
    found = locality.apply(setting(failover=[{"from": "us", "to": "eu"}]), endpoints, outlier=True, proxy=locality.Origin("us/a"))
    assert priorities(found) == {"us/a": 0, "eu/c": 1, "ap/b": 2}  # raw 0, 3, 4


# pilot/pkg/networking/core/loadbalancer/loadbalancer_test.go buildWrappedLocalityLbEndpoints: address, locality,
# labels (network and cluster as n and c)
PILOTS = (("1.1.1.1", "region1/zone1/subzone1", {"n": "n1", "c": "c1"}),
          ("2.2.2.2", "region1/zone1/subzone1", {"key": "value", "n": "n2", "c": "c2"}),
          ("3.3.3.3", "region2/zone2/subzone2", {"key": "value", "n": "n1", "c": "c3"}),
          ("4.4.4.4", "region2/zone2/subzone2", {"key": "value", "n": "n2", "c": "c4"}),
          ("1.2.3.4", "region3/zone3/subzone3", {"key": "value", "n": "n1", "c": "c1"}),
          ("2.3.4.5", "region3/zone3/subzone3", {"key": "value", "n": "n2", "c": "c2"}))
NET, CLU = "topology.istio.io/network", "topology.istio.io/cluster"


def by_labels(table: object, entries: list[str], proxy: dict[str, str], **fields: object) -> dict[str, int]:
    """Each endpoint's priority for a proxy in region1/zone1/subzone1 with labels `proxy` (n, c for network,
    cluster)."""
    names = {"n": NET, "c": CLU, "key": "key"}
    rows = [(a, loc, {names[k]: v for k, v in labels.items()}) for a, loc, labels in table]  # type: ignore[attr-defined]
    endpoints = tuple(model.Endpoint(a, 80, locality=loc) for a, loc, _ in rows)
    instances = [Instance(a, ((80, 80),), tuple(labels.items()), locality=loc) for a, loc, labels in rows]
    mine = locality.augmented(((names[k], v) for k, v in proxy.items()), "region1/zone1/subzone1")
    found = locality.apply(setting(failoverPriority=entries, **fields), endpoints, outlier=True,
                           proxy=locality.Origin("region1/zone1/subzone1", tuple(mine.items())), instances=instances)
    return {ep.address: ep.priority for ep in found}


@pytest.mark.parametrize(("name", "entries", "proxy", "expected"), [
    ("match none label", [NET, CLU], {"n": "test", "c": "test"}, [0, 0, 0, 0, 0, 0]),
    ("match network label", [NET, CLU], {"n": "n1", "c": "test"}, [0, 1, 0, 1, 0, 1]),
    ("not match the first n label", [NET, CLU], {"n": "test", "c": "c1"}, [0, 1, 1, 1, 0, 1]),
    ("match all labels", ["key", NET, CLU], {"key": "value", "n": "n2", "c": "c2"}, [3, 0, 2, 1, 2, 0]),
    ("priority assignment as per the overridden value", [NET + "=n1"], {"n": "n2", "c": "test"}, [0, 1, 0, 1, 0, 1]),
    ("no endpoints with overridden value", [NET + "=n3"], {"n": "n1", "c": "test"}, [0, 0, 0, 0, 0, 0]),
])
def test_failover_priority_is_pilots(name: str, entries: list[str], proxy: dict[str, str],
                                     expected: list[int]) -> None:
    assert list(by_labels(PILOTS, entries, proxy).values()) == expected, name


def test_failover_priority_then_region_failover_is_pilots() -> None:
    """loadbalancer_test.go "FailoverPriority with Failover": label priority times 5 plus the locality's."""
    table = (("1.1.1.1", "region1/zone1/subzone1", {"n": "n1", "c": "c1"}),
             ("2.2.2.2", "region1/zone2/subzone2", {"key": "value", "n": "n2", "c": "c2"}),
             ("3.3.3.3", "region2/zone2/subzone2", {"key": "value", "n": "n1", "c": "c3"}),
             ("4.4.4.4", "region3/zone3/subzone3", {"key": "value", "n": "n2", "c": "c4"}),
             ("5.5.5.5", "region2/zone2/subzone2", {"n": "n2", "c": "c2"}),
             ("6.6.6.6", "region3/zone3/subzone3", {"key": "value", "n": "n1", "c": "c6"}))
    found = by_labels(table, [NET, CLU], {"n": "n2", "c": "c2"}, failover=[{"from": "region1", "to": "region2"}])
    assert found == {"1.1.1.1": 3, "2.2.2.2": 0, "3.3.3.3": 4, "4.4.4.4": 2, "5.5.5.5": 1, "6.6.6.6": 5}


def test_failover_priority_splits_a_locality_by_priority_and_reads_zones_from_localities() -> None:
    endpoints = (model.Endpoint("10.0.0.1", 80, 2, "us/a"), model.Endpoint("10.0.0.2", 80, 3, "us/b"),
                 model.Endpoint("10.0.0.3", 80, 4, "us/a"))
    instances = [Instance("10.0.0.1", ((80, 80),), (("v", "1"),)), Instance("10.0.0.3", ((80, 80),), (("v", "2"),))]
    rule = setting(failoverPriority=["topology.kubernetes.io/zone", "v"])
    proxy = locality.Origin("us/a", tuple(locality.augmented((("v", "1"),), "us/a").items()))
    found = locality.apply(rule, endpoints, outlier=True, proxy=proxy, instances=instances)
    assert [(ep.priority, ep.locality_weight) for ep in found] == [(0, 2), (2, 3), (1, 4)]
    assert locality.apply(rule, endpoints, outlier=False, proxy=proxy, instances=instances) == endpoints  # failover needs outlier detection
    assert locality.apply(rule, endpoints, outlier=True, proxy=locality.Origin("us/a", None),
                          instances=instances) == endpoints  # a proxy without labels: Pilot leaves them


def test_distribute_shares_a_localitys_weight_and_drops_the_unnamed() -> None:
    endpoints = (*eps("us/a", "us/b", "eu/c"), model.Endpoint("10.0.0.9", 80, weight=2, locality="us/b"))
    rule = setting(distribute=[{"from": "eu/*", "to": {"*": 100}}, {"from": "us/*", "to": {"us/*": 70, "ap/*": 30}}])
    found = locality.apply(rule, endpoints, outlier=False, proxy=locality.Origin("us/a"))
    # us/a weighs 1 and us/b 3 of us/*'s 70: ceil(17.5) and ceil(52.5); eu/c is named by no entry
    assert {(ep.address, ep.locality_weight) for ep in found} == {("10.0.0.1", 18), ("10.0.0.2", 53),
                                                                  ("10.0.0.9", 53)}
    assert locality.weighted(rule, outlier=False)
    assert locality.apply(rule, endpoints, outlier=False, proxy=locality.Origin("ap/x")) == endpoints  # no `from` matches


TREE = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: app}
spec:
  hosts: [reviews.app.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 9080, protocol: HTTP}]
  endpoints:
  - {address: 10.2.0.1, locality: us/a}
  - {address: 10.2.0.2, locality: eu/b}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: app}
spec:
  host: reviews.app.internal
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: east, namespace: app}
spec: {address: 10.1.0.1, locality: us/a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: west, namespace: app}
spec: {address: 10.1.0.2, locality: eu/b}
"""
CLUSTER = "outbound|9080||reviews.app.internal"


def assignment(m: translate.Mesh, node: str) -> model.LoadAssignment:
    found: model.LoadAssignment = by_name(translate.proxy_config(m, translate.find_proxy(m, node)).load_assignments,
                                          CLUSTER)
    return found


def test_sidecars_of_two_localities_get_their_own_priorities() -> None:
    m = build_mesh(TREE)
    east = assignment(m, "sidecar~10.1.0.1~east.app~app.svc.cluster.local")
    west = assignment(m, "sidecar~10.1.0.2~west.app~app.svc.cluster.local")
    assert priorities(east.endpoints) == {"us/a": 0, "eu/b": 1}
    assert priorities(west.endpoints) == {"us/a": 1, "eu/b": 0}


def test_without_a_rule_that_weighs_localities_every_locality_shares_one_config() -> None:
    m = build_mesh(TREE.replace("trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}",
                                "trafficPolicy: {loadBalancer: {simple: RANDOM}}"))
    east = translate.find_proxy(m, "sidecar~10.1.0.1~east.app~app.svc.cluster.local")
    assert east.locality == "us/a" and m.lb_origin(east) == m.outbound_key(east)[2] == locality.Origin()
    assert priorities(assignment(m, "sidecar~10.1.0.1~east.app~app.svc.cluster.local").endpoints) == {
        "us/a": 0, "eu/b": 0}


def test_sidecars_share_failover_priority_clusters_when_their_listed_labels_agree() -> None:
    tree = TREE.replace("{outlierDetection: {consecutive5xxErrors: 3}}", "{outlierDetection: {consecutive5xxErrors: 3}, "
                        "loadBalancer: {localityLbSetting: {failoverPriority: [v, topology.istio.io/network=n1]}}}")
    tree = tree.replace("- {address: 10.2.0.1, locality: us/a}", "- {address: 10.2.0.1, labels: {v: '1'}}")
    tree = tree.replace("- {address: 10.2.0.2, locality: eu/b}", "- {address: 10.2.0.2, labels: {v: '2'}}")
    tree = tree.replace("spec: {address: 10.1.0.1, locality: us/a}", "spec: {address: 10.1.0.1, labels: {v: '1'}}")
    tree = tree.replace("spec: {address: 10.1.0.2, locality: eu/b}",
                        "spec: {address: 10.1.0.2, labels: {v: '2', w: x}}")
    m = build_mesh(tree + "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: east2, "
                   "namespace: app}\nspec: {address: 10.1.0.3, labels: {v: '1', w: y}}\n")
    east, west, east2 = (translate.find_proxy(m, f"sidecar~10.1.0.{i}~{n}.app~app.svc.cluster.local")
                         for i, n in ((1, "east"), (2, "west"), (3, "east2")))
    assert m.lb_origin(east) == m.lb_origin(east2) == locality.Origin("", (("v", "1"),)) != m.lb_origin(west)
    assert {ep.address: ep.priority for ep in assignment(m, "sidecar~10.1.0.2~west.app~app.svc.cluster.local")
            .endpoints} == {"10.2.0.1": 1, "10.2.0.2": 0}
