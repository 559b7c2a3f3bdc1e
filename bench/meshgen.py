"""Synthetic meshes for the benchmarks: M services, each with a VirtualService and a DestinationRule.

Shaped like Istio's own load test (istio/tools perf/load): services in namespaces of 20, each with a VirtualService
(header match plus an 80/15/5 split, retries, timeout) and a DestinationRule with 3 subsets; every subset has its
endpoints as WorkloadEntries, so the tree needs no cluster.
"""

from __future__ import annotations

from pathlib import Path

NAMESPACE_SIZE = 20


def _ip(i: int, j: int) -> str:
    n = i * 8 + j
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def service_yaml(i: int, *, ports: int = 2, endpoints_per_subset: int = 1, weights: tuple[int, int, int] = (80, 15, 5)) -> str:
    ns = f"ns{i // NAMESPACE_SIZE}"
    name = f"svc{i}"
    port_lines = "".join(f"  - name: http-{p}\n    port: {8080 + p}\n    targetPort: {8080 + p}\n" for p in range(ports))
    docs = [f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports:
{port_lines}""", f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: {ns}}}
spec:
  hosts: [{name}]
  http:
  - match:
    - headers: {{x-canary: {{exact: "true"}}}}
    route:
    - destination: {{host: {name}, subset: v3, port: {{number: 8080}}}}
  - route:
    - destination: {{host: {name}, subset: v1, port: {{number: 8080}}}}
      weight: {weights[0]}
    - destination: {{host: {name}, subset: v2, port: {{number: 8080}}}}
      weight: {weights[1]}
    - destination: {{host: {name}, subset: v3, port: {{number: 8080}}}}
      weight: {weights[2]}
    timeout: 5s
    retries: {{attempts: 3, perTryTimeout: 1s, retryOn: "5xx,reset"}}
""", f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: {ns}}}
spec:
  host: {name}
  trafficPolicy:
    loadBalancer: {{simple: LEAST_REQUEST}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
  - {{name: v3, labels: {{version: v3}}}}
"""]
    for v in range(3):
        for e in range(endpoints_per_subset):
            docs.append(f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}-v{v + 1}-{e}, namespace: {ns}}}
spec:
  address: {_ip(i, v * endpoints_per_subset + e)}
  labels: {{app: {name}, version: v{v + 1}}}
""")
    return "---\n".join(docs)


def write_mesh(root: Path, services: int, *, endpoints_per_subset: int = 1) -> Path:
    """One file per service under root/<namespace>/; returns root."""
    for i in range(services):
        ns_dir = root / f"ns{i // NAMESPACE_SIZE}"
        ns_dir.mkdir(parents=True, exist_ok=True)
        (ns_dir / f"svc{i}.yaml").write_text(service_yaml(i, endpoints_per_subset=endpoints_per_subset))
    return root


def node_id(i: int) -> str:
    ns = f"ns{i // NAMESPACE_SIZE}"
    return f"sidecar~{_ip(i, 0)}~svc{i}-v1-0.{ns}~{ns}.svc.cluster.local"
