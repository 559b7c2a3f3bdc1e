"""The tree the push benchmark serves: `meshgen`'s services (VirtualService with a header match and an 80/15/5 split,
retries, timeout; DestinationRule with 3 subsets), 2 endpoints per subset, and optionally a namespace-wide Sidecar
per namespace (egress `./*` only), as Istio's load test (istio/tools perf/load) does for its scoped runs.

Proxies are workloads of the generated services: proxy k is endpoint k // M of service k % M, so P proxies spread
over all services before a second workload of any service connects.
"""

from __future__ import annotations

from pathlib import Path

import meshgen

ENDPOINTS_PER_SUBSET = 2
WORKLOADS_PER_SERVICE = 3 * ENDPOINTS_PER_SUBSET

SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: default, namespace: {ns}}}
spec:
  egress:
  - hosts: ["./*"]
"""


def namespace_of(service: int) -> str:
    return f"ns{service // meshgen.NAMESPACE_SIZE}"


def write(root: Path, services: int, *, scoped: bool) -> Path:
    meshgen.write_mesh(root, services, endpoints_per_subset=ENDPOINTS_PER_SUBSET)
    if scoped:
        for ns in sorted({namespace_of(i) for i in range(services)}):
            (root / ns / "sidecar.yaml").write_text(SIDECAR.format(ns=ns))
    return root


def service_file(root: Path, service: int) -> Path:
    return root / namespace_of(service) / f"svc{service}.yaml"


def set_weights(root: Path, service: int, weights: tuple[int, int, int]) -> None:
    """Rewrite one service's VirtualService split (the benchmark's one-line commit)."""
    path = service_file(root, service)
    path.write_text(meshgen.service_yaml(service, endpoints_per_subset=ENDPOINTS_PER_SUBSET, weights=weights))


def node_id(proxy: int, services: int) -> str:
    """Istio-style node id of proxy `proxy`: a WorkloadEntry of service `proxy % services` (found by IP)."""
    service, workload = proxy % services, (proxy // services) % WORKLOADS_PER_SERVICE
    subset, endpoint = divmod(workload, ENDPOINTS_PER_SUBSET)
    ns = namespace_of(service)
    ip = meshgen._ip(service, workload)
    return f"sidecar~{ip}~svc{service}-v{subset + 1}-{endpoint}.{ns}~{ns}.svc.cluster.local"


def affected(proxies: int, services: int, changed: int, *, scoped: bool) -> list[int]:
    """The proxies that see service `changed`: its namespace when scoped, everyone otherwise."""
    if not scoped:
        return list(range(proxies))
    return [p for p in range(proxies) if namespace_of(p % services) == namespace_of(changed)]
