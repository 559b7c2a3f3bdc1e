"""Sidecar outbound/inbound translation: listeners, route configs, clusters, subsets, scoping, captureMode NONE."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from translate_harness import PRODUCTPAGE, REVIEWS, SHOP, build_mesh, by_name, config_for

from compiler import build as build_mod
from compiler import model, translate

SUBSETS = """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""

SPLIT = SUBSETS + """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match: [{headers: {end-user: {exact: jason}}, uri: {prefix: /api}, withoutHeaders: {x-debug: {}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
  - route: [{destination: {host: reviews, subset: v1}}]
"""


def test_default_route_without_virtual_service() -> None:
    cfg = config_for(SHOP, PRODUCTPAGE)
    rc = by_name(cfg.route_configs, "9080")
    vh = by_name(rc.virtual_hosts, "reviews.shop.svc.cluster.local:9080")
    assert {"reviews", "reviews.shop", "reviews.shop.svc", "reviews.shop.svc.cluster.local"} <= set(vh.domains)
    assert not [d for d in vh.domains if ":" in d], "no port forms: the route config ignores the port, as Pilot's"
    (route,) = vh.routes
    assert route.name == "default"
    assert route.action.clusters == (model.WeightedCluster(REVIEWS, 100),)
    assert route.action.timeout_ms == 0
    assert route.action.retry == model.RetryPolicy(attempts=2)
    assert route.action.retry.retriable_status_codes == ()  # Istio >= 1.24 does not retry 503 by default
    listener = by_name(cfg.listeners, "0.0.0.0_9080")
    assert listener.filter_chains[0].filter.route_config_name == "9080"
    assert listener.bind_to_port is False  # capture-only without a Sidecar saying captureMode NONE


def test_weighted_subsets_and_matches() -> None:
    cfg = config_for(SHOP + SPLIT, PRODUCTPAGE)
    vh = by_name(by_name(cfg.route_configs, "9080").virtual_hosts, "reviews.shop.svc.cluster.local:9080")
    first, split = vh.routes  # the third route follows a catch-all and is dropped, as Pilot does
    assert first.name == "jason"
    assert first.match.path == model.StringMatch(model.MatchKind.PREFIX, "/api")
    assert model.HeaderMatch("end-user", model.StringMatch(model.MatchKind.EXACT, "jason")) in first.match.headers
    assert model.HeaderMatch("x-debug", model.StringMatch(model.MatchKind.PRESENT), invert=True) in first.match.headers
    assert [(w.cluster, w.weight) for w in split.action.clusters] == [
        ("outbound|9080|v1|reviews.shop.svc.cluster.local", 90), ("outbound|9080|v2|reviews.shop.svc.cluster.local", 10)]
    assert split.source is not None and split.source.kind == "VirtualService" and split.source.name == "reviews"


def test_subset_clusters_get_the_endpoints_their_labels_select() -> None:
    cfg = config_for(SHOP + SUBSETS, PRODUCTPAGE)
    names = [c.name for c in cfg.clusters]
    assert "outbound|9080|v1|reviews.shop.svc.cluster.local" in names and REVIEWS in names
    v1 = by_name(cfg.load_assignments, "outbound|9080|v1|reviews.shop.svc.cluster.local")
    assert [(e.address, e.port) for e in v1.endpoints] == [("10.0.0.1", 9080)]
    everything = by_name(cfg.load_assignments, REVIEWS)
    assert [e.address for e in everything.endpoints] == ["10.0.0.1", "10.0.0.2"]
    cluster = by_name(cfg.clusters, REVIEWS)
    assert cluster.discovery is model.Discovery.EDS and cluster.lb_policy is model.LbPolicy.LEAST_REQUEST
    assert {s.kind for s in cluster.sources} == {"Service", "DestinationRule"}


def test_tcp_service_gets_a_tcp_proxy_listener() -> None:
    cfg = config_for(SHOP, PRODUCTPAGE)
    listener = by_name(cfg.listeners, "0.0.0.0_5432")
    (chain,) = listener.filter_chains
    assert isinstance(chain.filter, model.TcpFilterChain)
    assert chain.filter.clusters == (model.WeightedCluster("outbound|5432||db.data.svc.cluster.local", 100),)
    assert by_name(cfg.clusters, "outbound|5432||db.data.svc.cluster.local").http is None


def test_inbound_listener_for_own_service_port() -> None:
    cfg = config_for(SHOP, PRODUCTPAGE)
    inbound = by_name(cfg.clusters, "inbound|9081||")
    assert inbound.discovery is model.Discovery.STATIC
    assert inbound.endpoints == (model.Endpoint("127.0.0.1", 9081),)
    listener = by_name(cfg.listeners, "10.0.0.9_9081")
    assert listener.direction is model.TrafficDirection.INBOUND and not listener.bind_to_port
    rc = by_name(cfg.route_configs, "inbound|9081||")
    assert rc.virtual_hosts[0].routes[0].action.clusters[0].cluster == "inbound|9081||"


CAPTURE_NONE = """
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage, namespace: shop}
spec:
  workloadSelector: {labels: {app: productpage}}
  ingress:
  - port: {number: 19080, protocol: HTTP, name: http}
    bind: 127.0.0.1
    captureMode: NONE
    defaultEndpoint: 127.0.0.1:8080
  egress:
  - port: {number: 9080, protocol: HTTP, name: http}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: [./reviews.shop.svc.cluster.local]
"""


def test_capture_none_binds_egress_and_ingress_where_told() -> None:
    cfg = config_for(SHOP + CAPTURE_NONE, PRODUCTPAGE)
    assert [li.name for li in cfg.listeners] == ["127.0.0.1_19080", "127.0.0.1_9080"]
    egress = by_name(cfg.listeners, "127.0.0.1_9080")
    assert (egress.address, egress.port, egress.bind_to_port) == ("127.0.0.1", 9080, True)
    assert egress.filter_chains[0].filter.route_config_name == "9080"
    ingress = by_name(cfg.listeners, "127.0.0.1_19080")
    assert ingress.bind_to_port and ingress.direction is model.TrafficDirection.INBOUND
    assert by_name(cfg.clusters, "inbound|19080||").endpoints == (model.Endpoint("127.0.0.1", 8080),)
    # scoping: db (other namespace, not imported) is neither routed nor clustered
    assert not any("db.data" in c.name for c in cfg.clusters)
    vhosts = by_name(cfg.route_configs, "9080").virtual_hosts
    assert [v.name for v in vhosts] == ["reviews.shop.svc.cluster.local:9080"]


def test_sidecar_egress_namespace_scoping() -> None:
    sidecar = """
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress: [{hosts: ["data/*"]}]
"""
    cfg = config_for(SHOP + sidecar, PRODUCTPAGE)
    assert {c.service_host for c in cfg.clusters if c.direction is model.TrafficDirection.OUTBOUND} == {
        "db.data.svc.cluster.local"}
    assert [li.name for li in cfg.listeners if li.direction is model.TrafficDirection.OUTBOUND] == ["0.0.0.0_5432"]


def test_export_to_hides_a_service_from_other_namespaces() -> None:
    hidden = SHOP.replace("metadata: {name: db, namespace: data}",
                          "metadata: {name: db, namespace: data, annotations: {networking.istio.io/exportTo: '.'}}")
    cfg = config_for(hidden, PRODUCTPAGE)
    assert not any("db.data" in c.name for c in cfg.clusters)
    mesh = build_mesh(hidden)
    db_proxy = translate.find_proxy(mesh, "sidecar~10.0.1.1~db-0.data~data.svc.cluster.local")
    assert any("db.data" in c.name for c in translate.proxy_config(mesh, db_proxy).clusters)


HTTP_FEATURES = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: example.com, redirectCode: 302}
  - match: [{uri: {regex: "/v[0-9]+/.*"}, method: {exact: POST}, queryParams: {debug: {exact: "1"}}}]
    rewrite: {uri: /, authority: reviews.internal}
    timeout: 3s
    retries: {attempts: 5, perTryTimeout: 500ms, retryOn: "5xx,503,reset"}
    fault:
      delay: {fixedDelay: 2s, percentage: {value: 10}}
      abort: {httpStatus: 503, percentage: {value: 5.5}}
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 25}
    headers:
      request: {set: {x-env: prod}, remove: [x-secret]}
      response: {add: {x-served-by: mesh}}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}]
      allowMethods: [GET, POST]
      maxAge: 24h
    route:
    - destination: {host: reviews, subset: v1}
      headers: {request: {set: {x-subset: v1}}}
  - match: [{port: 8080}]
    directResponse: {status: 418, body: {string: teapot}}
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 0}
"""


def test_http_route_features() -> None:
    cfg = config_for(SHOP + SUBSETS + HTTP_FEATURES, PRODUCTPAGE)
    vh = by_name(by_name(cfg.route_configs, "9080").virtual_hosts, "reviews.shop.svc.cluster.local:9080")
    redirect, rich, last = vh.routes  # the port 8080 match does not apply on port 9080
    assert redirect.action == model.Redirect(path="/new", authority="example.com", response_code=302)
    fwd = rich.action
    assert isinstance(fwd, model.Forward)
    assert fwd.timeout_ms == 3000 and fwd.prefix_rewrite == "/" and fwd.host_rewrite == "reviews.internal"
    assert fwd.retry == model.RetryPolicy(5, 500, "5xx,reset,retriable-status-codes", (503,))
    assert fwd.mirrors == (model.Mirror("outbound|9080|v2|reviews.shop.svc.cluster.local", 25.0),)
    assert fwd.clusters[0].request_headers.set == (("x-subset", "v1"),)
    assert rich.fault == model.Fault(delay_ms=2000, delay_percent=10.0, abort_status=503, abort_percent=5.5)
    assert rich.request_headers == model.HeaderOps(set=(("x-env", "prod"),), remove=("x-secret",))
    assert rich.response_headers.add == (("x-served-by", "mesh"),)
    assert rich.cors is not None and rich.cors.max_age_s == 86400 and rich.cors.allow_methods == ("GET", "POST")
    assert rich.match.path == model.StringMatch(model.MatchKind.REGEX, "/v[0-9]+/.*")
    assert model.HeaderMatch(":method", model.StringMatch(model.MatchKind.EXACT, "POST")) in rich.match.headers
    assert rich.match.query == (model.QueryMatch("debug", model.StringMatch(model.MatchKind.EXACT, "1")),)
    assert last.action.retry is None  # attempts: 0 disables retries
    chain = by_name(cfg.listeners, "0.0.0.0_9080").filter_chains[0].filter
    assert chain.faults and chain.cors


def test_deterministic() -> None:
    text = SHOP + SPLIT
    assert config_for(text, PRODUCTPAGE) == config_for(text, PRODUCTPAGE)
    assert dataclasses.asdict(config_for(text, PRODUCTPAGE)) == dataclasses.asdict(config_for(text, PRODUCTPAGE))


DELEGATING = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /v2}}]
    delegate: {name: reviews-v2, namespace: shop}
  - route: [{destination: {host: reviews}}]
"""


def test_missing_delegate_is_reported_and_its_route_skipped() -> None:
    mesh = build_mesh(SHOP + DELEGATING)
    cfg, notes = translate.compile_proxy(mesh, translate.find_proxy(mesh, PRODUCTPAGE))
    assert [(n.code, n.path) for n in notes] == [("MW0405", "spec.http[0].delegate")]
    vh = by_name(by_name(cfg.route_configs, "9080").virtual_hosts, "reviews.shop.svc.cluster.local:9080")
    assert [r.action.clusters[0].cluster for r in vh.routes] == [REVIEWS]


def test_skipped_routes_are_warnings_of_the_build(tmp_path: Path) -> None:
    """MW0405 reaches `validate`/`compile` output and the reconciler's status once per revision, not per proxy."""
    (tmp_path / "mesh.yaml").write_text(SHOP + DELEGATING)
    result = build_mod.build([tmp_path])
    assert result.ok
    assert [(d.code, d.severity.value, d.path) for d in result.diagnostics if d.code == "MW0405"] == [
        ("MW0405", "warning", "spec.http[0].delegate")]


def test_istio_mutual_is_served(tmp_path: Path) -> None:
    """A rule asking for ISTIO_MUTUAL needs no secret from the control plane (the agent serves the mesh identity):
    no warning, and every proxy's snapshot is consistent."""
    (tmp_path / "mesh.yaml").write_text(SHOP + """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        tls: {mode: ISTIO_MUTUAL}
""")
    result = build_mod.build([tmp_path])
    assert result.ok and not result.diagnostics, [d.render() for d in result.diagnostics]
    mutual = [p for p in result.proxies()
              if any(c.tls for c in build_mod.proxy_config(result, p.node_id).clusters)]
    assert mutual, "the rule's ISTIO_MUTUAL reaches a proxy"
    for proxy in mutual:
        build_mod.snapshot_for(result, proxy.node_id)


def test_unix_and_dns_endpoints_are_left_out_of_eds(tmp_path: Path) -> None:
    """Envoy refuses a load assignment with an address that is not an IP ("malformed IP address"): a unix://
    endpoint is a warning of the build and left out, and a WorkloadEntry known by a DNS name runs no proxy."""
    (tmp_path / "mesh.yaml").write_text(SHOP + """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: local, namespace: shop}
spec:
  hosts: [local.shop.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.9.0.1}, {address: "unix:///var/run/local.sock"}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm, namespace: shop}
spec:
  address: vm.example.com
  labels: {app: reviews, version: v1}
""")
    result = build_mod.build([tmp_path])
    assert result.ok
    assert [d.path for d in result.diagnostics if d.code == "MW0403"] == ["spec.endpoints[1].address"]
    assert "vm" not in {p.name for p in result.proxies()}
    proxy = result.proxies()[0]
    addresses = {e.address for la in build_mod.proxy_config(result, proxy.node_id).load_assignments
                 for e in la.endpoints}
    assert "10.9.0.1" in addresses
    assert not {"unix:///var/run/local.sock", "vm.example.com"} & addresses


TWO_PORTS = """
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{name: http, port: 8080}, {name: http-admin, port: 8081}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec:
  hosts: [api]
  http:
  - match: [{port: 8081, uri: {prefix: /admin}}]
    route: [{destination: {host: api}}]
  - route: [{destination: {host: api}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-api, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: api, port: {number: 8080}}}]
"""


def test_routes_that_depend_on_the_listener_port_are_built_per_port() -> None:
    # built once for all ports unless a match names a port or a destination takes the listener's port
    cfg = config_for(SHOP + TWO_PORTS, PRODUCTPAGE)
    for port in (8080, 8081):
        vh = by_name(by_name(cfg.route_configs, str(port)).virtual_hosts, f"api.shop.svc.cluster.local:{port}")
        clusters = [w.cluster for r in vh.routes for w in r.action.clusters]
        assert clusters == [f"outbound|{port}||api.shop.svc.cluster.local"] * (2 if port == 8081 else 1)
    reviews = by_name(by_name(cfg.route_configs, "9080").virtual_hosts, "reviews.shop.svc.cluster.local:9080")
    assert [w.cluster for r in reviews.routes for w in r.action.clusters] == ["outbound|8080||api.shop.svc.cluster.local"]


def test_outbound_tables_ignore_the_port_and_inbound_tables_do_not() -> None:
    """Pilot's buildSidecarOutboundHTTPRouteConfig sets IgnorePortInHostMatching, the inbound one does not: the
    fact is the model's (RouteConfig.ignore_port), emit copies it."""
    cfg = config_for(SHOP, PRODUCTPAGE)
    assert by_name(cfg.route_configs, "9080").ignore_port
    assert not by_name(cfg.route_configs, "inbound|9081||").ignore_port


def test_virtual_hosts_know_their_host_and_port() -> None:
    cfg = config_for(SHOP, PRODUCTPAGE)
    host = "reviews.shop.svc.cluster.local"
    vh = by_name(by_name(cfg.route_configs, "9080").virtual_hosts, f"{host}:9080")
    assert (vh.host, vh.port) == (host, 9080)
    inbound = by_name(cfg.route_configs, "inbound|9081||").virtual_hosts[0]
    assert (inbound.host, inbound.port) == ("*", 9081)
