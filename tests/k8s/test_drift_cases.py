"""Drift, one case per kind (reconciler.ops.drift): the served commit's documents, the cluster's objects and the
proxies' sync state in, findings out; nothing drifts when the cluster holds what Git says."""

from __future__ import annotations

from typing import Any

from reconciler.ops import drift
from reconciler.xds.ads_status import SyncState

COMMIT = "a" * 40


def _doc(kind: str, name: str, ns: str = "shop", api: str = "networking.istio.io/v1", **rest: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, **rest}


def _slice(name: str, service: str, *addresses: str) -> dict[str, Any]:
    doc = _doc("EndpointSlice", name, api="discovery.k8s.io/v1", endpoints=[{"addresses": [a]} for a in addresses])
    doc["metadata"]["labels"] = {"kubernetes.io/service-name": service}
    return doc


VIRTUAL_SERVICE = _doc("VirtualService", "web", spec={"hosts": ["web"], "http": [
    {"route": [{"destination": {"host": "ratings.other.svc.cluster.local"}}]},
    {"route": [{"destination": {"host": "api.example.com"}}, {"destination": {"host": "*.wild"}}]}]})
DESTINATION_RULE = _doc("DestinationRule", "reviews", spec={"host": "reviews"})
GIT = [drift.GitDocument(d, "mesh.yaml", i * 10 + 1) for i, d in enumerate([
    _doc("Service", "web", api="v1"), VIRTUAL_SERVICE, DESTINATION_RULE,
    _slice("web-pinned", "web", "10.0.0.1", "10.0.0.2"),
])]
CLUSTER: dict[str, list[dict[str, Any]]] = {
    "Service": [_doc("Service", "web", api="v1"), _doc("Service", "ratings", "other", api="v1"),
                _doc("Service", "reviews", api="v1")],
    "EndpointSlice": [_slice("web-x1", "web", "10.0.0.2"), _slice("web-x2", "web", "10.0.0.1")],
    "VirtualService": [VIRTUAL_SERVICE],  # as Git has them: not drift
    "DestinationRule": [DESTINATION_RULE],
}
SYNCED = [drift.ProxyState("sidecar~10.0.0.1~web.shop~shop.svc.cluster.local", SyncState.SYNCED, COMMIT)]


def _findings(cluster: dict[str, list[dict[str, Any]]] | None = None,
              proxies: list[drift.ProxyState] = SYNCED) -> list[tuple[str, str, str]]:
    found = drift.compare(COMMIT, GIT, CLUSTER if cluster is None else cluster, proxies)
    return [(str(f.kind), f.object, f.detail) for f in found.findings]


def test_in_sync() -> None:
    found = drift.compare(COMMIT, GIT, CLUSTER, SYNCED)
    assert found.in_sync and found.to_json()["counts"] == {str(k): 0 for k in drift.DriftKind}
    assert drift.render(found.to_json()) == f"commit {COMMIT[:12]}, proxies and cluster: in sync\n"


def test_proxies_not_on_the_served_commit() -> None:
    proxies = [drift.ProxyState("a", SyncState.STALE, COMMIT), drift.ProxyState("b", SyncState.NACKED, COMMIT),
               drift.ProxyState("c", SyncState.SYNCED, "b" * 40), drift.ProxyState("d", SyncState.SYNCED, None),
               *SYNCED]
    assert _findings(proxies=proxies) == [
        ("ProxyNotOnServedCommit", "a", "STALE: the served config is not ACKed"),
        ("ProxyNotOnServedCommit", "b", "NACKED: the served config is not ACKed"),
        ("ProxyNotOnServedCommit", "c", f"ACKed commit {'b' * 12}, not {COMMIT[:12]}"),
        ("ProxyNotOnServedCommit", "d", f"ACKed a config this server did not build, not {COMMIT[:12]}")]


def test_services_git_refers_to_and_the_cluster_lacks() -> None:
    cluster = {**CLUSTER, "Service": []}
    assert _findings(cluster) == [
        ("ServiceMissingInCluster", "Service other/ratings", "referred to by VirtualService shop/web (mesh.yaml:11)"),
        ("ServiceMissingInCluster", "Service shop/reviews",
         "referred to by DestinationRule shop/reviews (mesh.yaml:21)"),
        ("ServiceMissingInCluster", "Service shop/web",
         "referred to by Service shop/web (mesh.yaml:1), VirtualService shop/web (mesh.yaml:11)")]


def test_istio_resources_git_does_not_hold() -> None:
    cluster = {**CLUSTER, "AuthorizationPolicy": [_doc("AuthorizationPolicy", "deny", api="security.istio.io/v1")],
               "VirtualService": [*CLUSTER["VirtualService"], _doc("VirtualService", "legacy", "old")]}
    assert [f[:2] for f in _findings(cluster)] == [("IstioResourceNotInGit", "AuthorizationPolicy shop/deny"),
                                                   ("IstioResourceNotInGit", "VirtualService old/legacy")]
    edited = {**CLUSTER, "DestinationRule": [_doc("DestinationRule", "reviews", spec={"host": "reviews.other"})]}
    differs = "its spec in the cluster differs from Git's (mesh.yaml:21), which is what meshward serves"
    assert _findings(edited) == [("IstioResourceNotInGit", "DestinationRule shop/reviews", differs)]


def test_endpoints_git_pins_and_the_cluster_disagrees_with() -> None:
    moved = {**CLUSTER, "EndpointSlice": [_slice("web-x1", "web", "10.0.0.2", "10.0.0.9")]}
    assert _findings(moved) == [("EndpointsDiffer", "Service shop/web",
                                 "Git pins 10.0.0.1, 10.0.0.2; the cluster has 10.0.0.2, 10.0.0.9")]
    gone = {**CLUSTER, "EndpointSlice": []}
    assert _findings(gone)[0][2] == "Git pins 10.0.0.1, 10.0.0.2; the cluster has none"


def test_without_a_cluster_only_proxies_are_compared() -> None:
    found = drift.compare(COMMIT, GIT, None, [drift.ProxyState("a", SyncState.STALE, COMMIT)])
    assert not found.cluster and [f.kind for f in found.findings] == [drift.DriftKind.PROXY_NOT_SERVED]
    assert drift.render(found.to_json()).startswith(
        f"commit {COMMIT[:12]}, proxies only (serve watches no cluster): 1 finding(s)\nProxyNotOnServedCommit  a: ")
