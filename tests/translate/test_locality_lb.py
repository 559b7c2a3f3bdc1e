"""Locality load balancing (compiler.translate.locality) as Pilot's loadbalancer.go applies it: which setting applies,
failover priorities, distribute weights; and per proxy: sidecars of different localities get their own endpoints."""

from __future__ import annotations

import pytest
from translate_harness import build_mesh, by_name

from compiler import model, translate
from compiler.api.destination_rule import LoadBalancerSettings, LocalityLoadBalancerSetting
from compiler.translate import locality


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
    assert priorities(locality.apply(setting(), endpoints, outlier=False, proxy="us/a/x")) == dict.fromkeys(
        ("us/a/x", "us/a/y", "eu/b/z"), 0)
    assert priorities(locality.apply(setting(), endpoints, outlier=True, proxy="us/a/x")) == {
        "us/a/x": 0, "us/a/y": 1, "eu/b/z": 2}  # raw 0, 1, 3


def test_failover_regions_come_before_the_others() -> None:
    endpoints = eps("us/a", "ap/b", "eu/c")
    found = locality.apply(setting(failover=[{"from": "us", "to": "eu"}]), endpoints, outlier=True, proxy="us/a")
    assert priorities(found) == {"us/a": 0, "eu/c": 1, "ap/b": 2}  # raw 0, 3, 4


def test_failover_priority_labels_are_not_built_and_leave_priorities_equal() -> None:
    found = locality.apply(setting(failoverPriority=["topology.istio.io/network"]), eps("us/a", "eu/b"),
                           outlier=True, proxy="us/a")
    assert priorities(found) == {"us/a": 0, "eu/b": 0}


def test_distribute_shares_a_localitys_weight_and_drops_the_unnamed() -> None:
    endpoints = (*eps("us/a", "us/b", "eu/c"), model.Endpoint("10.0.0.9", 80, weight=2, locality="us/b"))
    rule = setting(distribute=[{"from": "eu/*", "to": {"*": 100}}, {"from": "us/*", "to": {"us/*": 70, "ap/*": 30}}])
    found = locality.apply(rule, endpoints, outlier=False, proxy="us/a")
    # us/a weighs 1 and us/b 3 of us/*'s 70: ceil(17.5) and ceil(52.5); eu/c is named by no entry
    assert {(ep.address, ep.locality_weight) for ep in found} == {("10.0.0.1", 18), ("10.0.0.2", 53),
                                                                  ("10.0.0.9", 53)}
    assert locality.weighted(rule, outlier=False)
    assert locality.apply(rule, endpoints, outlier=False, proxy="ap/x") == endpoints  # no `from` matches


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
    assert east.locality == "us/a" and m.lb_locality(east) == "" and m.outbound_key(east)[2] == ""
    assert priorities(assignment(m, "sidecar~10.1.0.1~east.app~app.svc.cluster.local").endpoints) == {
        "us/a": 0, "eu/b": 0}
