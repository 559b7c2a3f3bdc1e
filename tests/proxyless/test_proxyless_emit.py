"""The proxyless translate step and emitter, from hand-built sidecar models: what gRPC's xDS client subscribes
(listeners named host:port, RDS outbound|PORT||HOST, EDS clusters, load assignments) and the cuts that keep gRPC
from NACKing (grpc-core xds_cluster_parser / xds_endpoint_parser / xds_route_config_parser)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from compiler import build, emit
from compiler import model as m
from compiler.emit import proxyless
from compiler.emit.filters import cors, fault
from compiler.translate import proxyless as translate_proxyless
from meshxds import consistency
from meshxds import type_urls as T
from meshxds.snapshot import Snapshot
from reconciler.xds.xds_node import Generator, NodeInfo, generator_of

HOST = "reviews.shop.svc.cluster.local"
PROXY = m.Proxy("sidecar~10.0.0.1~productpage-1.shop~shop.svc.cluster.local", m.ProxyKind.SIDECAR, "10.0.0.1",
                "productpage-1", "shop")
DOMAINS = (HOST, f"{HOST}:9080", "reviews", "reviews:9080", "reviews.shop", "reviews.shop:9080", "reviews.shop.svc",
           "reviews.shop.svc:9080")
NAMES = sorted(d for d in DOMAINS if d.endswith(":9080"))
# what translate gives the sidecar's table (no port forms: it ignores the port); gRPC gets DOMAINS back
MODEL_DOMAINS = tuple(d for d in DOMAINS if not d.endswith(":9080"))


def _cluster(name: str, **kw: object) -> m.Cluster:
    return m.Cluster(name=name, discovery=kw.pop("discovery", m.Discovery.EDS), **kw)  # type: ignore[arg-type]


def _forward(*clusters: str, **kw: object) -> m.Forward:
    return m.Forward(tuple(m.WeightedCluster(c, 100 // len(clusters)) for c in clusters), **kw)  # type: ignore[arg-type]


def _route(name: str, action: m.Forward, **kw: object) -> m.Route:
    return m.Route(name=name, match=m.RouteMatch(), action=action, **kw)  # type: ignore[arg-type]


def _http_listener(port: int, route_name: str, direction: m.TrafficDirection = m.TrafficDirection.OUTBOUND
                   ) -> m.Listener:
    chain = m.FilterChain("http", m.HttpFilterChain(f"p{port}", route_name))
    return m.Listener(name=f"0.0.0.0_{port}", address="0.0.0.0", port=port, direction=direction,
                      filter_chains=(chain,))


def sidecar(*clusters: m.Cluster, routes: tuple[m.Route, ...] = (),
            assignments: tuple[m.LoadAssignment, ...] = ()) -> m.ProxyConfig:
    """One outbound HTTP listener on 9080 whose route config holds block_all and the reviews virtual host, one
    inbound listener, one TCP listener; `routes` (default: everything to the first cluster) for reviews."""
    routes = routes or (_route("default", _forward(clusters[0].name)),)
    block = m.Route(name="block_all", match=m.RouteMatch(), action=m.DirectResponse(502))
    vhosts = (m.VirtualHost(name="block_all", host="*", port=9080, domains=("*",), routes=(block,)),
              m.VirtualHost(name=f"{HOST}:9080", host=HOST, port=9080, domains=MODEL_DOMAINS, routes=routes))
    tcp = m.FilterChain("tcp", m.TcpFilterChain("tcp", (m.WeightedCluster("outbound|3306||db.shop", 100),)))
    listeners = (_http_listener(9080, "9080"), _http_listener(9080, "inbound|9080||", m.TrafficDirection.INBOUND),
                 m.Listener(name="0.0.0.0_3306", address="0.0.0.0", port=3306,
                            direction=m.TrafficDirection.OUTBOUND, filter_chains=(tcp,)))
    inbound = m.RouteConfig(name="inbound|9080||", ignore_port=False, virtual_hosts=(
        m.VirtualHost(name="inbound", host="*", port=9080, domains=("*",), routes=routes),))
    outbound = m.RouteConfig(name="9080", virtual_hosts=vhosts, ignore_port=True)
    return m.ProxyConfig(PROXY, listeners=listeners, route_configs=(outbound, inbound),
                         clusters=clusters, load_assignments=assignments)


V1 = f"outbound|9080|v1|{HOST}"
V1_ENDPOINTS = m.LoadAssignment(cluster_name=V1, endpoints=(
    m.Endpoint("10.0.0.21", 9080, weight=2),
    m.Endpoint("10.0.0.22", 9080, weight=3),
    m.Endpoint("10.0.0.21", 9080, weight=7),  # the same address again: gRPC NACKs such an assignment
))


def _snap(cfg: m.ProxyConfig) -> Snapshot:
    snap = proxyless.snapshot(translate_proxyless.grpc_config(cfg))
    assert consistency.check(snap) == []
    return snap


def _names(snap: Snapshot, type_url: str) -> list[str]:
    return list(snap.get(type_url))


def test_listeners_are_named_as_grpc_targets_and_route_over_rds() -> None:
    snap = _snap(sidecar(_cluster(V1), assignments=(V1_ENDPOINTS,)))
    assert _names(snap, T.LISTENER) == NAMES  # no inbound, no TCP, no block_all
    for name in NAMES:
        listener = snap.get(T.LISTENER)[name].message
        assert isinstance(listener, listener_pb2.Listener)
        assert not listener.filter_chains and not listener.HasField("address")
        hcm = hcm_pb2.HttpConnectionManager.FromString(listener.api_listener.api_listener.value)
        assert hcm.rds.route_config_name == f"outbound|9080||{HOST}"
        assert hcm.rds.config_source.HasField("ads")
        assert [f.name for f in hcm.http_filters] == [fault.NAME, "envoy.filters.http.router"]


def test_route_config_holds_only_the_targets_virtual_host() -> None:
    routes = (_route("cors-and-no-retry", _forward(V1, retry=m.RetryPolicy(attempts=0)),
                     cors=m.Cors(allow_methods=("GET",)), fault=m.Fault(abort_grpc_status=14)),
              _route("retry", _forward(V1, retry=m.RetryPolicy(attempts=3))))
    snap = _snap(sidecar(_cluster(V1), routes=routes, assignments=(V1_ENDPOINTS,)))
    assert _names(snap, T.ROUTE) == [f"outbound|9080||{HOST}"]
    rc = snap.get(T.ROUTE)[f"outbound|9080||{HOST}"].message
    assert isinstance(rc, route_pb2.RouteConfiguration)
    assert [(vh.name, list(vh.domains)) for vh in rc.virtual_hosts] == [(f"{HOST}:9080", list(DOMAINS))]
    first, second = rc.virtual_hosts[0].routes
    assert set(first.typed_per_filter_config) == {fault.NAME}  # gRPC has no CORS filter: it would NACK it
    assert cors.NAME not in first.typed_per_filter_config
    assert not first.route.HasField("retry_policy")  # num_retries 0 is a NACK
    assert second.route.retry_policy.num_retries.value == 3


def test_clusters_are_eds_with_policies_grpc_accepts() -> None:
    clusters = (_cluster(V1, lb_policy=m.LbPolicy.LEAST_REQUEST),
                _cluster(f"outbound|9080|v2|{HOST}", lb_policy=m.LbPolicy.MAGLEV, minimum_ring_size=64),
                _cluster(f"outbound|9080|v3|{HOST}", lb_policy=m.LbPolicy.RANDOM),
                _cluster(f"outbound|9080||{HOST}"))  # not routed to: not sent
    routes = (_route("split", _forward(*(c.name for c in clusters[:3]))),)
    snap = _snap(sidecar(*clusters, routes=routes, assignments=(V1_ENDPOINTS,)))
    got = {name: r.message for name, r in snap.get(T.CLUSTER).items()}
    assert sorted(got) == sorted(c.name for c in clusters[:3])
    policies = {name: c.lb_policy for name, c in got.items() if isinstance(c, cluster_pb2.Cluster)}
    assert policies == {V1: cluster_pb2.Cluster.ROUND_ROBIN, f"outbound|9080|v2|{HOST}": cluster_pb2.Cluster.RING_HASH,
                        f"outbound|9080|v3|{HOST}": cluster_pb2.Cluster.ROUND_ROBIN}
    for c in got.values():
        assert isinstance(c, cluster_pb2.Cluster)
        assert c.type == cluster_pb2.Cluster.EDS and c.eds_cluster_config.eds_config.HasField("ads")
    assert sorted(snap.get(T.ENDPOINT)) == sorted(got)  # every EDS cluster has its assignment, empty or not


def test_load_assignments_have_weighted_localities_and_unique_addresses() -> None:
    snap = _snap(sidecar(_cluster(V1), assignments=(V1_ENDPOINTS,)))
    cla = snap.get(T.ENDPOINT)[V1].message
    assert isinstance(cla, endpoint_pb2.ClusterLoadAssignment)
    (locality,) = cla.endpoints
    assert locality.HasField("locality")  # gRPC NACKs a LocalityLbEndpoints without one
    addresses = [(e.endpoint.address.socket_address.address, e.load_balancing_weight.value)
                 for e in locality.lb_endpoints]
    assert addresses == [("10.0.0.21", 2), ("10.0.0.22", 3)]
    assert locality.load_balancing_weight.value == 5  # gRPC ignores a locality without a weight


def test_locality_weights_and_priorities_reach_grpc() -> None:
    """Locality load balancing's weights (distribute) and priorities (failover) are kept: gRPC's xDS client reads
    both (weighted_target, priority)."""
    weighted = m.LoadAssignment(cluster_name=V1, endpoints=(
        m.Endpoint("10.0.0.21", 9080, locality="us/a", locality_weight=80),
        m.Endpoint("10.0.0.22", 9080, locality="eu/b", locality_weight=20, priority=1)))
    cla = _snap(sidecar(_cluster(V1), assignments=(weighted,))).get(T.ENDPOINT)[V1].message
    assert isinstance(cla, endpoint_pb2.ClusterLoadAssignment)
    assert [(g.locality.region, g.load_balancing_weight.value, g.priority) for g in cla.endpoints] == [
        ("eu", 20, 1), ("us", 80, 0)]


def test_clusters_grpc_cannot_reach_as_modelled_are_left_out() -> None:
    tls = m.UpstreamTls(m.TlsMode.SIMPLE, sni=HOST)
    clusters = (_cluster("tls", tls=tls),
                _cluster("passthrough", discovery=m.Discovery.ORIGINAL_DST),
                _cluster("dns-many", discovery=m.Discovery.STRICT_DNS,
                         endpoints=(m.Endpoint("a.example", 443), m.Endpoint("b.example", 443))),
                _cluster("dns-one", discovery=m.Discovery.STRICT_DNS, dns_host="api.example", port=443),
                _cluster("static", discovery=m.Discovery.STATIC, endpoints=(m.Endpoint("10.1.0.1", 80),)))
    routes = tuple(_route(c.name, _forward(c.name)) for c in clusters)
    snap = _snap(sidecar(*clusters, routes=routes))
    got = {name: r.message for name, r in snap.get(T.CLUSTER).items()}
    assert sorted(got) == ["dns-one", "static"]
    dns, static = got["dns-one"], got["static"]
    assert isinstance(dns, cluster_pb2.Cluster) and isinstance(static, cluster_pb2.Cluster)
    assert dns.type == cluster_pb2.Cluster.LOGICAL_DNS
    assert dns.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address == "api.example"
    assert static.type == cluster_pb2.Cluster.EDS  # inline endpoints are served over EDS, the way gRPC takes them
    assert _names(snap, T.ENDPOINT) == ["static"]


def test_targets_come_from_the_virtual_hosts_host_and_port_not_its_name() -> None:
    cfg = sidecar(_cluster(V1), assignments=(V1_ENDPOINTS,))
    table = cfg.route_configs[0]
    block_all, reviews = table.virtual_hosts
    renamed = (dataclasses.replace(block_all, name="block.shop:9080"), dataclasses.replace(reviews, name="reviews"))
    cfg = dataclasses.replace(cfg, route_configs=(dataclasses.replace(table, virtual_hosts=renamed),
                                                  *cfg.route_configs[1:]))
    grpc = translate_proxyless.grpc_config(cfg)
    assert [li.name for li in grpc.listeners] == NAMES  # a catch-all (host "*") is no target, whatever its name
    assert {li.route_config_name for li in grpc.listeners} == {f"outbound|9080||{HOST}"}
    (rc,) = grpc.route_configs
    assert rc.name == f"outbound|9080||{HOST}" and rc.virtual_hosts[0].domains == DOMAINS


def test_grpc_route_configs_match_the_whole_host_and_port() -> None:
    """gRPC matches `host:port` against the domains: translate says the port is not ignored (Pilot: not for
    proxyless gRPC), and emit copies the fact."""
    grpc = translate_proxyless.grpc_config(sidecar(_cluster(V1), assignments=(V1_ENDPOINTS,)))
    assert [rc.ignore_port for rc in grpc.route_configs] == [False]
    name = f"outbound|9080||{HOST}"
    emitted = proxyless.snapshot(grpc).get(T.ROUTE)[name].message
    assert isinstance(emitted, route_pb2.RouteConfiguration) and not emitted.ignore_port_in_host_matching
    flipped = dataclasses.replace(grpc, route_configs=tuple(dataclasses.replace(rc, ignore_port=True)
                                                            for rc in grpc.route_configs))
    emitted = proxyless.snapshot(flipped).get(T.ROUTE)[name].message
    assert isinstance(emitted, route_pb2.RouteConfiguration) and emitted.ignore_port_in_host_matching


def test_load_balancing_is_mapped_in_the_model() -> None:
    clusters = tuple(_cluster(f"outbound|9080|{p.value.lower()}|{HOST}", lb_policy=p) for p in m.LbPolicy)
    routes = (_route("split", _forward(*(c.name for c in clusters))),)
    grpc = translate_proxyless.grpc_config(sidecar(*clusters, routes=routes))
    assert {c.name.split("|")[2]: c.lb_policy for c in grpc.clusters} == {
        "round_robin": m.LbPolicy.ROUND_ROBIN, "least_request": m.LbPolicy.ROUND_ROBIN,
        "random": m.LbPolicy.ROUND_ROBIN, "ring_hash": m.LbPolicy.RING_HASH, "maglev": m.LbPolicy.RING_HASH}
    assert [la.cluster_name for la in grpc.load_assignments] == [c.name for c in grpc.clusters]


def test_node_metadata_picks_the_generator() -> None:
    assert generator_of({"GENERATOR": "grpc"}) is Generator.GRPC
    assert generator_of({}) is Generator.ENVOY
    assert generator_of({"GENERATOR": "api"}) is Generator.ENVOY
    assert NodeInfo(id="x", metadata={"GENERATOR": "grpc", "NAMESPACE": "shop"}).proxyless
    assert not NodeInfo(id="x").proxyless


def test_snapshot_for_gives_grpc_nodes_the_proxyless_shape() -> None:
    result = build.build([Path(__file__).parents[2] / "policies-example"])
    node_id = "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local"
    envoy = build.snapshot_for(result, NodeInfo(id=node_id))
    grpc = build.snapshot_for(result, NodeInfo(id=node_id, metadata={"GENERATOR": "grpc"}))
    assert envoy.version == emit.snapshot(build.proxy_config(result, node_id)).version
    assert "reviews.bookinfo.svc.cluster.local:9080" in grpc.get(T.LISTENER)
    assert "reviews:9080" in grpc.get(T.LISTENER)
    assert "outbound|9080||reviews.bookinfo.svc.cluster.local" in grpc.get(T.ROUTE)
    assert not set(grpc.get(T.LISTENER)) & set(envoy.get(T.LISTENER))
