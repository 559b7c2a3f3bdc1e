"""Locality load balancing through a real Envoy sidecar in us-east1/us-east1-b: with outlier detection the client's
own zone takes all the traffic and, once it fails, its region's other zone before another region (Istio's default
failover); MeshConfig's `distribute` sends a service's traffic where it says, whatever zone the client is in;
`failoverPriority` prefers the endpoints whose labels agree with the client's, in whatever locality.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import traffic_sidecar
from traffic_backends import Backend, Behavior, Reply, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

NS = "shop"
NODE = f"sidecar~127.0.9.41~client.{NS}~{NS}.svc.cluster.local"
# backend -> (address, service, locality)
BACKENDS = {
    "near": ("127.0.41.1", "failover", "us-east1/us-east1-b"),
    "region": ("127.0.41.2", "failover", "us-east1/us-east1-c"),
    "far": ("127.0.41.3", "failover", "eu-west1/eu-west1-a"),
    "d-near": ("127.0.42.1", "spread", "us-east1/us-east1-b"),
    "d-far": ("127.0.42.3", "spread", "eu-west1/eu-west1-a"),
    "l-other": ("127.0.43.1", "labeled", "us-east1/us-east1-b"),
    "l-same": ("127.0.43.3", "labeled", "eu-west1/eu-west1-a"),
}
VERSIONS = {"l-other": "v2", "l-same": "v1"}  # the client is version v1


def _tree(port: int, backends: dict[str, Backend]) -> dict[str, str]:
    mesh = f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    localityLbSetting:
      distribute:
      - from: us-east1/*
        to: {{"eu-west1/*": 100}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: {NS}}}
spec: {{address: 127.0.9.41, labels: {{app: client, version: v1}}, locality: us-east1/us-east1-b}}
---
{traffic_sidecar.client_egress(NS, port)}apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: failover, namespace: {NS}}}
spec:
  host: failover
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting: {{enabled: true}}
    outlierDetection: {{consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: labeled, namespace: {NS}}}
spec:
  host: labeled
  trafficPolicy:
    loadBalancer: {{localityLbSetting: {{failoverPriority: [version]}}}}
    outlierDetection: {{consecutive5xxErrors: 5}}
"""
    services = "".join(f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {NS}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: {port}, targetPort: http}}]
""" for name in ("failover", "spread", "labeled"))
    workloads = "".join(f"""---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: {NS}}}
spec: {{address: {b.address}, labels: {{app: {BACKENDS[name][1]}, version: {VERSIONS.get(name, "v0")}}},
        ports: {{http: {b.port}}},
        locality: {BACKENDS[name][2]}}}
""" for name, b in backends.items())
    return {"mesh.yaml": mesh + services + workloads}


@pytest.fixture(scope="module")
def sidecar(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, Backend]]]:
    root = tmp_path_factory.mktemp("locality")
    backends = {name: Backend(name, address) for name, (address, _, _) in BACKENDS.items()}
    with running(backends):
        port, admin = free_port(), free_port()
        tree = write_tree(root / "tree", _tree(port, backends))
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [("127.0.0.1", port)]):
            yield port, backends


def _get(port: int, host: str) -> Reply:
    return get(port, "/", f"{host}:{port}")


def test_distribute_sends_the_traffic_where_the_mesh_says(sidecar: tuple[int, dict[str, Backend]]) -> None:
    port, _ = sidecar
    assert Counter(_get(port, "spread").backend for _ in range(30)) == {"d-far": 30}


def test_failover_prefers_the_clients_zone_then_its_region(sidecar: tuple[int, dict[str, Backend]]) -> None:
    port, backends = sidecar
    assert Counter(_get(port, "failover").backend for _ in range(20)) == {"near": 20}
    backends["near"].behavior = Behavior(fail_every=1)  # now every answer of the client's zone is a 503
    for _ in range(3):  # one 5xx ejects it (consecutive5xxErrors: 1); Envoy's retry may already move on
        _get(port, "failover")
    later = [_get(port, "failover") for _ in range(20)]
    assert [(r.status, r.backend) for r in later] == [(200, "region")] * 20
    assert backends["far"].requests == 0


def test_failover_priority_prefers_the_clients_version_over_its_zone(sidecar: tuple[int, dict[str, Backend]]) -> None:
    port, _ = sidecar
    assert Counter(_get(port, "labeled").backend for _ in range(20)) == {"l-same": 20}
