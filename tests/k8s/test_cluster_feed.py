"""The cluster feed without a cluster (credentials directory only) and the precedence of cluster documents over the
repository's."""

from __future__ import annotations

import threading
from pathlib import Path

from tls_certs import TestCA

from compiler import build, registry_overlay
from compiler.load import Document
from reconciler.kube import cluster


def doc(kind: str, ns: str, name: str, service: str | None = None, file: str = "repo.yaml") -> Document:
    meta: dict[str, object] = {"name": name, "namespace": ns}
    if service:
        meta["labels"] = {"kubernetes.io/service-name": service}
    return Document(file=file, index=0, line=1, data={"kind": kind, "metadata": meta})


def key(d: Document) -> tuple[str, str, str]:
    return (d.data["kind"], d.data["metadata"]["namespace"], d.data["metadata"]["name"])


def test_cluster_services_and_their_endpoints_replace_the_repositorys() -> None:
    repo = [doc("Service", "shop", "web"), doc("EndpointSlice", "shop", "web-repo", "web"),
            doc("Service", "shop", "db"), doc("EndpointSlice", "shop", "db-repo", "db"),
            doc("EndpointSlice", "shop", "cache-1", "cache"), doc("VirtualService", "shop", "web"),
            doc("Service", "other", "web")]
    from_cluster = [doc("Service", "shop", "web", file="k8s"), doc("EndpointSlice", "shop", "web-x1", "web", "k8s"),
                    doc("EndpointSlice", "shop", "cache-1", "cache", "k8s")]
    merged, shadowed = registry_overlay.merge(repo, from_cluster)
    assert [key(d) for d in shadowed] == [("Service", "shop", "web"), ("EndpointSlice", "shop", "web-repo"),
                                          ("EndpointSlice", "shop", "cache-1")]
    assert [key(d) for d in merged if d.file == "repo.yaml"] == [
        ("Service", "shop", "db"), ("EndpointSlice", "shop", "db-repo"), ("VirtualService", "shop", "web"),
        ("Service", "other", "web")]
    assert merged[-3:] == from_cluster
    assert registry_overlay.merge(repo, []) == (repo, [])


def test_build_reports_what_the_cluster_shadowed() -> None:
    repo = [doc("Service", "shop", "web"), doc("EndpointSlice", "shop", "web-repo", "web", file="slices.yaml")]
    _, shadowed = build.from_documents(repo, [doc("Service", "shop", "web", file="k8s")], files=2)
    assert shadowed == ("Service shop/web repo.yaml:1", "EndpointSlice shop/web-repo slices.yaml:1")
    assert build.from_documents(repo, [], files=2)[1] == ()


def write_pair(root: Path, name: str, ca: TestCA) -> None:
    leaf = ca.issue(f"{name}.example.com")
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "tls.crt").write_bytes(leaf.cert_pem)
    (root / name / "tls.key").write_bytes(leaf.key_pem)


def test_credentials_directory_is_read_at_start_and_reread_on_change(tmp_path: Path) -> None:
    ca = TestCA()
    write_pair(tmp_path, "a", ca)
    seen: list[int] = []
    config = cluster.FeedConfig(credentials_dir=tmp_path, credentials_poll=0.05, debounce=0.05)
    feed = cluster.ClusterFeed(config, on_change=lambda state: seen.append(state.generation))
    feed.start()
    try:
        generation = feed.wait_generation(0, timeout=5)
        state = feed.state()
        assert generation >= 1 and state.synced and list(state.secrets_for("istio-system")) == ["a"]
        assert state.secrets_for(None) == state.secrets_for("anything")
        write_pair(tmp_path, "b", ca)
        assert feed.wait_generation(generation, timeout=5) > generation
        assert sorted(feed.state().secrets_for("x")) == ["a", "b"] and seen[-1] == feed.state().generation
        (tmp_path / "b" / "tls.key").write_bytes(b"garbage")
        generation = feed.wait_generation(feed.state().generation, timeout=5)
        assert sorted(feed.state().secrets_for("x")) == ["a"]
        assert [p for p in feed.state().problems if str(tmp_path / "b") in p]
        assert feed.state().to_json()["problems"] == list(feed.state().problems)
    finally:
        feed.stop()
    assert not [t for t in threading.enumerate() if t.name in ("credentials-poll", "cluster-notify")]
