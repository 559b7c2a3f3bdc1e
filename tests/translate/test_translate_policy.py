"""DestinationRule -> cluster settings: merging across rules, subset and port-level overrides, TLS, hashing."""

from __future__ import annotations

from translate_harness import PRODUCTPAGE, REVIEWS, SHOP, build_mesh, by_name, config_for

from compiler import model, translate

RULES = """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a-reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 10, maxRetries: 4, idleTimeout: 30s}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 50}
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: X-User, ringHash: {minimumRingSize: 1024}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b-reviews, namespace: shop}
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - {name: v1, labels: {version: v2}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
"""


PORT_LEVEL = RULES.replace("""    tls: {mode: ISTIO_MUTUAL}
  subsets:""", """    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: RANDOM}
  subsets:""")


def test_port_level_settings_replace_the_four_policies() -> None:
    cfg = config_for(SHOP + PORT_LEVEL, PRODUCTPAGE)
    cluster = by_name(cfg.clusters, REVIEWS)
    assert cluster.lb_policy is model.LbPolicy.RANDOM
    # connection pool, outlier detection and TLS fall back to defaults, not to the top level (Istio)
    assert cluster.circuit_breakers == model.CircuitBreakers(4_294_967_295, 4_294_967_295, 4_294_967_295,
                                                             4_294_967_295)
    assert cluster.outlier is None and cluster.tls is None
    assert cluster.tcp.connect_timeout_ms == 10_000
    # the subset starts from the port-level result, then overrides its load balancer only
    v1 = by_name(cfg.clusters, "outbound|9080|v1|reviews.shop.svc.cluster.local")
    assert v1.lb_policy is model.LbPolicy.RING_HASH and v1.tls is None and v1.outlier is None


def test_without_rules_istio_defaults() -> None:
    cluster = by_name(config_for(SHOP, PRODUCTPAGE).clusters, REVIEWS)
    assert cluster.lb_policy is model.LbPolicy.LEAST_REQUEST and cluster.tls is None and cluster.outlier is None
    assert cluster.http == model.HttpOptions() and cluster.circuit_breakers is not None
    assert cluster.circuit_breakers.max_retries == 4_294_967_295


def test_subset_overrides_field_by_field_and_rules_merge() -> None:
    cfg = config_for(SHOP + RULES, PRODUCTPAGE)
    v1 = by_name(cfg.clusters, "outbound|9080|v1|reviews.shop.svc.cluster.local")
    assert (v1.lb_policy, v1.minimum_ring_size) == (model.LbPolicy.RING_HASH, 1024)
    assert v1.circuit_breakers is not None and v1.circuit_breakers.max_connections == 100
    assert v1.circuit_breakers.max_pending_requests == 10 and v1.circuit_breakers.max_retries == 4
    assert v1.tcp.connect_timeout_ms == 250 and v1.http == model.HttpOptions(idle_timeout_ms=30_000)
    assert v1.outlier == model.OutlierDetection(consecutive_5xx=7, interval_ms=5000, base_ejection_time_ms=30_000,
                                                max_ejection_percent=50)
    assert v1.tls is not None and v1.tls.mode is model.TlsMode.ISTIO_MUTUAL
    assert (v1.tls.credential_secret, v1.tls.ca_secret) == ("default", "ROOTCA")
    assert v1.tls.sni == "outbound_.9080_.v1_.reviews.shop.svc.cluster.local"
    # the second rule's v1 is ignored (first wins), its v2 is appended; the first rule's policy wins
    assert by_name(cfg.load_assignments, v1.name).endpoints[0].address == "10.0.0.1"
    assert by_name(cfg.load_assignments, "outbound|9080|v2|reviews.shop.svc.cluster.local").endpoints[0].address == (
        "10.0.0.2")
    assert {s.name for s in v1.sources} == {"reviews", "a-reviews", "b-reviews"}


def test_consistent_hash_becomes_a_route_hash_policy() -> None:
    cfg = config_for(SHOP + RULES, PRODUCTPAGE)
    vh = by_name(by_name(cfg.route_configs, "9080").virtual_hosts, "reviews.shop.svc.cluster.local:9080")
    assert vh.routes[0].action.hash_policies == (model.HashPolicy(header="x-user"),)


def test_simple_tls_to_external_service() -> None:
    external = """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}, {number: 8443, name: grpc, protocol: GRPC}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec:
  host: api.example.com
  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, subjectAltNames: [api.example.com]}
"""
    cfg = config_for(SHOP + external, PRODUCTPAGE)
    https = by_name(cfg.clusters, "outbound|443||api.example.com")
    assert https.discovery is model.Discovery.STRICT_DNS
    assert https.endpoints == (model.Endpoint("api.example.com", 443),) and https.dns_host == "api.example.com"
    assert https.tls == model.UpstreamTls(model.TlsMode.SIMPLE, sni="api.example.com",
                                          subject_alt_names=("api.example.com",), ca_certificates="/etc/ca.pem")
    grpc = by_name(cfg.clusters, "outbound|8443||api.example.com")
    assert grpc.tls is not None and grpc.tls.alpn == ("h2",) and grpc.http == model.HttpOptions(http2=True)


EGRESS = """
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: egress, namespace: istio-system}
spec: {address: 10.0.9.8, labels: {istio: egressgateway}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-mtls, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    portLevelSettings:
    - port: {number: 9080}
      tls: {mode: MUTUAL, credentialName: client, sni: reviews.example.com}
"""
ROUTER = "router~10.0.9.8~egress.istio-system~istio-system.svc.cluster.local"


def test_a_credential_without_workload_selector_is_used_by_gateways_only() -> None:
    """Pilot's buildUpstreamClusterTLSContext: the sidecars a rule without workloadSelector applies to get no TLS
    for its credentialName (a sidecar lacking the Secret would be held up), gateways use it; a selected rule gives
    it to its sidecars. Gateways and sidecars of one revision share cluster results otherwise: either order."""
    for order in ((ROUTER, PRODUCTPAGE), (PRODUCTPAGE, ROUTER)):
        mesh = build_mesh(SHOP + EGRESS)
        tls = {node: by_name(translate.proxy_config(mesh, translate.find_proxy(mesh, node)).clusters, REVIEWS).tls
               for node in order}
        assert tls[PRODUCTPAGE] is None, "no TLS, and no auto mTLS either: the rule's mode is the user's"
        assert tls[ROUTER] is not None and (tls[ROUTER].mode, tls[ROUTER].credential_secret) == (
            model.TlsMode.MUTUAL, "client")
    selected = EGRESS.replace("  host: reviews\n", "  host: reviews\n  workloadSelector: {matchLabels: {app: productpage}}\n")
    tls = by_name(config_for(SHOP + selected, PRODUCTPAGE).clusters, REVIEWS).tls
    assert tls is not None and tls.credential_secret == "client" and tls.ca_secret == "client-cacert"
