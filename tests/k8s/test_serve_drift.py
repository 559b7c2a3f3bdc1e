"""Drift in `meshward serve` against the loopback API server: /status's drift section, the
`meshward_drift_findings` gauge and `meshward drift`'s exit code follow the cluster and the proxies, kind by kind
(in sync; Istio resources Git does not hold; a Service Git refers to gone; endpoints Git pins moved; a proxy that
has not ACKed the served commit), and go back to in sync when the cluster does."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import queue
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from fake_apiserver import FakeApiServer
from gateway_tree import CREDENTIAL, GATEWAY_NODE, make_repo, web_service, web_slice, write_tree
from serve_harness import ServeHarness, eventually
from tls_certs import TestCA

from meshward import cli
from meshxds import type_urls
from reconciler import serve

BACKEND = 18091  # never connected to: only compiled


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    yield
    prefixes = ("registry-", "fake-apiserver", "cluster-notify", "credentials-poll")
    assert not [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


def _cluster_as_git_says(apiserver: FakeApiServer) -> None:
    """What the tree declares, applied: its Services, and the endpoints it pins (127.0.0.1)."""
    leaf = TestCA().issue("shop.example.com")
    apiserver.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": CREDENTIAL, "namespace": "istio-system"},
                     "data": {"tls.crt": base64.b64encode(leaf.cert_pem).decode(),
                              "tls.key": base64.b64encode(leaf.key_pem).decode()}})
    gateway = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system",
                            "labels": {"istio": "ingressgateway"}},
               "spec": {"selector": {"istio": "ingressgateway"},
                        "ports": [{"name": "https", "port": 443, "targetPort": 18443}]}}
    apiserver.apply(gateway)
    apiserver.apply(web_service())
    apiserver.apply(web_slice("web-abc12", BACKEND))


def _start(tmp_path: Path, apiserver: FakeApiServer) -> ServeHarness:
    work = write_tree(tmp_path / "work", gateway_port=18443, repo_backend_port=BACKEND)
    make_repo(work)
    config = serve.ServeConfig(repo=str(work), poll_interval=3600, xds_address="127.0.0.1:0",
                               admin_address="127.0.0.1:0", kube_host=apiserver.url)
    return ServeHarness(config, tmp_path / "serve")


def _drift_cli(h: ServeHarness) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["drift", "--admin-address", f"127.0.0.1:{h.server.admin.port}"])
    return code, out.getvalue()


def _gauge(h: ServeHarness) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{h.server.admin.port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("meshward_drift_findings{")}


def _findings(h: ServeHarness) -> list[tuple[str, str]]:
    return [(f["kind"], f["object"]) for f in h.status()["drift"]["findings"]]


class _Proxy:
    """A SotW client that asks for its clusters and, until `ack()`, ACKs nothing: the served config stays
    unacknowledged. From then on it ACKs every response, the last one received first."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.requests: queue.Queue[discovery_pb2.DiscoveryRequest | None] = queue.Queue()
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.responses = stub.StreamAggregatedResources(iter(self.requests.get, None), timeout=60)
        self.acking = threading.Event()
        self.last: discovery_pb2.DiscoveryResponse | None = None
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.requests.put(discovery_pb2.DiscoveryRequest(node=base_pb2.Node(id=GATEWAY_NODE),
                                                         type_url=type_urls.CLUSTER))

    def _read(self) -> None:
        try:
            for response in self.responses:
                with self.lock:
                    self.last = response
                if self.acking.is_set():
                    self._ack(response)
        except grpc.RpcError:
            pass

    def _ack(self, response: discovery_pb2.DiscoveryResponse) -> None:
        self.requests.put(discovery_pb2.DiscoveryRequest(type_url=response.type_url, response_nonce=response.nonce,
                                                         version_info=response.version_info))

    def ack(self) -> None:
        self.acking.set()
        with self.lock:
            last = self.last
        if last is not None:
            self._ack(last)

    def close(self) -> None:
        self.requests.put(None)
        self.responses.cancel()
        self.channel.close()
        self.reader.join(timeout=10)


def test_drift_kind_by_kind(tmp_path: Path, apiserver: FakeApiServer, caplog: pytest.LogCaptureFixture) -> None:
    _cluster_as_git_says(apiserver)
    apiserver.fail_requests("EnvoyFilter", 404)  # a cluster without that CRD
    h = _start(tmp_path, apiserver)
    try:
        serving = eventually(lambda: h.status().get("serving"), what="first commit served")
        drift: dict[str, Any] = h.status()["drift"]
        assert (drift["inSync"], drift["cluster"], drift["commit"]) == (True, True, serving["sha"]), drift
        assert _drift_cli(h) == (0, f"commit {serving['sha'][:12]}, proxies and cluster: in sync\n")

        apiserver.apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                         "metadata": {"name": "legacy", "namespace": "shop"}, "spec": {"hosts": ["legacy"]}})
        apiserver.apply({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                         "metadata": {"name": "deny-all", "namespace": "shop"}, "spec": {}})
        apiserver.delete("Service", "shop", "web")
        apiserver.apply(web_slice("web-abc12", BACKEND, address="127.0.0.2"))
        expected = [("EndpointsDiffer", "Service shop/web"),
                    ("IstioResourceNotInGit", "AuthorizationPolicy shop/deny-all"),
                    ("IstioResourceNotInGit", "VirtualService shop/legacy"),
                    ("ServiceMissingInCluster", "Service shop/web")]
        eventually(lambda: _findings(h) == expected, what="every kind of cluster drift")
        assert _gauge(h) == {"ProxyNotOnServedCommit": 0, "ServiceMissingInCluster": 1,
                             "IstioResourceNotInGit": 2, "EndpointsDiffer": 1}
        code, out = _drift_cli(h)
        assert code == 1 and "4 finding(s)" in out
        assert "EndpointsDiffer          Service shop/web: Git pins 127.0.0.1; the cluster has 127.0.0.2\n" in out

        apiserver.delete("VirtualService", "shop", "legacy")
        apiserver.delete("AuthorizationPolicy", "shop", "deny-all")
        _cluster_as_git_says(apiserver)
        eventually(lambda: h.status()["drift"]["inSync"], what="back in sync")

        proxy = _Proxy(h.server.xds_port)
        try:
            eventually(lambda: _findings(h) == [("ProxyNotOnServedCommit", GATEWAY_NODE)], what="unACKed proxy")
            assert _drift_cli(h)[0] == 1
            proxy.ack()
            eventually(lambda: h.status()["drift"]["inSync"], what="the proxy ACKed the served commit")
            assert _drift_cli(h)[0] == 0
        finally:
            proxy.close()
    finally:
        h.close()
    # one connection per watch (no pool churn), and an Istio kind the server lacks is said once, not per retry
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in logged if "Connection pool is full" in m]
    assert [m for m in logged if "EnvoyFilter" in m] == ["EnvoyFilter cannot be listed (HTTP 404); treating it as empty"]


def test_drift_cannot_be_asked_of_nothing() -> None:
    done = subprocess.run([sys.executable, "-m", "meshward", "drift", "--admin-address", "127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.startswith("meshward drift: cannot reach 127.0.0.1:9")
