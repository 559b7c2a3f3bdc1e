"""An ingress gateway for the traffic tests: real backends, the policy tree compiled for a router~ node, and the
real Envoy listening on the gateway's own loopback address. Each test module gives its backends and the files of
its tree (which name the port the gateway listens on); this runs them and tears everything down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from traffic_backends import Backend, Reply, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree


@dataclass(frozen=True)
class Gateway:
    address: str
    port: int
    backends: dict[str, Backend]

    def get(self, host: str, path: str = "/") -> Reply:
        return get(self.port, path, host, address=self.address)


@contextmanager
def gateway(envoy_bin: str, root: Path, *, node: str, address: str, backends: Mapping[str, str],
            files: Callable[[int, dict[str, Backend]], dict[str, str]]) -> Iterator[Gateway]:
    """`files(port, backends)`: the tree, for a gateway listening on `port` (chosen free on `address`)."""
    started = {name: Backend(name, addr) for name, addr in backends.items()}
    with running(started):
        port, admin = free_port(address), free_port()
        bootstrap = compile_bootstrap(write_tree(root / "tree", files(port, started)), node,
                                      root / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(address, port)]):
            yield Gateway(address, port, started)


def site_behind(site: Backend, gateway_address: str) -> str:
    """The start of a tree: Service `site` in istio-system served by one backend, and the ingress gateway's
    workload at `gateway_address` (a Gateway selecting `istio: ingressgateway` binds there)."""
    return f"""apiVersion: v1
kind: Service
metadata: {{name: site, namespace: istio-system}}
spec:
  selector: {{app: site}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: site, namespace: istio-system}}
spec:
  address: {site.address}
  labels: {{app: site}}
  ports: {{http: {site.port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec:
  address: {gateway_address}
  labels: {{istio: ingressgateway}}
---
"""


def http_site(site: Backend, gateway_address: str, port: int, *, route_name: str = "") -> str:
    """`site_behind`, plus a Gateway for every host on `port` at `gateway_address` and a VirtualService sending it
    all to `site` (its one route named `route_name` if given): the tree the JWT, JWKS and access-log modules add
    their policy to."""
    named = f"name: {route_name}\n    " if route_name else ""
    return site_behind(site, gateway_address) + f"""apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: http, protocol: HTTP}}
    bind: {gateway_address}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: site, namespace: istio-system}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - {named}route:
    - destination: {{host: site, port: {{number: 80}}}}
---
"""
