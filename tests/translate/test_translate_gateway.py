"""Gateway (router) translation: listeners per server port, virtual hosts from bound VirtualServices, TLS."""

from __future__ import annotations

from translate_harness import SHOP, build_mesh, by_name, config_for

from compiler import model, translate

GATEWAY = """
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
    hosts: ["shop/bookinfo.example.com"]
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*/redirect.example.com"]
    tls: {httpsRedirect: true}
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
  - port: {number: 9443, name: https-files, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, serverCertificate: /certs/cert.pem, privateKey: /certs/key.pem, caCertificates: /certs/ca.pem}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: shop}
spec:
  hosts: [bookinfo.example.com, redirect.example.com]
  gateways: [shop-gw]
  http:
  - match: [{uri: {prefix: /reviews}, gateways: [shop/shop-gw]}]
    route: [{destination: {host: reviews, port: {number: 9080}}}]
  - route: [{destination: {host: productpage}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: elsewhere, namespace: other}
spec:
  hosts: [bookinfo.example.com]
  gateways: [shop/shop-gw]
  http:
  - route: [{destination: {host: reviews.shop.svc.cluster.local}}]
"""
ROUTER = "router~10.0.9.9~ingress.istio-system~istio-system.svc.cluster.local"


def test_gateway_workload_is_listed_as_router() -> None:
    kinds = {p.name: p.kind for p in translate.proxies(build_mesh(SHOP + GATEWAY))}
    assert kinds["ingress"] is model.ProxyKind.ROUTER and kinds["productpage"] is model.ProxyKind.SIDECAR


def test_http_servers_share_a_route_config_per_port() -> None:
    cfg = config_for(SHOP + GATEWAY, ROUTER)
    listener = by_name(cfg.listeners, "0.0.0.0_8080")
    assert listener.bind_to_port and listener.port == 8080
    rc = by_name(cfg.route_configs, "http.8080")
    vh = by_name(rc.virtual_hosts, "bookinfo.example.com:8080")
    assert vh.domains == ("bookinfo.example.com", "bookinfo.example.com:*")
    # `shop/` in the server host admits only the VirtualServices of namespace shop
    assert [r.action.clusters[0].cluster for r in vh.routes] == [
        "outbound|9080||reviews.shop.svc.cluster.local", "outbound|9080||productpage.shop.svc.cluster.local"]
    assert by_name(rc.virtual_hosts, "redirect.example.com:8080").require_tls


def test_tls_termination_with_credential_name() -> None:
    cfg = config_for(SHOP + GATEWAY, ROUTER)
    (chain,) = by_name(cfg.listeners, "0.0.0.0_8443").filter_chains
    assert chain.server_names == ("bookinfo.example.com",) and chain.transport_protocol == "tls"
    assert chain.tls == model.DownstreamTls(mode="SIMPLE", credential_secret="bookinfo-cert")
    rc_name = "https.8443.https.shop-gw.shop"
    assert chain.filter.route_config_name == rc_name
    assert by_name(by_name(cfg.route_configs, rc_name).virtual_hosts, "bookinfo.example.com:8443").routes


def test_tls_termination_with_files_makes_file_secrets() -> None:
    cfg = config_for(SHOP + GATEWAY, ROUTER)
    (chain,) = by_name(cfg.listeners, "0.0.0.0_9443").filter_chains
    assert chain.server_names == ()  # host "*": no SNI match
    assert chain.tls is not None and chain.tls.credential_secret == "file-cert:/certs/cert.pem~/certs/key.pem"
    assert chain.tls.ca_secret == "file-root:/certs/ca.pem"
    secret = by_name(cfg.secrets, "file-cert:/certs/cert.pem~/certs/key.pem")
    assert (secret.certificate_chain, secret.private_key, secret.inline) == ("/certs/cert.pem", "/certs/key.pem", False)
    # server host "*" serves every host of the VirtualServices bound to the gateway
    rc = by_name(cfg.route_configs, "https.9443.https-files.shop-gw.shop")
    assert [v.name for v in rc.virtual_hosts] == ["bookinfo.example.com:9443", "redirect.example.com:9443"]


def test_server_without_virtual_service_gets_blackhole_vhost() -> None:
    lonely = GATEWAY.replace('hosts: ["*/redirect.example.com"]', 'hosts: ["*/nobody.example.com"]').replace(
        "hosts: [bookinfo.example.com, redirect.example.com]", "hosts: [bookinfo.example.com]").replace(
        "number: 8080", "number: 8081", 1).replace("    tls: {httpsRedirect: true}\n", "", 1)
    cfg = config_for(SHOP + lonely, ROUTER)
    # the servers on 8080 now: nobody.example.com only, which no VirtualService serves
    rc = by_name(cfg.route_configs, "http.8080")
    assert [(v.name, v.domains, v.routes) for v in rc.virtual_hosts] == [("blackhole:8080", ("*",), ())]
    assert by_name(cfg.route_configs, "http.8081").virtual_hosts[0].name == "bookinfo.example.com:8081"


def test_gateway_gets_clusters_for_routed_services() -> None:
    cfg = config_for(SHOP + GATEWAY, ROUTER)
    names = {c.name for c in cfg.clusters}
    assert {"outbound|9080||reviews.shop.svc.cluster.local", "outbound|9080||productpage.shop.svc.cluster.local"} <= names
    assert by_name(cfg.load_assignments, "outbound|9080||productpage.shop.svc.cluster.local").endpoints == (
        model.Endpoint("10.0.0.9", 9081),)


TCP_GATEWAY = """
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ingress, namespace: istio-system}
spec: {address: 10.0.9.9, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 15432, name: tcp, protocol: TCP}
    hosts: ["*"]
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: ["*.example.com"]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: data}
spec:
  hosts: ["*"]
  gateways: [istio-system/edge]
  tcp:
  - match: [{port: 15432}]
    route: [{destination: {host: db, port: {number: 5432}}}]
  tls:
  - match: [{sniHosts: [db.example.com], port: 15443}]
    route: [{destination: {host: db}}]
"""


def test_tcp_and_passthrough_servers() -> None:
    cfg = config_for(SHOP + TCP_GATEWAY, ROUTER)
    (tcp,) = by_name(cfg.listeners, "0.0.0.0_15432").filter_chains
    assert tcp.filter.clusters == (model.WeightedCluster("outbound|5432||db.data.svc.cluster.local", 100),)
    (tls,) = by_name(cfg.listeners, "0.0.0.0_15443").filter_chains
    assert tls.server_names == ("db.example.com",) and tls.transport_protocol == "tls"
    assert tls.filter.clusters[0].cluster == "outbound|5432||db.data.svc.cluster.local"


def test_gateway_tables_ignore_the_port_and_vhosts_know_their_host_and_port() -> None:
    """Pilot's buildGatewayHTTPRouteConfig sets IgnorePortInHostMatching for Envoy gateways as for sidecar
    outbound tables."""
    cfg = config_for(SHOP + GATEWAY, ROUTER)
    assert cfg.route_configs and all(rc.ignore_port for rc in cfg.route_configs)
    vh = by_name(by_name(cfg.route_configs, "http.8080").virtual_hosts, "bookinfo.example.com:8080")
    assert (vh.host, vh.port) == ("bookinfo.example.com", 8080)
