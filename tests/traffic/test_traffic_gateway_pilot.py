"""Gateway semantics Pilot has, through the real Envoy: the proxy listens on the target port of its Service for a
server on the Service's port (istio-ingressgateway's 80 -> 8080, here 80 -> a free port), httpsRedirect answers
301 for every host of its server (with or without a VirtualService), a TCP server on a port that is already HTTP
is dropped as Pilot's mergeGateways drops it, two VirtualServices on one gateway host share its virtual host
(catch-all last), and a route to an ExternalName Service naming a service of the mesh reaches that service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import traffic_gateway
from traffic_backends import Backend
from traffic_gateway import Gateway

pytestmark = pytest.mark.envoy

GW_ADDRESS = "127.0.8.2"
NODE = "router~127.0.8.2~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
BACKENDS = {"shop": "127.0.7.11", "api": "127.0.7.12", "db": "127.0.7.13"}


def _service(name: str, backend: Backend) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: web}}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 80, targetPort: {backend.port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: web}}
spec:
  address: {backend.address}
  labels: {{app: {name}}}
"""


def _gateway(target_port: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  ports:
  - {{name: http2, port: 80, targetPort: {target_port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  address: {GW_ADDRESS}
  labels: {{istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: public, namespace: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    bind: {GW_ADDRESS}
    hosts: [shop.example.com, alias.example.com]
  - port: {{number: 80, name: http-old, protocol: HTTP}}
    bind: {GW_ADDRESS}
    hosts: [old.example.com, legacy.example.com]
    tls: {{httpsRedirect: true}}
---
# after `public` in Pilot's order: dropped, the port is HTTP already
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: tcp-db, namespace: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: tcp, protocol: TCP}}
    bind: {GW_ADDRESS}
    hosts: [db.example.com]
"""


ROUTING = """apiVersion: v1
kind: Service
metadata: {name: shop-alias, namespace: web}
spec: {type: ExternalName, externalName: shop.web.svc.cluster.local, ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: via-alias, namespace: web}
spec:
  hosts: [alias.example.com]
  gateways: [public]
  http:
  - route:
    - destination: {host: shop-alias, port: {number: 80}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-site, namespace: web}
spec:
  hosts: [shop.example.com, old.example.com]
  gateways: [public]
  http:
  - route:
    - destination: {host: shop}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-api, namespace: web}
spec:
  hosts: [shop.example.com]
  gateways: [public]
  http:
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: api}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: web}
spec:
  hosts: [db.example.com]
  gateways: [tcp-db]
  tcp:
  - route:
    - destination: {host: db}
"""


@pytest.fixture(scope="module")
def gateway(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    def files(port: int, backends: dict[str, Backend]) -> dict[str, str]:
        return {"gateway.yaml": _gateway(port),
                "services.yaml": "---\n".join(_service(n, b) for n, b in backends.items()),
                "routing.yaml": ROUTING}

    with traffic_gateway.gateway(envoy_bin, tmp_path_factory.mktemp("gateway-pilot"), node=NODE, address=GW_ADDRESS,
                                 backends=BACKENDS, files=files) as running_gateway:
        yield running_gateway


def test_server_port_80_is_served_on_the_services_target_port(gateway: Gateway) -> None:
    reply = gateway.get("shop.example.com", "/page")
    assert (reply.status, reply.backend) == (200, "shop"), reply


def test_two_virtual_services_share_the_host_catch_all_last(gateway: Gateway) -> None:
    api = gateway.get("shop.example.com", "/api/items")
    assert (api.status, api.backend) == (200, "api"), "shop-site's catch-all must not hide shop-api's /api"


def test_https_redirect_for_every_host_of_the_server(gateway: Gateway) -> None:
    for host in ("old.example.com", "legacy.example.com"):  # legacy has no VirtualService
        reply = gateway.get(host, "/x")
        assert reply.status == 301, (host, reply)
        assert reply.headers["location"] == f"https://{host}/x", reply.headers


def test_tcp_server_on_an_http_port_is_dropped(gateway: Gateway) -> None:
    reply = gateway.get("db.example.com")
    assert reply.status == 404 and gateway.backends["db"].requests == 0, reply


def test_a_route_to_an_external_name_alias_reaches_the_concrete_service(gateway: Gateway) -> None:
    reply = gateway.get("alias.example.com")
    assert (reply.status, reply.backend) == (200, "shop"), reply
