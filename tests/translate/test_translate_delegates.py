"""VirtualService delegation, merged as Pilot merges it (pilot/pkg/model/virtualservice.go): the merge rules on
their own, then what a sidecar gets from a root and its delegates, and the incremental build after a delegate
changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_translate_sidecar import SUBSETS
from translate_harness import PRODUCTPAGE, SHOP, build_mesh, by_name

from compiler import build as build_mod
from compiler import load, model, pipeline, translate
from compiler.api.virtual_service import HTTPMatchRequest, HTTPRoute, StringMatch
from compiler.translate import delegates


def _sm(**kw: str) -> StringMatch:
    return StringMatch(**kw)


@pytest.mark.parametrize(("root", "leaf", "conflict"), [
    (None, _sm(prefix="/a"), False),  # either side unset: no conflict
    (_sm(prefix="/a"), None, False),
    (_sm(prefix="/a"), _sm(prefix="/a/b"), False),  # narrower prefix
    (_sm(prefix="/a/b"), _sm(prefix="/a"), True),  # wider prefix
    (_sm(prefix="/a"), _sm(exact="/a/x"), False),
    (_sm(prefix="/a"), _sm(exact="/b"), True),
    (_sm(exact="/a"), _sm(exact="/a"), False),
    (_sm(exact="/a"), _sm(exact="/b"), True),
    (_sm(exact="/a"), _sm(prefix="/a"), True),
    (_sm(regex="/a.*"), _sm(prefix="/a"), True),  # a regex next to any other kind
    (_sm(prefix="/a"), _sm(regex="/a.*"), True),
    (_sm(regex="/a.*"), _sm(regex="/a.*"), True),
    (_sm(exact=""), _sm(prefix="/a"), True),  # an empty value is unset, as Go's getters read it
])
def test_string_match_conflicts_as_pilot(root: StringMatch | None, leaf: StringMatch | None, conflict: bool) -> None:
    assert delegates.string_match_conflict(root, leaf) is conflict


def test_match_merge_takes_the_roots_conditions_where_the_leaf_has_none() -> None:
    root = HTTPMatchRequest(name="r", uri=_sm(prefix="/api"), headers={"x-a": _sm(exact="1")}, port=9080)
    leaf = HTTPMatchRequest(name="l", headers={"x-b": _sm(exact="2")}, method=_sm(exact="GET"))
    merged = delegates.merge_match(root, leaf)
    assert merged.name == "r-l" and merged.uri == root.uri and merged.method == leaf.method and merged.port == 9080
    assert set(merged.headers or {}) == {"x-a", "x-b"}


def test_match_conflicts_on_headers_ports_case_and_sources() -> None:
    root = HTTPMatchRequest(headers={"x-a": _sm(exact="1")}, port=9080, source_labels={"app": "a"},
                            gateways=["ns/gw"])
    assert delegates.conflicts(root, HTTPMatchRequest(headers={"x-a": _sm(exact="2")}))
    assert delegates.conflicts(root, HTTPMatchRequest(port=8080))
    assert delegates.conflicts(root, HTTPMatchRequest(ignore_uri_case=True))
    assert delegates.conflicts(root, HTTPMatchRequest(source_labels={"app": "b"}))
    assert delegates.conflicts(root, HTTPMatchRequest(gateways=["ns/other"]))
    assert not delegates.conflicts(root, HTTPMatchRequest(headers={"x-a": _sm(exact="1")}, gateways=["ns/gw"]))


def test_route_merge_inherits_what_the_delegate_leaves_unset() -> None:
    root = HTTPRoute(name="root", match=[HTTPMatchRequest(uri=_sm(prefix="/v2"))], timeout="3s",
                     retries={"attempts": 5})
    sub = HTTPRoute(name="sub", match=[HTTPMatchRequest(uri=_sm(prefix="/v2/x"))], timeout="1s",
                    route=[{"destination": {"host": "a"}}])
    merged = delegates.merge_route(root, sub)
    assert merged is not None and merged.name == "root-sub" and merged.timeout == sub.timeout
    assert merged.retries == root.retries and merged.delegate is None
    assert delegates.merge_route(root, sub.model_copy(update={"match": [HTTPMatchRequest(uri=_sm(prefix="/v3"))]})) \
        is None
    # a delegate route without a match takes the root's matches
    assert delegates.merge_route(root, HTTPRoute(route=[{"destination": {"host": "a"}}])).match == root.match


ROOT = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - name: v2
    match: [{uri: {prefix: /v2}}]
    retries: {attempts: 5}
    delegate: {name: reviews-v2, namespace: team}
  - route: [{destination: {host: reviews, subset: v1}}]
""" + SUBSETS

DELEGATE = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-v2, namespace: team}
spec:
  http:
  - name: exact
    match: [{uri: {exact: /v2/ratings}}]
    timeout: 1s
    route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}}]
  - name: outside
    match: [{uri: {prefix: /v3}}]
    route: [{destination: {host: reviews.shop.svc.cluster.local}}]
  - name: local
    match: [{uri: {prefix: /v2/local}}]
    route: [{destination: {host: reviews}}]
  - name: rest
    route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}, weight: 100}]
"""


def _routes(text: str) -> tuple[list[model.Route], list[str]]:
    mesh = build_mesh(SHOP + text)
    cfg, notes = translate.compile_proxy(mesh, translate.find_proxy(mesh, PRODUCTPAGE))
    vh = by_name(by_name(cfg.route_configs, "9080").virtual_hosts, "reviews.shop.svc.cluster.local:9080")
    return list(vh.routes), [f"{n.code} {n.path} {n.message}" for n in notes]


def test_root_route_is_replaced_by_its_delegates_merged_routes() -> None:
    routes, notes = _routes(ROOT + DELEGATE)
    assert [r.name for r in routes] == ["v2-exact", "v2-local", "v2-rest", ""]
    exact, local, rest, last = routes
    assert exact.match.path == model.StringMatch(model.MatchKind.EXACT, "/v2/ratings")
    assert exact.action.clusters[0].cluster == "outbound|9080|v2|reviews.shop.svc.cluster.local"
    assert exact.action.timeout_ms == 1000 and exact.action.retry.attempts == 5  # its own timeout, the root's retries
    # a short name in the delegate is the delegate namespace's, as Pilot resolves it before merging
    assert local.action.clusters[0].cluster == "outbound|9080||reviews.team.svc.cluster.local"
    assert rest.match.path == model.StringMatch(model.MatchKind.PREFIX, "/v2")  # no match of its own: the root's
    assert last.action.clusters[0].cluster == "outbound|9080|v1|reviews.shop.svc.cluster.local"
    assert exact.source is not None and (exact.source.namespace, exact.source.name) == ("team", "reviews-v2")
    assert last.source is not None and last.source.name == "reviews"
    assert notes == [("MW0405 spec.http[1].match its match falls inside none of the matches of VirtualService "
                      "shop/reviews route 0 that delegates to it; the route is skipped there")]


def test_delegate_not_exported_to_the_roots_namespace_is_skipped() -> None:
    private = DELEGATE.replace("spec:\n  http:", "spec:\n  exportTo: ['.']\n  http:", 1)
    routes, notes = _routes(ROOT + private)
    assert [r.name for r in routes] == [""]
    assert notes == [("MW0405 spec.http[0].delegate delegate VirtualService team/reviews-v2 is not exported to "
                      "namespace shop; the route is skipped")]


def test_delegate_in_the_roots_namespace_by_default() -> None:
    routes, _ = _routes(ROOT.replace("delegate: {name: reviews-v2, namespace: team}", "delegate: {name: reviews-v2}")
                        + DELEGATE.replace("namespace: team", "namespace: shop"))
    assert routes[1].action.clusters[0].cluster == "outbound|9080||reviews.shop.svc.cluster.local"


def test_a_commit_that_changes_only_the_delegate_changes_the_roots_routes(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(SHOP + ROOT)
    delegate = DELEGATE.replace("{host: reviews}}", "{host: reviews.shop.svc.cluster.local}}")  # a host that exists
    (tmp_path / "team.yaml").write_text(delegate)
    parse, check = load.ParseCache(), pipeline.CheckCache()
    first = build_mod.build([tmp_path], parse_cache=parse, check_cache=check)
    before = build_mod.snapshot_for(first, PRODUCTPAGE)
    (tmp_path / "team.yaml").write_text(delegate.replace("timeout: 1s", "timeout: 2s"))
    second = build_mod.build([tmp_path], parse_cache=parse, check_cache=check, previous=first)
    after = build_mod.snapshot_for(second, PRODUCTPAGE)
    fresh = build_mod.build([tmp_path])
    assert after.version == build_mod.snapshot_for(fresh, PRODUCTPAGE).version != before.version
    assert [d.code for d in second.diagnostics] == [d.code for d in fresh.diagnostics] == ["MW0405"]


GATEWAY_ROOT = """
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ingress, namespace: istio-system}
spec: {address: 10.0.9.9, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop-gw, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["shop/shop.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [shop-gw]
  http:
  - match: [{uri: {prefix: /reviews}, gateways: [shop-gw]}]
    delegate: {name: reviews-edge, namespace: team}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-edge, namespace: team}
spec:
  http:
  - match: [{uri: {prefix: /reviews/v2}}]
    route: [{destination: {host: reviews.shop.svc.cluster.local, subset: v2}}]
  - match: [{uri: {prefix: /reviews}, gateways: [shop/other-gw]}]
    route: [{destination: {host: reviews.shop.svc.cluster.local}}]
"""


def test_a_gateway_root_gets_its_delegates_routes_with_the_roots_gateway_match() -> None:
    """The root's match names its gateway by short name, resolved in the root's namespace before merging; a
    delegate match that names another gateway conflicts with it and is left out."""
    mesh = build_mesh(SHOP + ROOT + GATEWAY_ROOT)
    cfg, notes = translate.compile_proxy(mesh, translate.find_proxy(
        mesh, "router~10.0.9.9~ingress.istio-system~istio-system.svc.cluster.local"))
    vh = next(vh for rc in cfg.route_configs for vh in rc.virtual_hosts if "shop.example.com" in vh.domains)
    assert [(r.match.path.value, r.action.clusters[0].cluster) for r in vh.routes] == [
        ("/reviews/v2", "outbound|9080|v2|reviews.shop.svc.cluster.local")]
    assert [n.path for n in notes if n.code == "MW0405"] == ["spec.http[1].match"]
