"""Real traffic through an ingress gateway compiled by meshward: a router~ node whose Gateway binds its own loopback
address, and VirtualServices bound to that Gateway that route by Host header to real backends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import traffic_gateway
from traffic_backends import Backend
from traffic_gateway import Gateway

pytestmark = pytest.mark.envoy

GW_ADDRESS = "127.0.8.1"
NODE = "router~127.0.8.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
BACKENDS = {"site-a": "127.0.7.1", "site-b": "127.0.7.2", "site-c": "127.0.7.3"}


def _site(name: str, backend: Backend) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: web}}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: web}}
spec:
  address: {backend.address}
  labels: {{app: {name}}}
  ports: {{http: {backend.port}}}
"""


def _gateway(port: int) -> str:
    return f"""apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: web}}
---
apiVersion: v1
kind: Service
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  ports:
  - {{name: http2, port: 80, targetPort: {port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  address: {GW_ADDRESS}
  labels: {{istio: ingressgateway}}
  ports: {{http2: {port}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: web-gateway, namespace: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    bind: {GW_ADDRESS}
    hosts: [a.example.com, b.example.com]
"""


ROUTING = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: web}
spec:
  hosts: [a.example.com]
  gateways: [web-gateway]
  http:
  - route:
    - destination: {host: site-a, port: {number: 80}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: web}
spec:
  hosts: [b.example.com]
  gateways: [web-gateway]
  http:
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: site-b, port: {number: 80}}
---
# Not bound to the gateway (mesh only): the gateway must not serve it.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: c, namespace: web}
spec:
  hosts: [site-c]
  http:
  - route:
    - destination: {host: site-c}
"""


@pytest.fixture(scope="module")
def gateway(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    def files(port: int, backends: dict[str, Backend]) -> dict[str, str]:
        return {"gateway.yaml": _gateway(port),
                "sites.yaml": "---\n".join(_site(n, b) for n, b in backends.items()),
                "routing.yaml": ROUTING}

    with traffic_gateway.gateway(envoy_bin, tmp_path_factory.mktemp("gateway"), node=NODE, address=GW_ADDRESS,
                                 backends=BACKENDS, files=files) as running_gateway:
        yield running_gateway


def test_host_header_picks_the_virtual_service(gateway: Gateway) -> None:
    a, b = gateway.get("a.example.com", "/page"), gateway.get("b.example.com", "/api/items")
    assert (a.status, a.backend, a.echo()["path"]) == (200, "site-a", "/page"), a
    assert (b.status, b.backend, b.echo()["path"]) == (200, "site-b", "/api/items"), b
    assert b.echo()["host"] == "b.example.com", "the gateway forwards the Host it routed on"


def test_host_with_port_matches_too(gateway: Gateway) -> None:
    reply = gateway.get(f"a.example.com:{gateway.port}")
    assert (reply.status, reply.backend) == (200, "site-a"), reply


def test_unknown_host_or_path_is_404(gateway: Gateway) -> None:
    assert gateway.get("unknown.example.com").status == 404
    assert gateway.get("b.example.com", "/other").status == 404, "b only routes /api"
    assert gateway.get("site-c").status == 404, (
        "a VirtualService not bound to the gateway is not served there"
    )
    assert gateway.backends["site-c"].requests == 0
