"""Gateway servers as Pilot merges them (pilot/pkg/model/gateway.go mergeGateways, resolvePorts): which port a
server listens on, which of two conflicting servers is kept, and the MW0411 warning for the one dropped."""

from __future__ import annotations

from translate_harness import build_mesh, by_name, config_for

from compiler import translate

WORKLOAD = """
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ingress, namespace: edge}
spec: {address: 10.0.9.9, labels: {istio: ingress}, ports: {http2: 8088}}
---
apiVersion: v1
kind: Service
metadata: {name: ingress, namespace: edge}
spec:
  selector: {istio: ingress}
  ports: [{name: http2, port: 80, targetPort: 8080}]
"""
ROUTES = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sites, namespace: edge}
spec:
  hosts: [a.example.com, b.example.com]
  gateways: [a, b]
  http:
  - route: [{destination: {host: ingress}}]
"""
ROUTER = "router~10.0.9.9~ingress.edge~edge.svc.cluster.local"


def _gateway(name: str, servers: str) -> str:
    return f"""
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: edge}}
spec:
  selector: {{istio: ingress}}
  servers:
{servers}"""


HTTP_A = "  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [a.example.com]}\n"
HTTP_B = "  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [b.example.com]}\n"
HTTPS_A = ("  - {port: {number: 9443, name: https, protocol: HTTPS}, hosts: [\"*/a.example.com\"],\n"
           "     tls: {mode: SIMPLE, credentialName: a-cert}}\n")
HTTPS_A_AGAIN = ("  - {port: {number: 9443, name: https, protocol: HTTPS}, hosts: [a.example.com],\n"
                 "     tls: {mode: SIMPLE, credentialName: other-cert}}\n")
HTTPS_ON_80 = ("  - {port: {number: 80, name: https, protocol: HTTPS}, hosts: [c.example.com],\n"
               "     tls: {mode: SIMPLE, credentialName: c-cert}}\n")


def test_the_endpoint_port_of_the_services_port_is_listened_on() -> None:
    # the WorkloadEntry's named port wins over the Service's targetPort, as an endpoint's port does in Pilot
    cfg = config_for(WORKLOAD + ROUTES + _gateway("a", HTTP_A), ROUTER)
    assert [li.name for li in cfg.listeners] == ["0.0.0.0_8088"]
    assert [rc.name for rc in cfg.route_configs] == ["http.8088"]
    assert by_name(cfg.route_configs[0].virtual_hosts, "a.example.com:80")


def test_http_servers_of_two_gateways_merge_into_one_route_config() -> None:
    cfg = config_for(WORKLOAD + ROUTES + _gateway("a", HTTP_A) + _gateway("b", HTTP_B), ROUTER)
    (rc,) = cfg.route_configs
    assert [vh.name for vh in rc.virtual_hosts] == ["a.example.com:80", "b.example.com:80"]


def test_a_tls_host_served_twice_keeps_the_first_gateways_server() -> None:
    text = WORKLOAD + _gateway("a", HTTPS_A) + _gateway("b", HTTPS_A_AGAIN)
    cfg = config_for(text, ROUTER)
    (chain,) = by_name(cfg.listeners, "0.0.0.0_9443").filter_chains
    assert chain.tls is not None and chain.tls.credential_secret == "a-cert"
    mesh = build_mesh(text)
    (dropped,) = translate.unsupported(mesh)
    assert dropped.code == "MW0411" and "edge/b" in dropped.resource and "Gateway edge/a server 0" in dropped.message
    assert dropped.path == "spec.servers[0]"


def test_https_after_http_on_one_port_is_dropped() -> None:
    text = WORKLOAD + _gateway("a", HTTP_A) + _gateway("b", HTTPS_ON_80)
    cfg = config_for(text, ROUTER)
    (listener,) = cfg.listeners
    assert [c.tls for c in listener.filter_chains] == [None]
    assert [d.code for d in translate.unsupported(build_mesh(text))] == ["MW0411"]


def test_without_a_service_port_the_server_port_is_listened_on() -> None:
    cfg = config_for(WORKLOAD + _gateway("a", HTTPS_A), ROUTER)
    assert [li.name for li in cfg.listeners] == ["0.0.0.0_9443"]
    assert translate.unsupported(build_mesh(WORKLOAD + _gateway("a", HTTP_A))) == []


def test_the_oldest_gateway_wins_then_the_name() -> None:
    older_b = _gateway("b", HTTPS_A_AGAIN).replace(
        "metadata: {name: b, namespace: edge}", "metadata: {name: b, namespace: edge, creationTimestamp: '2024-01-01T00:00:00Z'}")
    newer_a = _gateway("a", HTTPS_A).replace(
        "metadata: {name: a, namespace: edge}", "metadata: {name: a, namespace: edge, creationTimestamp: '2025-01-01T00:00:00Z'}")
    (chain,) = by_name(config_for(WORKLOAD + newer_a + older_b, ROUTER).listeners, "0.0.0.0_9443").filter_chains
    assert chain.tls is not None and chain.tls.credential_secret == "other-cert"
    # without timestamps (Go's zero time for both), the name decides
    (chain,) = by_name(config_for(WORKLOAD + _gateway("b", HTTPS_A_AGAIN) + _gateway("a", HTTPS_A), ROUTER)
                       .listeners, "0.0.0.0_9443").filter_chains
    assert chain.tls is not None and chain.tls.credential_secret == "a-cert"


def test_each_bind_address_gets_its_own_listener_and_route_config() -> None:
    bound = ("  - {port: {number: 80, name: http, protocol: HTTP}, hosts: [b.example.com], bind: 127.0.0.5}\n")
    cfg = config_for(WORKLOAD + ROUTES + _gateway("a", HTTP_A + bound), ROUTER)
    assert [li.name for li in cfg.listeners] == ["0.0.0.0_8088", "127.0.0.5_8088"]
    assert [rc.name for rc in cfg.route_configs] == ["http.8088", "http.8088.127.0.0.5"]
    assert [vh.name for vh in by_name(cfg.route_configs, "http.8088.127.0.0.5").virtual_hosts] == ["b.example.com:80"]
