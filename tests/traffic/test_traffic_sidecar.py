"""Real traffic through a sidecar compiled by meshward: one Envoy, one policy tree with a host per feature (weighted
split, header match, faults, timeouts, retries, rewrite, redirect, outlier detection), real HTTP backends.

The sidecar runs without traffic capture, as policies-example/README.md describes: a Sidecar whose egress listener
has `captureMode: NONE` and `bind: 127.0.0.1`, on the services' port P (Istio fills an HTTP egress listener's route
table only with services that have that port). Each backend binds its own 127.0.x.y address and a free port, named
in its WorkloadEntry (`ports: {http: N}`).
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator

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
    "shadow": ("127.0.5.2", "shadow", "v1", Behavior()),
    "flaky-default": ("127.0.4.3", "flaky-default", "v1", Behavior(fail_every=2)),
    "pair-live": ("127.0.4.4", "pair", "v1", Behavior()),
    "sticky-1": ("127.0.6.3", "sticky", "v1", Behavior()),
    "sticky-2": ("127.0.6.4", "sticky", "v1", Behavior()),
    "pool-good": ("127.0.6.1", "pool", "v1", Behavior()),
    "pool-bad": ("127.0.6.2", "pool", "v1", Behavior(fail_every=1)),
    "portal-v1": ("127.0.7.1", "portal", "v1", Behavior()),
    "portal-v2": ("127.0.7.2", "portal", "v2", Behavior()),
}


# services that select another service's workloads (app label), so two routing setups share the same endpoints
SHARED_SELECTORS = {"pair-strict": "pair", "sticky-routed": "sticky"}
DEAD_ADDRESS = "127.0.4.5"  # pair's second endpoint: a port where nothing listens (connection refused)


def _service(name: str, port: int) -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {NS}}}
spec:
  selector: {{app: {SHARED_SELECTORS.get(name, name)}}}
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
    headers:
      request:
        set: {x-routed-by: testers-v2}
      response:
        set: {x-served-subset: v2}
  - name: beta-regex-v2
    match:
    - headers:
        x-user: {regex: "beta-[0-9]+"}
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
  - name: teapot
    match:
    - uri: {exact: /teapot}
    directResponse:
      status: 418
      body: {string: short and stout}
  - name: mirrored
    match:
    - uri: {prefix: /mirrored}
    route:
    - destination: {host: paths}
    mirror: {host: shadow}
    mirrorPercentage: {value: 100}
  - name: plain
    route:
    - destination: {host: paths}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky-default, namespace: shop}
spec:
  hosts: [flaky-default]
  http:
  - name: istio-default-retries
    route:
    - destination: {host: flaky-default}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pair-strict, namespace: shop}
spec:
  hosts: [pair-strict]
  http:
  - name: no-retries
    route:
    - destination: {host: pair-strict}
    retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sticky-routed, namespace: shop}
spec:
  hosts: [sticky-routed]
  http:
  - name: to-subset
    route:
    - destination: {host: sticky-routed, subset: v1}
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

# The root VirtualService hands /team/ to a delegate another namespace owns; the delegate's route outside /team/
# is left out (MW0405), so /elsewhere/ reaches the root's own default route.
DELEGATION = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: portal, namespace: shop}
spec:
  hosts: [portal]
  http:
  - name: team
    match: [{uri: {prefix: /team/}}]
    headers:
      request:
        set: {x-root: "yes"}
    delegate: {name: portal-team, namespace: team}
  - name: default
    route: [{destination: {host: portal, subset: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: portal-team, namespace: team}
spec:
  http:
  - name: beta
    match: [{headers: {x-beta: {exact: "1"}}}]
    route: [{destination: {host: portal.shop.svc.cluster.local, subset: v2}}]
  - name: elsewhere
    match: [{uri: {prefix: /elsewhere/}}]
    route: [{destination: {host: portal.shop.svc.cluster.local, subset: v1}}]
  - name: stable
    route: [{destination: {host: portal.shop.svc.cluster.local, subset: v1}}]
"""

POOL_POLICY = """  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
"""


STICKY_POLICY = """  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
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
    extra = {"front", "delayed", "relay", *SHARED_SELECTORS}
    services = sorted({svc for _, svc, _, _ in BACKENDS.values()} | extra)
    workloads = [_workload(n, b.address, BACKENDS[n][1], BACKENDS[n][2], b.port) for n, b in backends.items()]
    workloads.append(_workload("relay", "127.0.0.1", "relay", "v1", port))  # the egress listener itself
    workloads.append(_workload("pair-dead", DEAD_ADDRESS, "pair", "v1", free_port(DEAD_ADDRESS)))
    rules = [
        _subsets_rule("split", "v1", "v2"),
        _subsets_rule("canary", "v1", "v2"),
        _subsets_rule("portal", "v1", "v2"),
        _subsets_rule("pool", "v1", policy=POOL_POLICY),
        _subsets_rule("sticky", "v1", policy=STICKY_POLICY),
        _subsets_rule("sticky-routed", "v1", policy=STICKY_POLICY),
    ]
    return {
        "mesh.yaml": _sidecar(port),
        "services.yaml": "---\n".join(_service(s, port) for s in services),
        "workloads.yaml": "---\n".join(workloads),
        "destination-rules.yaml": "---\n".join(rules),
        "routing.yaml": ROUTING,
        "team.yaml": DELEGATION,
    }


def _eventually(check: Callable[[], bool], what: str, deadline_s: float = 5.0) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < end, f"not within {deadline_s}s: {what}"
        time.sleep(0.05)


class Mesh:
    """The running sidecar: send requests to its egress listener by Host; read its counters on the admin port."""

    def __init__(self, port: int, admin: int, backends: dict[str, Backend]) -> None:
        self.port = port
        self.admin = admin
        self.backends = backends

    def get(self, host: str, path: str = "/", headers: dict[str, str] | None = None) -> Reply:
        return get(self.port, path, f"{host}:{self.port}", headers)

    def counter(self, suffix: str) -> int:
        """The sum of the counters whose name ends with `suffix` (Envoy's /stats, live values)."""
        url = f"http://127.0.0.1:{self.admin}/stats?filter={suffix}$&format=json"
        with urllib.request.urlopen(url, timeout=5) as response:
            stats = json.load(response)["stats"]
        return sum(int(s["value"]) for s in stats if "value" in s and s["name"].endswith(suffix))


@pytest.fixture(scope="module")
def mesh(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("sidecar")
    backends = {name: Backend(name, addr, behavior) for name, (addr, _, _, behavior) in BACKENDS.items()}
    with running(backends):
        port, admin = free_port(), free_port()
        tree = write_tree(root / "tree", _tree(port, backends))
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [("127.0.0.1", port)]):
            yield Mesh(port, admin, backends)


def test_weighted_split_80_20(mesh: Mesh) -> None:
    n = 400
    seen = Counter(mesh.get("split").backend for _ in range(n))
    assert set(seen) == {"split-v1", "split-v2"}, seen
    # Envoy draws a random weight per request: the v2 count is binomial(n, 0.2); allow 5 sigma.
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(seen["split-v2"] - n * 0.2) <= 5 * sigma, seen


def test_host_forms_reach_the_service(mesh: Mesh) -> None:
    """Short, namespaced and absolute (trailing dot) names, with the listener's port in Host: the route table
    ignores the port, and has the forms Pilot gives a sidecar."""
    for host in ("split", "split.shop", "split.shop.svc", "split.shop.svc.cluster.local",
                 "split.shop.svc.cluster.local."):
        assert mesh.get(host).backend in {"split-v1", "split-v2"}, host


def test_header_match_routes_to_subset(mesh: Mesh) -> None:
    assert {mesh.get("canary", headers={"x-canary": "yes"}).backend for _ in range(10)} == {"canary-v2"}
    assert {mesh.get("canary", headers={"x-canary": "no"}).backend for _ in range(10)} == {"canary-v1"}
    assert {mesh.get("canary").backend for _ in range(10)} == {"canary-v1"}


def test_header_match_regex_and_header_operations(mesh: Mesh) -> None:
    assert mesh.get("canary", headers={"x-user": "beta-42"}).backend == "canary-v2"
    assert mesh.get("canary", headers={"x-user": "beta-x"}).backend == "canary-v1", "regex must match in full"
    tester = mesh.get("canary", headers={"x-canary": "yes"})
    assert tester.echo()["headers"].get("x-routed-by") == "testers-v2", "request header set on the route"
    assert tester.headers.get("x-served-subset") == "v2", "response header set on the route"
    assert "x-served-subset" not in mesh.get("canary").headers


def test_registry_only_blocks_unknown_hosts(mesh: Mesh) -> None:
    # Istio's block_all virtual host answers 502 for a host outside the registry
    assert mesh.get("nowhere.example.com").status == 502


def test_abort_fault_returns_configured_status(mesh: Mesh) -> None:
    before = mesh.backends["faults"].requests
    replies = [mesh.get("faults", "/abort/x") for _ in range(5)]
    assert [r.status for r in replies] == [418] * 5
    assert mesh.backends["faults"].requests == before, "an aborted request must never reach the backend"
    assert mesh.get("faults", "/other").status == 200


DELAYS = ".fault.delays_injected"  # http.<stat prefix>.fault.delays_injected (the fault filter's statistics)


def test_delay_fault_delays_the_request(mesh: Mesh) -> None:
    """The 700ms delay, and on /delay alone: Envoy's fault filter counts the requests it delayed, which a loaded
    machine does not change (it only stretches times, so the time is a lower bound only)."""
    before = mesh.counter(DELAYS)
    plain = mesh.get("faults", "/plain")
    assert plain.status == 200 and mesh.counter(DELAYS) == before, "the route without a fault is not delayed"
    delayed = mesh.get("faults", "/delay")
    assert delayed.status == 200 and delayed.backend == "faults" and mesh.counter(DELAYS) == before + 1
    assert delayed.elapsed_s >= 0.65, delayed


def test_route_timeout_gives_504(mesh: Mesh) -> None:
    reply = mesh.get("slow")
    # the 300ms route timeout ended it: a backend answering after its 2s gives 200 (no upper time bound: load)
    assert reply.status == 504, reply


def test_delay_fault_behind_a_route_timeout_gives_504(mesh: Mesh) -> None:
    """The delay is injected one hop further (as in Istio's request-timeouts task), so the caller's 300ms timeout
    fires; within a single hop Envoy's route timeout starts only after the fault filter's delay."""
    direct = mesh.get("delayed", "/via")
    assert direct.status == 200 and direct.backend == "faults" and direct.elapsed_s >= 0.95, direct
    reply = mesh.get("front", "/via")
    assert reply.status == 504 and reply.elapsed_s >= 0.25, reply  # the 300ms timeout fired, not the 1s delay out


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


def test_istio_default_retries_cover_connect_failures(mesh: Mesh) -> None:
    """A route without `retries` gets Istio's default policy: 2 retries on connect-failure (among others), on
    another host (previous_hosts predicate). `pair` has a live and a dead endpoint."""
    assert [mesh.get("pair").status for _ in range(20)] == [200] * 20
    # control: the same endpoints with retries disabled show the dead one
    assert 503 in {mesh.get("pair-strict").status for _ in range(20)}


def test_istio_default_retries_exclude_503(mesh: Mesh) -> None:
    """Current Istio leaves 503 out of the default retry policy (EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY, default
    true): a route without `retries` shows a backend's 503s to the caller."""
    statuses = Counter(mesh.get("flaky-default").status for _ in range(10))
    assert statuses == {200: 5, 503: 5}, statuses


def test_direct_response(mesh: Mesh) -> None:
    reply = mesh.get("paths", "/teapot")
    assert (reply.status, reply.body) == (418, b"short and stout")


def test_mirror_copies_requests_to_shadow(mesh: Mesh) -> None:
    replies = [mesh.get("paths", f"/mirrored/{i}") for i in range(5)]
    assert {r.backend for r in replies} == {"paths"}, "the caller gets the primary's answer"
    shadow = mesh.backends["shadow"]
    _eventually(lambda: shadow.requests >= 5, "mirrored requests reach the shadow backend")


def _stickiness(mesh: Mesh, host: str) -> dict[str, set[str | None]]:
    users = [f"user-{i}" for i in range(16)]
    return {u: {mesh.get(host, headers={"x-user": u}).backend for _ in range(5)} for u in users}


def _assert_sticky(picks: dict[str, set[str | None]]) -> None:
    assert all(len(backends) == 1 for backends in picks.values()), picks
    # 16 users all hashing to the same one of 2 endpoints: probability 2**-15
    assert set().union(*picks.values()) == {"sticky-1", "sticky-2"}, picks


def test_consistent_hash_on_virtual_service_route(mesh: Mesh) -> None:
    _assert_sticky(_stickiness(mesh, "sticky-routed"))


def test_consistent_hash_on_default_route(mesh: Mesh) -> None:
    _assert_sticky(_stickiness(mesh, "sticky"))


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
    # A worker reports the 5xx and Envoy's main thread ejects the host and tells the workers: on a loaded machine a
    # request can be routed before they know, so wait for the ejection rather than count the requests that raced it.
    _eventually(lambda: mesh.counter("outlier_detection.ejections_active") == 1, "pool-bad ejected", 30)
    assert mesh.counter("outlier_detection.ejections_enforced_consecutive_5xx") == 1, "one 5xx ejects it"
    bad = mesh.backends["pool-bad"].requests
    later = [mesh.get("pool") for _ in range(30)]
    assert [(r.status, r.backend) for r in later] == [(200, "pool-good")] * 30
    assert mesh.backends["pool-bad"].requests == bad, "an ejected endpoint gets no requests"


def test_port_in_host_is_ignored_as_in_istio(mesh: Mesh) -> None:
    reply = get(mesh.port, "/", "canary:1")
    assert (reply.status, reply.backend) == (200, "canary-v1"), reply


def test_delegated_routes_merged_into_the_root(mesh: Mesh) -> None:
    beta = mesh.get("portal", "/team/x", headers={"x-beta": "1"})
    assert beta.backend == "portal-v2" and beta.echo()["headers"].get("x-root") == "yes", "the root's headers kept"
    assert mesh.get("portal", "/team/x").backend == "portal-v1"
    assert mesh.get("portal", "/other").backend == "portal-v2", "outside /team/: the root's own route"
    assert mesh.get("portal", "/elsewhere/x").backend == "portal-v2", "a delegate route outside /team/ is left out"
