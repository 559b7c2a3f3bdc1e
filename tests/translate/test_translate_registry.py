"""Service registry and proxies: node ids, EndpointSlices, ServiceEntries, WorkloadEntry selection, speed."""

from __future__ import annotations

import pytest
from translate_harness import PRODUCTPAGE, SHOP, build_mesh, by_name, config_for

from compiler import model, naming, translate
from compiler.api import kube, workload_entry
from compiler.load import Document
from compiler.resources import Resource, ResourceSet
from compiler.translate import services
from reconciler import gcpause

SLICES = """
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec:
  selector: {app: ratings}
  ports: [{name: grpc-api, port: 9090, targetPort: api}, {name: web, port: 80, appProtocol: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ratings-v1
  namespace: shop
  labels: {kubernetes.io/service-name: ratings, version: v1, endpointslice.kubernetes.io/managed-by: x}
addressType: IPv4
ports: [{name: grpc-api, port: 19090}, {name: web, port: 8080}]
endpoints:
- addresses: [10.1.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: ratings-v1-abc, namespace: shop}
- addresses: [10.1.0.2]
  conditions: {ready: false}
  targetRef: {kind: Pod, name: ratings-v1-def, namespace: shop}
"""


def test_endpoint_slices_give_endpoints_labels_and_proxies() -> None:
    mesh = build_mesh(SLICES)
    (svc,) = mesh.services["ratings.shop.svc.cluster.local"]
    assert [(p.name, p.protocol) for p in svc.ports] == [("grpc-api", model.Protocol.GRPC),
                                                         ("web", model.Protocol.HTTP)]
    (inst,) = svc.instances  # the unready endpoint is left out
    assert inst.ports == ((9090, 19090), (80, 8080))
    assert dict(inst.labels) == {"app": "ratings", "version": "v1"}
    proxy = translate.find_proxy(mesh, "sidecar~10.1.0.1~ratings-v1-abc.shop~shop.svc.cluster.local")
    assert proxy.label_map() == {"app": "ratings", "version": "v1"}
    cfg = translate.proxy_config(mesh, proxy)
    assert by_name(cfg.clusters, "inbound|19090||").http == model.HttpOptions(http2=True)
    assert {li.name for li in cfg.listeners} >= {"10.1.0.1_19090", "10.1.0.1_8080", "0.0.0.0_9090", "0.0.0.0_80"}


def test_find_proxy_by_ip_and_errors() -> None:
    mesh = build_mesh(SHOP)
    by_ip = translate.find_proxy(mesh, "sidecar~10.0.0.9~productpage-7d9f.shop~shop.svc.cluster.local")
    assert by_ip.name == "productpage"
    with pytest.raises(LookupError, match="nobody"):
        translate.find_proxy(mesh, "sidecar~10.9.9.9~nobody.shop~shop.svc.cluster.local")
    with pytest.raises(LookupError, match="4"):
        translate.find_proxy(mesh, "sidecar~10.0.0.9")


def test_node_id_round_trip() -> None:
    text = naming.node_id(model.ProxyKind.ROUTER, "10.0.0.1", "gw", "istio-system")
    assert text == "router~10.0.0.1~gw.istio-system~istio-system.svc.cluster.local"
    parsed = naming.parse_node_id(text)
    assert (parsed.kind, parsed.ip, parsed.name, parsed.namespace) == (model.ProxyKind.ROUTER, "10.0.0.1", "gw",
                                                                      "istio-system")
    assert naming.parse_node_id("sidecar~1.2.3.4~a.b.c~b.svc.cluster.local").name == "a.b"


def test_service_entry_static_endpoints_and_workload_selector() -> None:
    entries = """
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: shop}
spec:
  hosts: [legacy.internal]
  location: MESH_INTERNAL
  ports: [{number: 8000, name: http, protocol: HTTP, targetPort: 18000}]
  resolution: STATIC
  endpoints: [{address: 192.168.0.1, labels: {version: old}}]
  workloadSelector: {labels: {app: legacy}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: legacy-vm, namespace: shop}
spec: {address: 192.168.0.2, labels: {app: legacy}, ports: {http: 28000}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: anything, namespace: shop}
spec:
  hosts: ["*.wild.example"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
"""
    cfg = config_for(SHOP + entries, PRODUCTPAGE)
    cluster = by_name(cfg.clusters, "outbound|8000||legacy.internal")
    assert cluster.discovery is model.Discovery.EDS
    assert by_name(cfg.load_assignments, cluster.name).endpoints == (
        model.Endpoint("192.168.0.1", 18000), model.Endpoint("192.168.0.2", 28000))
    assert by_name(cfg.clusters, "outbound|443||*.wild.example").discovery is model.Discovery.ORIGINAL_DST
    (tls_chain,) = by_name(cfg.listeners, "0.0.0.0_443").filter_chains
    assert tls_chain.server_names == ("*.wild.example",) and tls_chain.transport_protocol == "tls"
    vh = by_name(by_name(cfg.route_configs, "8000").virtual_hosts, "legacy.internal:8000")
    # the absolute form as Pilot adds it; no `:8000` form: the route config ignores the port, as Pilot's
    assert vh.domains == ("legacy.internal", "legacy.internal.")


def test_protocol_from_port_names() -> None:
    assert services.protocol_from_name("http2-x") is model.Protocol.HTTP2
    assert services.protocol_from_name("grpc-web") is model.Protocol.HTTP
    assert services.protocol_from_name("mongo") is model.Protocol.TCP
    assert services.protocol_from_name("metrics") is model.Protocol.UNKNOWN
    assert services.parse_protocol("kubernetes.io/h2c") is model.Protocol.HTTP2


def _many(n: int) -> ResourceSet:
    """Services with one WorkloadEntry each, built directly (typing 20,000 YAML documents is not what is timed)."""
    doc = Document("<bench>", 0, 1, {})
    out = []
    for i in range(n):
        ns, labels = f"ns{i % 50}", {"app": f"svc{i}"}
        spec = kube.ServiceSpec(selector=labels, ports=[kube.ServicePort(name="http", port=8080)])
        out.append(Resource("Service", "v1", f"svc{i}", ns, True, {}, {}, spec, doc))
        entry = workload_entry.WorkloadEntry(address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", labels=labels)
        out.append(Resource("WorkloadEntry", "networking.istio.io/v1", f"svc{i}-0", ns, True, {}, {}, entry, doc))
    return ResourceSet(out)


def test_ten_thousand_services_are_indexed() -> None:
    """How fast is bench/compile.py's to say (`index`): a timed assertion here failed on loaded machines."""
    rset = _many(10_000)
    with gcpause.GcPause().paused():  # as the processes that run the compiler call it
        mesh = translate.index(rset)
    assert len(mesh.services) == 10_000 and len(translate.proxies(mesh)) == 10_000
    assert mesh.services["svc7.ns7.svc.cluster.local"][0].instances[0].address == "10.0.0.7"
