"""Real traffic through a sidecar compiled by meshward: one Envoy, one policy tree with a host per feature (weighted
split, header match, faults, timeouts, retries, rewrite, redirect, outlier detection), real HTTP backends.

The sidecar runs without traffic capture, as policies-example/README.md describes: a Sidecar whose egress listener
has `captureMode: NONE` and `bind: 127.0.0.1`, on the services' port P (Istio fills an HTTP egress listener's route
table only with services that have that port). Each backend binds its own 127.0.x.y address and a free port, named
in its WorkloadEntry (`ports: {http: N}`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import pytest
from traffic_backends import Backend, Behavior, Reply, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

NS = "shop"
NODE = f"sidecar~127.0.9.1~client.{NS}~{NS}.svc.cluster.local"

# backend name -> (address, service it belongs to, version label, behavior)
BACKENDS: dict[str, tuple[str, str, str, Behavior]] = {
    "split-v1": ("127.0.1.1", "split", "v1", Behavior()),
    "split-v2": ("127.0.1.2", "split", "v2", Behavior()),
    "canary-v1": ("127.0.2.1", "canary", "v1", Behavior()),
    "canary-v2": ("127.0.2.2", "canary", "v2", Behavior()),
    "faults": ("127.0.3.1", "faults", "v1", Behavior()),
    "slow": ("127.0.3.2", "slow", "v1", Behavior(delay_s=2.0)),
    "flaky": ("127.0.4.1", "flaky", "v1", Behavior(fail_every=2)),
    "fragile": ("127.0.4.2", "fragile", "v1", Behavior(fail_every=2)),
    "paths": ("127.0.5.1", "paths", "v1", Behavior()),
    "pool-good": ("127.0.6.1", "pool", "v1", Behavior()),
    "pool-bad": ("127.0.6.2", "pool", "v1", Behavior(fail_every=1)),
}


def _service(name: str, port: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {NS}}}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: {port}, targetPort: http}}
"""


def _workload(name: str, address: str, app: str, version: str, port: int) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: {name}, namespace: {NS}}}
spec:
  address: {address}
  labels: {{app: {app}, version: {version}}}
  ports: {{http: {port}}}
"""


def _subsets_rule(host: str, *versions: str, policy: str = "") -> str:
    subsets = "".join(f"  - {{name: {v}, labels: {{version: {v}}}}}\n" for v in versions)
    return f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {host}, namespace: {NS}}}
spec:
  host: {host}
{policy}  subsets:
{subsets}"""


ROUTING = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: split, namespace: shop}
spec:
  hosts: [split]
  http:
  - name: canary-20
    route:
    - destination: {host: split, subset: v1}
      weight: 80
    - destination: {host: split, subset: v2}
      weight: 20
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: canary, namespace: shop}
spec:
  hosts: [canary]
  http:
  - name: testers-v2
    match:
    - headers:
        x-canary: {exact: "yes"}
    route:
    - destination: {host: canary, subset: v2}
  - name: everyone-v1
    route:
    - destination: {host: canary, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: faults, namespace: shop}
spec:
  hosts: [faults]
  http:
  - name: abort
    match:
    - uri: {prefix: /abort}
    fault:
      abort:
        httpStatus: 418
        percentage: {value: 100}
    route:
    - destination: {host: faults}
  - name: delay
    match:
    - uri: {prefix: /delay}
    fault:
      delay:
        fixedDelay: 700ms
        percentage: {value: 100}
    route:
    - destination: {host: faults}
  - name: plain
    route:
    - destination: {host: faults}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: slow, namespace: shop}
spec:
  hosts: [slow]
  http:
  - name: short-timeout
    route:
    - destination: {host: slow}
    timeout: 300ms
    retries: {attempts: 0}
---
# Istio's request-timeouts task in one proxy: `front` has a 300ms timeout and calls `delayed` through `relay`, whose
# endpoint is this sidecar's own egress listener; the second pass (Host rewritten to `delayed`) injects a 1s delay.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: shop}
spec:
  hosts: [front]
  http:
  - name: impatient
    route:
    - destination: {host: relay}
    rewrite: {authority: delayed}
    timeout: 300ms
    retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: delayed, namespace: shop}
spec:
  hosts: [delayed]
  http:
  - name: delay-1s
    fault:
      delay:
        fixedDelay: 1s
        percentage: {value: 100}
    route:
    - destination: {host: faults}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky, namespace: shop}
spec:
  hosts: [flaky]
  http:
  - name: retried
    route:
    - destination: {host: flaky}
    retries:
      attempts: 3
      retryOn: 5xx
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: fragile, namespace: shop}
spec:
  hosts: [fragile]
  http:
  - name: not-retried
    route:
    - destination: {host: fragile}
    retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: paths, namespace: shop}
spec:
  hosts: [paths]
  http:
  - name: rewrite-old
    match:
    - uri: {prefix: /old/}
    rewrite: {uri: /new/}
    route:
    - destination: {host: paths}
  - name: moved
    match:
    - uri: {exact: /moved}
    redirect: {uri: /landing}
  - name: elsewhere
    match:
    - uri: {exact: /elsewhere}
    redirect: {uri: /there, authority: other.example.com, redirectCode: 302}
  - name: plain
    route:
    - destination: {host: paths}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pool, namespace: shop}
spec:
  hosts: [pool]
  http:
  - name: no-retries
    route:
    - destination: {host: pool, subset: v1}
    retries: {attempts: 0}
"""

POOL_POLICY = """  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
"""


def _sidecar(port: int) -> str:
    return f"""apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
  labels: {{istio-injection: enabled}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: {NS}}}
spec:
  address: 127.0.9.1
  labels: {{app: client}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: client, namespace: {NS}}}
spec:
  workloadSelector:
    labels: {{app: client}}
  egress:
  - port: {{number: {port}, protocol: HTTP, name: egress-http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}
"""


def _tree(port: int, backends: dict[str, Backend]) -> dict[str, str]:
    services = sorted({svc for _, svc, _, _ in BACKENDS.values()} | {"front", "delayed", "relay"})
    workloads = [_workload(n, b.address, BACKENDS[n][1], BACKENDS[n][2], b.port) for n, b in backends.items()]
    workloads.append(_workload("relay", "127.0.0.1", "relay", "v1", port))  # the egress listener itself
    rules = [
        _subsets_rule("split", "v1", "v2"),
        _subsets_rule("canary", "v1", "v2"),
        _subsets_rule("pool", "v1", policy=POOL_POLICY),
    ]
    return {
        "mesh.yaml": _sidecar(port),
        "services.yaml": "---\n".join(_service(s, port) for s in services),
        "workloads.yaml": "---\n".join(workloads),
        "destination-rules.yaml": "---\n".join(rules),
        "routing.yaml": ROUTING,
    }


class Mesh:
    """The running sidecar: send requests to its egress listener by Host."""

    def __init__(self, port: int, backends: dict[str, Backend]) -> None:
        self.port = port
        self.backends = backends

    def get(self, host: str, path: str = "/", headers: dict[str, str] | None = None) -> Reply:
        return get(self.port, path, f"{host}:{self.port}", headers)


@pytest.fixture(scope="module")
def mesh(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("sidecar")
    backends = {name: Backend(name, addr, behavior) for name, (addr, _, _, behavior) in BACKENDS.items()}
    with running(backends):
        port, admin = free_port(), free_port()
        tree = write_tree(root / "tree", _tree(port, backends))
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [("127.0.0.1", port)]):
            yield Mesh(port, backends)


def test_weighted_split_80_20(mesh: Mesh) -> None:
    n = 400
    seen = Counter(mesh.get("split").backend for _ in range(n))
    assert set(seen) == {"split-v1", "split-v2"}, seen
    # Envoy draws a random weight per request: the v2 count is binomial(n, 0.2); allow 5 sigma.
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(seen["split-v2"] - n * 0.2) <= 5 * sigma, seen


def test_header_match_routes_to_subset(mesh: Mesh) -> None:
    assert {mesh.get("canary", headers={"x-canary": "yes"}).backend for _ in range(10)} == {"canary-v2"}
    assert {mesh.get("canary", headers={"x-canary": "no"}).backend for _ in range(10)} == {"canary-v1"}
    assert {mesh.get("canary").backend for _ in range(10)} == {"canary-v1"}


def test_abort_fault_returns_configured_status(mesh: Mesh) -> None:
    before = mesh.backends["faults"].requests
    replies = [mesh.get("faults", "/abort/x") for _ in range(5)]
    assert [r.status for r in replies] == [418] * 5
    assert mesh.backends["faults"].requests == before, "an aborted request must never reach the backend"
    assert mesh.get("faults", "/other").status == 200


def test_delay_fault_delays_the_request(mesh: Mesh) -> None:
    plain, delayed = mesh.get("faults", "/plain"), mesh.get("faults", "/delay")
    assert delayed.status == 200 and delayed.backend == "faults"
    assert delayed.elapsed_s >= 0.65 and plain.elapsed_s < 0.5, (plain.elapsed_s, delayed.elapsed_s)


def test_route_timeout_gives_504(mesh: Mesh) -> None:
    reply = mesh.get("slow")
    assert reply.status == 504, reply
    assert reply.elapsed_s < 1.5, "the 300ms route timeout, not the backend's 2s, must end the request"


def test_delay_fault_behind_a_route_timeout_gives_504(mesh: Mesh) -> None:
    """The delay is injected one hop further (as in Istio's request-timeouts task), so the caller's 300ms timeout
    fires; within a single hop Envoy's route timeout starts only after the fault filter's delay."""
    direct = mesh.get("delayed", "/via")
    assert direct.status == 200 and direct.backend == "faults" and direct.elapsed_s >= 0.95, direct
    reply = mesh.get("front", "/via")
    assert reply.status == 504 and 0.25 <= reply.elapsed_s < 0.9, reply


def test_retries_turn_flaky_503s_into_200s(mesh: Mesh) -> None:
    flaky = [mesh.get("flaky").status for _ in range(20)]
    assert flaky == [200] * 20
    assert mesh.backends["flaky"].requests >= 30, "the backend failed every 2nd attempt, so retries happened"
    # control: the same backend behaviour without retries shows its 503s to the caller
    fragile = Counter(mesh.get("fragile").status for _ in range(20))
    assert fragile == {200: 10, 503: 10}, fragile


def test_prefix_rewrite_is_seen_by_backend(mesh: Mesh) -> None:
    reply = mesh.get("paths", "/old/page?q=1")
    assert reply.status == 200 and reply.echo()["path"] == "/new/page?q=1"
    assert mesh.get("paths", "/older").echo()["path"] == "/older", "/old/ must not match /older"


def test_redirects(mesh: Mesh) -> None:
    before = mesh.backends["paths"].requests
    moved = mesh.get("paths", "/moved")
    assert moved.status == 301 and moved.headers["location"] == f"http://paths:{mesh.port}/landing", moved
    elsewhere = mesh.get("paths", "/elsewhere")
    assert elsewhere.status == 302 and elsewhere.headers["location"] == "http://other.example.com/there", (
        elsewhere
    )
    assert mesh.backends["paths"].requests == before, "the proxy itself answers redirects"


def test_outlier_detection_ejects_failing_endpoint(mesh: Mesh) -> None:
    first = [mesh.get("pool") for _ in range(6)]
    assert any(r.status == 503 for r in first), "round robin must have hit the failing endpoint at least once"
    later = [mesh.get("pool") for _ in range(30)]
    assert [(r.status, r.backend) for r in later] == [(200, "pool-good")] * 30
    assert mesh.backends["pool-bad"].requests <= 2, "one 5xx ejects the endpoint (consecutive5xxErrors: 1)"
