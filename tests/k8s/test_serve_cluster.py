"""`meshward serve` with a (fake) cluster: the registry's Services and EndpointSlices and the TLS Secrets of the
gateway's namespace are compiled with the commit; a cluster change recompiles the same commit; a cluster state
that breaks the build is reported and the last good snapshot stays; the cluster wins over the repository."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import FakeApiServer
from gateway_tree import CREDENTIAL, GATEWAY_NODE, make_repo, web_service, web_slice, write_tree
from serve_harness import ServeHarness, endpoint_ports, eventually
from tls_certs import TestCA

from meshxds import type_urls
from reconciler import serve

WEB = "outbound|8080||web.shop.svc.cluster.local"
REPO_PORT, CLUSTER_PORT, MOVED_PORT = 18081, 18082, 18083  # never connected to: only compiled


def tls_secret(name: str, ns: str, cert: bytes, key: bytes) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}}


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    yield
    prefixes = ("registry-", "fake-apiserver", "cluster-notify", "credentials-poll")
    assert not [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


def start(tmp_path: Path, apiserver: FakeApiServer) -> ServeHarness:
    work = write_tree(tmp_path / "work", gateway_port=18443, repo_backend_port=REPO_PORT)
    make_repo(work)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{apiserver.url}'}}}}]\n"
        "users: [{name: nobody, user: {}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: nobody}}]\n")
    config = serve.ServeConfig(repo=str(work), poll_interval=3600, xds_address="127.0.0.1:0",
                               admin_address="127.0.0.1:0", kubeconfig=str(kubeconfig))
    return ServeHarness(config, tmp_path / "serve")


def test_cluster_state_is_compiled_with_the_commit_and_recompiled_on_change(
        tmp_path: Path, apiserver: FakeApiServer, ca: TestCA) -> None:
    leaf = ca.issue("shop.example.com")
    apiserver.apply(web_service())
    apiserver.apply(web_slice("web-abc12", CLUSTER_PORT))
    apiserver.apply(tls_secret(CREDENTIAL, "istio-system", leaf.cert_pem, leaf.key_pem))
    apiserver.apply(tls_secret(CREDENTIAL, "shop", leaf.cert_pem, leaf.key_pem))  # another namespace: not used
    h = start(tmp_path, apiserver)
    try:
        first = eventually(lambda: h.status().get("serving"), what="first commit served")
        status = h.status()
        assert status["lastResult"] == "Synced" and status["clusterResult"] == "Synced"
        assert status["cluster"]["synced"] and status["servingClusterGeneration"] >= 1
        assert "istio-system/shop-cert" in status["cluster"]["secrets"]

        # Precedence: the cluster's slice replaced the repository's; the secret is served, its key redacted.
        config = h.config(GATEWAY_NODE)
        assert endpoint_ports(config, WEB) == [CLUSTER_PORT]
        [secret] = config[type_urls.SECRET]
        assert secret["name"] == CREDENTIAL
        assert secret["tls_certificate"]["private_key"] == {"inline_string": "[redacted]"}
        assert leaf.key_pem.decode().splitlines()[1] not in str(h.get("/status"))

        # Endpoints move in the cluster: the same commit is recompiled with the new state, no fetch needed.
        generation = status["servingClusterGeneration"]
        apiserver.apply(web_slice("web-abc12", MOVED_PORT))
        eventually(lambda: endpoint_ports(h.config(GATEWAY_NODE), WEB) == [MOVED_PORT], what="endpoints moved")
        status = h.status()
        assert status["serving"] == first and status["servingClusterGeneration"] > generation
        generation = status["servingClusterGeneration"]

        # A cluster state that breaks the build (a port Kubernetes' validation would refuse) is refused; proxies
        # keep the last good one; /status says why.
        broken = web_service()
        broken["spec"]["ports"][0]["port"] = 70000
        apiserver.apply(broken)
        rejected = eventually(lambda: h.status().get("clusterRejected"), what="cluster state rejected")
        status = h.status()
        assert status["lastResult"] == "ValidationFailed" and status["clusterResult"] == "ValidationFailed"
        assert rejected["trigger"] == "ClusterChange" and rejected["clusterGeneration"] > generation
        assert rejected["commit"]["sha"] == first["sha"]
        assert any("MW0102" in line and "70000" in line for line in status["errors"]), status["errors"]
        assert status["servingClusterGeneration"] == generation
        assert endpoint_ports(h.config(GATEWAY_NODE), WEB) == [MOVED_PORT]

        # Fixed in the cluster: served again, nothing sticky.
        apiserver.apply(web_service())
        eventually(lambda: h.status()["clusterResult"] == "Synced", what="cluster state recovered")
        status = h.status()
        assert status["lastResult"] == "Synced" and status["clusterRejected"] is None
        assert status["servingClusterGeneration"] > generation
    finally:
        h.close()


def test_bad_credential_is_reported_by_name(tmp_path: Path, apiserver: FakeApiServer, ca: TestCA) -> None:
    one, other = ca.issue("shop.example.com"), ca.issue("other.example.com")
    apiserver.apply(web_service())
    apiserver.apply(web_slice("web-abc12", CLUSTER_PORT))
    apiserver.apply(tls_secret(CREDENTIAL, "istio-system", one.cert_pem, other.key_pem))
    h = start(tmp_path, apiserver)
    try:
        eventually(lambda: h.status().get("serving"), what="first commit served")
        problems = h.status()["cluster"]["problems"]
        assert len(problems) == 1 and "secret istio-system/shop-cert" in problems[0]
        assert "does not belong" in problems[0]
        # The gateway refers to it, so it gets no snapshot at all rather than one without its certificate.
        assert "shop-cert" in h.config(GATEWAY_NODE)["error"]
        apiserver.apply(tls_secret(CREDENTIAL, "istio-system", one.cert_pem, one.key_pem))
        eventually(lambda: type_urls.SECRET in h.config(GATEWAY_NODE), what="fixed secret served")
        assert h.status()["cluster"]["problems"] == []
    finally:
        h.close()


def test_secrets_not_readable_do_not_hold_back_the_registry(tmp_path: Path, apiserver: FakeApiServer) -> None:
    """Without RBAC for Secrets the registry still serves endpoints; the gateway that needs one is not served."""
    apiserver.apply(web_service())
    apiserver.apply(web_slice("web-abc12", CLUSTER_PORT))
    apiserver.fail_requests("Secret", 403)
    h = start(tmp_path, apiserver)
    try:
        eventually(lambda: h.status().get("serving"), what="served without Secrets")
        [secrets] = [w for w in h.status()["cluster"]["watches"] if w["kind"] == "Secret"]
        assert secrets["synced"] and secrets["objects"] == 0 and "403" in secrets["lastError"]
        assert "shop-cert" in h.config(GATEWAY_NODE)["error"]
        assert h.status()["cluster"]["synced"]

        # The API server going away shows on /status as it happens, not at the next cluster change.
        apiserver.stop()
        eventually(lambda: any(w["kind"] == "Service" and w["errors"] for w in h.status()["cluster"]["watches"]),
                   what="watch failure reported")
        assert h.status()["lastResult"] == "Synced"  # proxies keep what they have
        apiserver.start()
    finally:
        h.close()
