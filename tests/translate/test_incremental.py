"""A build made from the previous one (`build(previous=...)`: the emit memo and the translate carry) must give
byte-identical snapshots to a build made from scratch, whatever changed; and what did not change must be reused.

Each edit below touches one kind of input the carry keys on (a VirtualService, a DestinationRule's policy and
subsets, a WorkloadEntry's address and labels, a Sidecar, a deleted document, a consistent hash that reaches
routes through a rule lookup), applied in sequence so that reuse spans several generations."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import build, load, pipeline

ROOT = Path(__file__).resolve().parents[2]
NODES = [
    "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local",
    "sidecar~127.0.0.21~reviews-v1.bookinfo~bookinfo.svc.cluster.local",
    "router~127.0.0.10~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
]


def _replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(tree: Path) -> None:
        path = tree / rel
        text = path.read_text()
        assert old in text, f"{rel}: {old!r} not found"
        path.write_text(text.replace(old, new, 1))
    return edit


_EXTRA = """apiVersion: v1
kind: Service
metadata: {name: extra, namespace: bookinfo}
spec:
  selector: {app: extra}
  ports:
  - {name: http, port: 9080, targetPort: 9080}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: extra, namespace: bookinfo}
spec:
  host: extra
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
"""

_DELEGATE = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: other, namespace: bookinfo}
spec:
  http:
  - name: tester
    match: [{headers: {x-tester: {exact: '1'}}}]
    route: [{destination: {host: details, subset: v1}}]
    timeout: 5s
"""

_RIVAL = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-rival, namespace: bookinfo, creationTimestamp: '2020-01-01T00:00:00Z'}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
"""

_AUTHZ = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - to: [{operation: {methods: [GET]}}]
"""

_JWT = """apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: bookinfo}
spec:
  jwtRules:
  - {issuer: a, jwks: '{"keys":[]}'}
"""

_PEER = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bookinfo}
spec:
  mtls: {mode: STRICT}
"""

_MESH = """apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    accessLogFile: /dev/stdout
    outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""

EDITS: list[tuple[str, Callable[[Path], None]]] = [
    ("virtual service weights", _replace("bookinfo/routing/reviews.yaml", "weight: 80", "weight: 60")),
    ("destination rule policy", _replace("bookinfo/destination-rules.yaml", "consecutive5xxErrors: 5",
                                         "consecutive5xxErrors: 7")),
    ("consistent hash reaches the routes", _replace("bookinfo/destination-rules.yaml", "simple: LEAST_REQUEST",
                                                    "consistentHash: {httpHeaderName: x-user}")),
    ("workload address", _replace("bookinfo/workloads.yaml", "address: 127.0.0.22", "address: 127.0.0.29")),
    ("subset labels", _replace("bookinfo/destination-rules.yaml", "version: v2", "version: v3")),
    ("sidecar scope", _replace("bookinfo/sidecars.yaml", "mode: REGISTRY_ONLY", "mode: ALLOW_ANY")),
    ("sidecar ingress only", _replace("bookinfo/sidecars.yaml", "    - ./ratings.bookinfo.svc.cluster.local\n",
                                      "    - ./ratings.bookinfo.svc.cluster.local\n  ingress:\n  - port: {number: "
                                      "9191, protocol: HTTP, name: in}\n    defaultEndpoint: 127.0.0.1:9191\n")),
    ("weights back", _replace("bookinfo/routing/reviews.yaml", "weight: 60", "weight: 80")),
    # the route table is patched only while a changed VirtualService keeps its hosts and keeps having routes (or
    # having none) on the port: each of these must fall back to a rebuild, or patch to the same result
    ("routes to another host", _replace("bookinfo/routing/details.yaml", "host: details\n        subset: v1",
                                        "host: ratings\n        subset: v1")),
    ("no routes left on the port", _replace("bookinfo/routing/details.yaml", "  - name: details-v1\n",
                                            "  - name: details-v1\n    match:\n    - port: 7777\n")),
    ("routes on the port again", _replace("bookinfo/routing/details.yaml", "    match:\n    - port: 7777\n", "")),
    ("another host", _replace("bookinfo/routing/details.yaml", "  - details\n", "  - details\n  - details.example.com\n")),
    ("a delegate the compiler skips", _replace("bookinfo/routing/details.yaml", "  - name: details-v1\n",
                                               "  - name: skipped\n    delegate: {name: other}\n  - name: details-v1\n")),
    # a root's routes change with its delegate: when it appears, changes and goes away
    ("the delegate appears", lambda tree: (tree / "bookinfo/routing/other.yaml").write_text(_DELEGATE)),
    ("the delegate changes", _replace("bookinfo/routing/other.yaml", "exact: '1'", "exact: '2'")),
    ("the delegate goes away", lambda tree: (tree / "bookinfo/routing/other.yaml").unlink()),
    # a service whose definition changed: patched while its host, ports and addresses stay, else rebuilt
    ("service labels only", _replace("bookinfo/services.yaml", "    service: reviews\n", "    service: reviews2\n")),
    ("service target port", _replace("bookinfo/services.yaml", "  selector:\n    app: reviews\n  ports:\n  - name: http\n"
                                     "    port: 9080\n    targetPort: 9080\n", "  selector:\n    app: reviews\n  ports:"
                                     "\n  - name: http\n    port: 9080\n    targetPort: 9081\n")),
    ("service protocol", _replace("bookinfo/services.yaml", "  - name: http\n    port: 9080\n    targetPort: 9081\n",
                                  "  - name: grpc\n    port: 9080\n    targetPort: 9081\n")),
    # a host without VirtualService has the default route, whose hash policy comes from its rule
    ("a service without routes", lambda tree: (tree / "bookinfo/extra.yaml").write_text(_EXTRA)),
    ("its rule hashes", _replace("bookinfo/extra.yaml", "simple: LEAST_REQUEST", "consistentHash: {httpHeaderName: x-u}")),
    ("deleted routing file", lambda tree: (tree / "bookinfo/routing/ratings.yaml").unlink()),
    # a second VirtualService for a host (flagged, served as Pilot: the oldest wins), then the older one
    ("a rival VirtualService", lambda tree: (tree / "bookinfo/routing/rival.yaml").write_text(_RIVAL)),
    # an AuthorizationPolicy reaches the inbound chains of the workloads it selects: added, changed, removed
    ("an authorization policy", lambda tree: (tree / "bookinfo/authz.yaml").write_text(_AUTHZ)),
    ("its rule changes", _replace("bookinfo/authz.yaml", "methods: [GET]", "methods: [POST]")),
    ("it selects no one", _replace("bookinfo/authz.yaml", "app: reviews", "app: nobody")),
    ("the policy goes away", lambda tree: (tree / "bookinfo/authz.yaml").unlink()),
    ("a request authentication", lambda tree: (tree / "bookinfo/jwt.yaml").write_text(_JWT)),
    ("its issuer changes", _replace("bookinfo/jwt.yaml", "issuer: a", "issuer: b")),
    # a PeerAuthentication changes the inbound chains of its namespace's workloads
    ("a peer authentication", lambda tree: (tree / "bookinfo/peer.yaml").write_text(_PEER)),
    ("its mode changes", _replace("bookinfo/peer.yaml", "mode: STRICT", "mode: PERMISSIVE")),
    # auto mTLS toward a workload labelled for it, turned off when its namespace disables mTLS, and on again
    ("a workload takes mTLS", _replace("bookinfo/workloads.yaml", "version: v2", "version: v2\n"
                                       "    security.istio.io/tlsMode: istio")),
    ("its namespace disables mTLS", _replace("bookinfo/peer.yaml", "mode: PERMISSIVE", "mode: DISABLE")),
    ("and enables it again", _replace("bookinfo/peer.yaml", "mode: DISABLE", "mode: STRICT")),
    # MeshConfig reaches every proxy: its access log and outbound policy appear, change and go away
    ("a mesh config", lambda tree: (tree / "istio-system/mesh.yaml").write_text(_MESH)),
    ("its access log encoding", _replace("istio-system/mesh.yaml", "/dev/stdout\n", "/dev/stdout\n"
                                         "    accessLogEncoding: JSON\n")),
    ("its outbound policy", _replace("istio-system/mesh.yaml", "REGISTRY_ONLY", "ALLOW_ANY")),
    ("the mesh config goes away", lambda tree: (tree / "istio-system/mesh.yaml").unlink()),
    ("the rival becomes the older", _replace("bookinfo/routing/reviews.yaml", "  name: reviews\n",
                                             "  name: reviews\n  creationTimestamp: '2021-01-01T00:00:00Z'\n")),
]


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "policies-example", tmp_path / "p")
    return tmp_path / "p"


def _dump(result: build.Build, nodes: list[str] = NODES) -> dict[str, dict[str, dict[str, bytes]]]:
    return {node: {t: {n: r.serialized for n, r in by_name.items()}
                   for t, by_name in build.snapshot_for(result, node).by_type.items()} for node in nodes}


def test_incremental_builds_equal_builds_from_scratch(tree: Path) -> None:
    cache, checks = load.ParseCache(), pipeline.CheckCache()  # as the reconciler builds
    previous = build.build([tree], parse_cache=cache, check_cache=checks)
    assert previous.ok
    _dump(previous)
    for what, edit in EDITS:
        edit(tree)
        incremental = build.build([tree], parse_cache=cache, check_cache=checks, previous=previous)
        scratch = build.build([tree])
        assert incremental.ok and scratch.ok, what
        assert _dump(incremental) == _dump(scratch), f"after {what}: incremental build differs from scratch"
        previous = incremental


def test_unchanged_inputs_are_reused_across_revisions(tree: Path) -> None:
    cache = load.ParseCache()
    first = build.build([tree], parse_cache=cache)
    before = build.snapshot_for(first, NODES[0])
    EDITS[0][1](tree)
    second = build.build([tree], parse_cache=cache, previous=first)
    after = build.snapshot_for(second, NODES[0])
    # the index object of an unchanged service is the one from the previous revision
    host = "details.bookinfo.svc.cluster.local"
    assert second.model.services[host][0] is first.model.services[host][0]
    # clusters did not change: the very same emitted resources and table, not equal copies
    assert after.by_type is not before.by_type
    for name, res in before.get("type.googleapis.com/envoy.config.cluster.v3.Cluster").items():
        assert after.get("type.googleapis.com/envoy.config.cluster.v3.Cluster")[name] is res
    # the changed route table is new
    routes = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    assert after.versions[routes] != before.versions[routes]


def test_a_changed_virtual_service_patches_the_route_table(tree: Path) -> None:
    cache, checks = load.ParseCache(), pipeline.CheckCache()  # unchanged documents keep their objects
    first = build.build([tree], parse_cache=cache, check_cache=checks)
    before = build.proxy_config(first, NODES[0])
    EDITS[0][1](tree)
    second = build.build([tree], parse_cache=cache, check_cache=checks, previous=first)
    after = build.proxy_config(second, NODES[0])
    old, new = ({vh.name: vh for rc in cfg.route_configs if rc.name == "9080" for vh in rc.virtual_hosts}
                for cfg in (before, after))
    assert old.keys() == new.keys()
    changed = {name for name in old if old[name] is not new[name]}
    assert changed == {"reviews.bookinfo.svc.cluster.local:9080"}  # the other virtual hosts are the same objects
    assert old["reviews.bookinfo.svc.cluster.local:9080"] != new["reviews.bookinfo.svc.cluster.local:9080"]


def test_a_failed_build_passes_the_memos_on(tree: Path) -> None:
    cache = load.ParseCache()
    good = build.build([tree], parse_cache=cache)
    bad_file = tree / "bookinfo" / "broken.yaml"
    bad_file.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: 7\n")
    bad = build.build([tree], parse_cache=cache, previous=good)
    assert not bad.ok and bad.carry is good.carry and bad.memo is good.memo
    bad_file.unlink()
    again = build.build([tree], parse_cache=cache, previous=bad)
    host = "details.bookinfo.svc.cluster.local"
    assert again.model.services[host][0] is good.model.services[host][0]


def test_a_larger_mesh_patches_its_tables_to_what_a_scratch_build_gives(tmp_path: Path) -> None:
    """Where one service of many changed, the outbound cluster and load-assignment tables are patched in place
    (bookinfo is too small for that: it sorts again); each edit must still give the scratch build's bytes."""
    sys.path.insert(0, str(ROOT / "bench"))
    import meshgen

    tree = meshgen.write_mesh(tmp_path / "mesh", 40)
    nodes = [meshgen.node_id(0), meshgen.node_id(25)]  # two namespaces
    svc = next(tree.rglob("svc3.yaml"))
    edits = [("endpoint address", "address: 10.0.0.24", "address: 10.0.9.24"),
             ("rule policy", "simple: LEAST_REQUEST", "simple: ROUND_ROBIN"),
             ("subset labels", "{name: v3, labels: {version: v3}}", "{name: v3, labels: {version: v2}}"),
             ("weights", "weight: 80", "weight: 60")]
    cache, checks = load.ParseCache(), pipeline.CheckCache()
    previous = build.build([tree], parse_cache=cache, check_cache=checks)
    _dump(previous, nodes)
    for what, old, new in edits:
        text = svc.read_text()
        assert old in text, what
        svc.write_text(text.replace(old, new, 1))
        incremental = build.build([tree], parse_cache=cache, check_cache=checks, previous=previous)
        scratch = build.build([tree])
        assert incremental.ok and scratch.ok, what
        assert _dump(incremental, nodes) == _dump(scratch, nodes), f"after {what}: incremental build differs"
        previous = incremental


def test_what_a_revision_did_not_need_is_still_reused_by_the_next(tmp_path: Path) -> None:
    """A commit that leaves the clusters alone finds their table whole; the commit after it, changing one rule,
    must still find every other cluster's emitted resource (not re-emit 8 per service)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import meshgen

    tree = meshgen.write_mesh(tmp_path / "mesh", 40)
    node, svc = meshgen.node_id(0), next(tree.rglob("svc3.yaml"))
    cache, checks = load.ParseCache(), pipeline.CheckCache()
    first = build.build([tree], parse_cache=cache, check_cache=checks)
    before = build.snapshot_for(first, node).get("type.googleapis.com/envoy.config.cluster.v3.Cluster")
    result = first
    for old, new in (("weight: 80", "weight: 60"), ("simple: LEAST_REQUEST", "simple: ROUND_ROBIN")):
        svc.write_text(svc.read_text().replace(old, new, 1))
        result = build.build([tree], parse_cache=cache, check_cache=checks, previous=result)
        after = build.snapshot_for(result, node).get("type.googleapis.com/envoy.config.cluster.v3.Cluster")
    untouched = "outbound|8080|v1|svc5.ns0.svc.cluster.local"
    assert after[untouched] is before[untouched]
    assert after["outbound|8080||svc3.ns0.svc.cluster.local"] != before["outbound|8080||svc3.ns0.svc.cluster.local"]


@pytest.mark.parametrize(("case", "node", "old", "new"), [
    ("telemetry-access-log", "sidecar~10.1.0.1~client.app~app.svc.cluster.local",
     "    - name: custom\n    match:\n      mode: SERVER", "    - name: json\n    match:\n      mode: SERVER"),
    ("telemetry-tracing", "sidecar~10.1.0.2~server.app~app.svc.cluster.local",
     "useRequestIdForTraceSampling: false", "useRequestIdForTraceSampling: true"),
])
def test_a_telemetry_change_on_the_server_side_reaches_the_inbound_chains(tmp_path: Path, case: str, node: str,
                                                                         old: str, new: str) -> None:
    """A sidecar's config is reused while the objects it is made of are the same: its Telemetries are among them,
    as a SERVER-mode access log or tracer changes its inbound chains alone."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "tests/golden/cases" / case / "input", tree)
    cache, checks = load.ParseCache(), pipeline.CheckCache()
    previous = build.build([tree], parse_cache=cache, check_cache=checks)
    _dump(previous, [node])
    _replace("mesh.yaml", old, new)(tree)
    incremental = build.build([tree], parse_cache=cache, check_cache=checks, previous=previous)
    assert _dump(incremental, [node]) == _dump(build.build([tree]), [node])


@pytest.mark.parametrize("case", ["authz-policies", "peer-authn-modes", "request-authn-jwt"])
def test_a_sidecar_with_security_policies_is_reused_while_they_are_unchanged(tmp_path: Path, case: str) -> None:
    """The policies selecting a sidecar are among the objects its config is made of, each compared by identity:
    an unchanged revision gives the very same config object back, however many policies select it."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "tests/golden/cases" / case / "input", tree)
    nodes = ["~".join(f.name.removesuffix(".model.json").split("_", 3))
             for f in (ROOT / "tests/golden/cases" / case / "expected").glob("sidecar_*.model.json")]
    cache, checks = load.ParseCache(), pipeline.CheckCache()
    first = build.build([tree], parse_cache=cache, check_cache=checks)
    before = {node: build.proxy_config(first, node) for node in nodes}
    second = build.build([tree], parse_cache=cache, check_cache=checks, previous=first)
    assert nodes and all(build.proxy_config(second, node) is before[node] for node in nodes)


def test_a_changed_authorization_policy_is_not_reused(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "tests/golden/cases/authz-policies/input", tree)
    node = "sidecar~10.1.0.1~web.app~app.svc.cluster.local"
    cache, checks = load.ParseCache(), pipeline.CheckCache()
    previous = build.build([tree], parse_cache=cache, check_cache=checks)
    _dump(previous, [node])
    _replace("mesh.yaml", 'paths: ["/debug/*"]', 'paths: ["/admin/*"]')(tree)
    incremental = build.build([tree], parse_cache=cache, check_cache=checks, previous=previous)
    assert _dump(incremental, [node]) == _dump(build.build([tree]), [node]) != _dump(previous, [node])
