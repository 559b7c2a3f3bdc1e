"""Property: on any sequence of edits to a policy tree, a build made from the previous one (as the reconciler makes
it: parse cache, check cache and `previous=`, so the translate carry and the emit memo reuse what they can) gives
every proxy the snapshot a build from scratch gives, byte for byte: each resource's serialization and version, and
each type's version.

test_incremental.py walks one fixed list of edits; here hypothesis draws the edits (a VirtualService route, weight
or header match; a DestinationRule's policy or subsets; a Service's ports or endpoints; a Sidecar's egress hosts; a
Gateway's servers; whole documents added and removed) over a small tree rendered from a plain model, so that
reuse keys are tried on combinations nobody wrote down. Bounded and derandomized for `make test`;
MESHWARD_LONG_FUZZ=1 runs many more random sequences.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import build, load, pipeline

LONG = os.environ.get("MESHWARD_LONG_FUZZ") == "1"
NAMESPACES = ("a", "b")
VERSIONS = ("v1", "v2", "v3")
PORTS = (8080, 9090)
GATEWAY_HOSTS = ("x.example.com", "y.example.com", "*.example.org")
LB = ({"simple": "LEAST_REQUEST"}, {"simple": "ROUND_ROBIN"}, {"consistentHash": {"httpHeaderName": "x-user"}})

Doc = dict[str, Any]


@dataclasses.dataclass
class Tree:
    """The policy tree as plain data: services by name (namespace, ports, endpoints as (version, last octet)),
    their VirtualService routes and DestinationRule, Sidecar egress hosts per namespace, the Gateway's servers
    and which service its VirtualService sends each gateway host to."""

    services: dict[str, Doc]
    routes: dict[str, list[Doc]]
    rules: dict[str, Doc]
    sidecars: dict[str, list[str]]
    servers: list[Doc]
    ingress: dict[str, str]
    hosts: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # a VirtualService's hosts but its own
    next_id: int = 0


def _initial() -> Tree:
    tree = Tree({}, {}, {}, {"a": ["./*", "b/*"]}, [{"port": 8080, "hosts": ["x.example.com"]}], {})
    for i in range(10):  # more than 8 services in view: the sorted tables are patched, not sorted again
        _add_service(tree, NAMESPACES[i % 2] if i < 4 else "a")
    # shapes a commit can reach only in several steps: two ports (routes that take the listener's port), a host
    # without VirtualService (the default route, hashed by its rule), a VirtualService without rule, a
    # VirtualService with a second host
    tree.services["svc1"]["ports"] = [8080, 9090]
    del tree.routes["svc2"]
    tree.rules["svc2"]["lb"] = 2
    del tree.rules["svc3"]
    _drop_subsets(tree, "svc3", None)
    tree.hosts["svc0"] = ["svc0-alias.example.com"]
    tree.ingress["x.example.com"] = "svc0"
    return tree


def _add_service(tree: Tree, ns: str) -> str:
    name = f"svc{tree.next_id}"
    tree.next_id += 1
    tree.services[name] = {"ns": ns, "ports": [8080], "endpoints": [["v1", 1], ["v2", 2]]}
    tree.rules[name] = {"lb": 0, "outlier": 5, "subsets": {"v1": "v1", "v2": "v2"}}
    tree.routes[name] = [{"header": "x-canary", "dests": [["v2", 100]], "timeout": 5},
                         {"header": None, "dests": [["v1", 80], ["v2", 20]], "timeout": 0}]
    return name


# -- rendering ---------------------------------------------------------------------------------------------------


def _host(tree: Tree, name: str) -> str:
    return f"{name}.{tree.services[name]['ns']}.svc.cluster.local"


def _service_docs(tree: Tree, name: str) -> list[Doc]:
    svc = tree.services[name]
    ns, index = svc["ns"], int(name[3:])
    docs: list[Doc] = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                        "spec": {"selector": {"app": name}, "ports": [
                            {"name": f"http-{p}", "port": p, "targetPort": p} for p in svc["ports"]]}}]
    for version, octet in svc["endpoints"]:
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                     "metadata": {"name": f"{name}-{version}-{octet}", "namespace": ns},
                     "spec": {"address": f"10.1.{index}.{octet}", "labels": {"app": name, "version": version}}})
    if name in tree.routes:
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": name, "namespace": ns},
                     "spec": {"hosts": [name, *tree.hosts.get(name, ())], "http": [_http(tree, name, r) for r in tree.routes[name]]}})
    if name in tree.rules:
        rule = tree.rules[name]
        subsets = [{"name": s, "labels": {"version": v}} if isinstance(v, str) else
                   {"name": s, "labels": {"version": v[0]}, "trafficPolicy": {"loadBalancer": LB[v[1]]}}
                   for s, v in rule["subsets"].items()]
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                     "metadata": {"name": name, "namespace": ns},
                     "spec": {"host": name, "trafficPolicy": {
                         "loadBalancer": LB[rule["lb"]], "outlierDetection": {"consecutive5xxErrors": rule["outlier"]}},
                         "subsets": subsets}})
    return docs


def _http(tree: Tree, name: str, route: Doc) -> Doc:
    ports = tree.services[name]["ports"]
    port = {"port": {"number": ports[0]}} if len(ports) > 1 else {}  # a host with several ports must name one
    http: Doc = {"route": [{"destination": {"host": name, **port, **({"subset": s} if s else {})}, "weight": w}
                           for s, w in route["dests"]]}
    match = {**({"headers": {route["header"]: {"exact": "1"}}} if route["header"] else {}),
             **({"port": route["port"]} if route.get("port") else {})}
    if match:
        http["match"] = [match]
    if route["timeout"]:
        http["timeout"] = f"{route['timeout']}s"
    return http


def _gateway_docs(tree: Tree) -> list[Doc]:
    docs: list[Doc] = [{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                        "metadata": {"name": "gw", "namespace": "a"},
                        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
                            {"port": {"number": s["port"], "name": f"http-{i}", "protocol": "HTTP"},
                             "hosts": s["hosts"]} for i, s in enumerate(tree.servers)]}}] if tree.servers else []
    if tree.ingress:
        docs.append({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                     "metadata": {"name": "ingress", "namespace": "a"},
                     "spec": {"hosts": sorted(tree.ingress), "gateways": ["gw"], "http": [
                         {"match": [{"authority": {"exact": h}}], "route": [{"destination": {
                             "host": _host(tree, tree.ingress[h]), "port": {"number": tree.services[tree.ingress[h]][
                                 "ports"][0]}}}]} for h in sorted(tree.ingress)]}})
    return docs


_GATEWAY_WORKLOAD: list[Doc] = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress", "namespace": "istio-system"},
     "spec": {"selector": {"istio": "ingressgateway"}, "ports": [{"name": "http2", "port": 80, "targetPort": 8080}]}},
    {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
     "metadata": {"name": "ingress", "namespace": "istio-system"},
     "spec": {"address": "10.9.0.1", "labels": {"istio": "ingressgateway"}}},
]


def _files(tree: Tree) -> dict[str, list[Doc]]:
    files = {f"{svc['ns']}/{name}.yaml": _service_docs(tree, name) for name, svc in tree.services.items()}
    for ns, hosts in tree.sidecars.items():
        files[f"{ns}/sidecar.yaml"] = [{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
                                        "metadata": {"name": "default", "namespace": ns},
                                        "spec": {"egress": [{"hosts": hosts}]}}]
    files["a/gateway.yaml"] = _gateway_docs(tree)
    files["istio-system/ingress.yaml"] = _GATEWAY_WORKLOAD
    return {path: docs for path, docs in files.items() if docs}


def write(tree: Tree, root: Path) -> None:
    """Rewrites only the files whose text changed and removes the files the tree no longer has, as a checkout does."""
    files = {path: "---\n".join(json.dumps(d, indent=1) + "\n" for d in docs) for path, docs in _files(tree).items()}
    for path in root.rglob("*.yaml"):
        if str(path.relative_to(root)) not in files:
            path.unlink()
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


# -- edits -------------------------------------------------------------------------------------------------------


def _split(draw: st.DataObject, n: int) -> list[int]:
    cuts = sorted(draw.draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1), "cuts"))
    bounds = [0, *cuts, 100]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _subsets(tree: Tree, name: str) -> list[str | None]:
    return [None, *tree.rules[name]["subsets"]] if name in tree.rules else [None]


def _route(tree: Tree, name: str, draw: st.DataObject) -> Doc:
    subsets = draw.draw(st.lists(st.sampled_from(_subsets(tree, name)), min_size=1, max_size=3, unique=True), "dests")
    return {"header": draw.draw(st.sampled_from([None, "x-canary", "x-user"]), "header"),
            "dests": [[s, w] for s, w in zip(subsets, _split(draw, len(subsets)), strict=True)],
            "timeout": draw.draw(st.sampled_from([0, 1, 5]), "timeout"),
            "port": draw.draw(st.sampled_from([None, None, *PORTS]), "port match")}


def edit_route(tree: Tree, name: str, draw: st.DataObject) -> None:
    """Change, add or remove one route of a service's VirtualService (adding the VirtualService when it has
    none, removing it with its last route), or change its other hosts (another service's: it takes that one's
    virtual host)."""
    routes = tree.routes.setdefault(name, [])
    what = draw.draw(st.sampled_from(["change", "weights", "header", "add", "remove", "hosts"]), "route edit")
    if what == "hosts":
        same_ns = sorted(n for n, s in tree.services.items() if n != name and s["ns"] == tree.services[name]["ns"])
        choices = [[], ["alias.example.com"], *([n] for n in same_ns), ["alias.example.com", *same_ns[:1]]]
        tree.hosts[name] = draw.draw(st.sampled_from([c for c in choices if c != tree.hosts.get(name, [])]), "hosts")
        if routes:
            return
    if what == "add" or not routes:
        routes.insert(draw.draw(st.integers(0, len(routes)), "at"), _route(tree, name, draw))
        return
    at = draw.draw(st.integers(0, len(routes) - 1), "route")
    if what == "remove":
        del routes[at]
        if not routes:
            del tree.routes[name]
    elif what == "weights":
        dests = routes[at]["dests"]
        for dest, weight in zip(dests, _split(draw, len(dests)), strict=True):
            dest[1] = weight
    elif what == "header":
        routes[at]["header"] = draw.draw(st.sampled_from([None, "x-canary", "x-user", "x-other"]), "header")
    else:
        routes[at] = _route(tree, name, draw)


def edit_rule(tree: Tree, name: str, draw: st.DataObject) -> None:
    """Change a DestinationRule's policy or a subset (labels, own policy), add or remove a subset, or add or
    remove the rule. Routes to a subset that goes away go to the host instead (as a user would fix them)."""
    what = draw.draw(st.sampled_from(["lb", "outlier", "subset", "add subset", "remove subset", "toggle"]), "rule")
    if what == "toggle" or name not in tree.rules:
        if name in tree.rules:
            del tree.rules[name]
            _drop_subsets(tree, name, None)
        else:
            tree.rules[name] = {"lb": 0, "outlier": 5, "subsets": {"v1": "v1"}}
        return
    rule = tree.rules[name]
    subsets = rule["subsets"]
    if what == "lb":
        rule["lb"] = draw.draw(st.integers(0, len(LB) - 1), "lb")
    elif what == "outlier":
        rule["outlier"] = draw.draw(st.integers(1, 9), "outlier")
    elif what == "add subset" or not subsets:
        subsets[draw.draw(st.sampled_from(["v1", "v2", "v3", "canary"]), "subset")] = draw.draw(
            st.sampled_from(VERSIONS), "labels")
    elif what == "remove subset":
        gone = draw.draw(st.sampled_from(sorted(subsets)), "subset")
        del subsets[gone]
        _drop_subsets(tree, name, gone)
    else:
        sub = draw.draw(st.sampled_from(sorted(subsets)), "subset")
        version = draw.draw(st.sampled_from(VERSIONS), "labels")
        own = draw.draw(st.one_of(st.none(), st.integers(0, len(LB) - 1)), "own lb")
        subsets[sub] = version if own is None else [version, own]


def _drop_subsets(tree: Tree, name: str, gone: str | None) -> None:
    for route in tree.routes.get(name, ()):
        for dest in route["dests"]:
            if gone is None or dest[0] == gone:
                dest[0] = None
        merged: dict[str | None, int] = {}
        for subset, weight in route["dests"]:
            merged[subset] = merged.get(subset, 0) + weight
        route["dests"] = [[s, w] for s, w in merged.items()]


def edit_service(tree: Tree, name: str, draw: st.DataObject) -> None:
    """A Service's ports, an endpoint's address or version, an endpoint added or removed."""
    svc = tree.services[name]
    what = draw.draw(st.sampled_from(["ports", "address", "version", "add endpoint", "remove endpoint"]), "service")
    eps = svc["endpoints"]
    if what == "ports":
        svc["ports"] = draw.draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=2, unique=True), "ports")
    elif what == "add endpoint" or not eps:
        octet = max((e[1] for e in eps), default=0) + 1
        eps.append([draw.draw(st.sampled_from(VERSIONS), "version"), octet])
    elif what == "remove endpoint":
        del eps[draw.draw(st.integers(0, len(eps) - 1), "endpoint")]
    elif what == "address":
        ep = eps[draw.draw(st.integers(0, len(eps) - 1), "endpoint")]
        ep[1] = draw.draw(st.integers(1, 30).filter(lambda o: o not in {e[1] for e in eps}), "octet")
    else:
        eps[draw.draw(st.integers(0, len(eps) - 1), "endpoint")][0] = draw.draw(st.sampled_from(VERSIONS), "version")


def edit_sidecar(tree: Tree, draw: st.DataObject) -> None:
    """A namespace's Sidecar egress hosts (or no Sidecar)."""
    ns = draw.draw(st.sampled_from(NAMESPACES), "namespace")
    mine = sorted(f"./{_host(tree, n)}" for n, s in tree.services.items() if s["ns"] == ns)
    choices = [None, ["./*"], ["./*", "b/*" if ns == "a" else "a/*"], ["*/*"], *([[h] for h in mine[:2]])]
    hosts = draw.draw(st.sampled_from(choices), "egress")
    if hosts is None:
        tree.sidecars.pop(ns, None)
    else:
        tree.sidecars[ns] = hosts


def edit_gateway(tree: Tree, draw: st.DataObject) -> None:
    """The Gateway's servers (hosts, port, added, removed) and where its VirtualService sends a host."""
    what = draw.draw(st.sampled_from(["hosts", "port", "add", "remove", "target"]), "gateway")
    if what == "add" or not tree.servers:
        used = {s["port"] for s in tree.servers}
        free = [p for p in (8080, 8081, 8082) if p not in used]
        if free:
            tree.servers.append({"port": free[0], "hosts": [draw.draw(st.sampled_from(GATEWAY_HOSTS), "host")]})
        return
    at = draw.draw(st.integers(0, len(tree.servers) - 1), "server")
    if what == "remove":
        del tree.servers[at]
    elif what == "hosts":
        tree.servers[at]["hosts"] = draw.draw(st.lists(st.sampled_from(GATEWAY_HOSTS), min_size=1, max_size=2,
                                                       unique=True), "hosts")
    elif what == "port":
        used = {s["port"] for s in tree.servers}
        free = [p for p in (8080, 8081, 8082) if p not in used]
        if free:
            tree.servers[at]["port"] = draw.draw(st.sampled_from(free), "port")
    else:
        host = draw.draw(st.sampled_from(GATEWAY_HOSTS), "host")
        target = draw.draw(st.sampled_from([None, *sorted(tree.services)]), "target")
        if target is None:
            tree.ingress.pop(host, None)
        else:
            tree.ingress[host] = target


def edit_services(tree: Tree, draw: st.DataObject) -> None:
    """A whole service (its Service, endpoints, VirtualService and DestinationRule) added or removed."""
    if len(tree.services) > 1 and draw.draw(st.booleans(), "remove"):
        gone = draw.draw(st.sampled_from(sorted(tree.services)), "service")
        for table in (tree.services, tree.routes, tree.rules, tree.hosts):
            table.pop(gone, None)
        tree.hosts = {n: [h for h in hosts if h != gone] for n, hosts in tree.hosts.items()}
        tree.ingress = {h: t for h, t in tree.ingress.items() if t != gone}
        for ns, hosts in list(tree.sidecars.items()):
            tree.sidecars[ns] = [h for h in hosts if gone not in h] or ["./*"]
    elif len(tree.services) < 14:
        _add_service(tree, draw.draw(st.sampled_from(NAMESPACES), "namespace"))


def edit(tree: Tree, draw: st.DataObject) -> str:
    kind = draw.draw(st.sampled_from(["route", "rule", "service", "sidecar", "gateway", "services"]), "edit")
    name = draw.draw(st.sampled_from(sorted(tree.services)), "of")
    if kind == "route":
        edit_route(tree, name, draw)
    elif kind == "rule":
        edit_rule(tree, name, draw)
    elif kind == "service":
        edit_service(tree, name, draw)
    elif kind == "sidecar":
        edit_sidecar(tree, draw)
    elif kind == "gateway":
        edit_gateway(tree, draw)
    else:
        edit_services(tree, draw)
    return kind


# -- the property ------------------------------------------------------------------------------------------------


def snapshots(result: build.Build) -> dict[str, tuple[dict[str, str], dict[str, dict[str, tuple[bytes, str]]]]]:
    """Every proxy's snapshot: per type, its version and each resource's bytes and version."""
    out = {}
    for proxy in result.proxies():
        snap = build.snapshot_for(result, proxy.node_id)
        out[proxy.node_id] = (dict(snap.versions), {t: {n: (r.serialized, r.version) for n, r in by_name.items()}
                                                    for t, by_name in snap.by_type.items()})
    return out


def _errors(result: build.Build) -> list[str]:
    return [d.render() for d in build.errors(result)]


@pytest.mark.timeout(0 if LONG else 300)  # the long run takes many minutes: no per-test timeout then
@settings(max_examples=500 if LONG else 60, deadline=None, derandomize=not LONG, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_incremental_builds_equal_cold_builds_on_random_edits(data: st.DataObject) -> None:
    tree = _initial()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(tree, root)
        cache, checks = load.ParseCache(), pipeline.CheckCache()
        previous = build.build([root], parse_cache=cache, check_cache=checks)
        assert previous.ok, _errors(previous)
        snapshots(previous)
        done = []
        for _ in range(data.draw(st.integers(1, 16 if LONG else 8), "edits")):
            before = copy.deepcopy(tree)
            done.append(edit(tree, data))
            if tree == before:
                continue
            write(tree, root)
            incremental = build.build([root], parse_cache=cache, check_cache=checks, previous=previous)
            cold = build.build([root])
            assert _errors(incremental) == _errors(cold), done
            if cold.ok:
                assert snapshots(incremental) == snapshots(cold), f"after {done}: incremental differs from cold"
            previous = incremental
