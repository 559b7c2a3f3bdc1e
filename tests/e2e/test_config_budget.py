"""A commit that makes one proxy's config larger than `--max-config-bytes`: that proxy keeps the config it has
(nothing new is sent to it) and `/status` lists it under `proxyErrors` with its size and the budget, as it does a
gateway whose certificate is missing; a revert under the budget serves it again."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import loop_thread
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from compiler import build as build_mod
from meshxds import type_urls
from reconciler import serve
from reconciler.xds import config_budget

SIDECAR = "sidecar~127.0.0.1~web-v1.shop~shop.svc.cluster.local"
WEB = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-v1, namespace: shop}
spec: {address: 127.0.0.1, labels: {app: web}}
"""


def entries(n: int) -> str:
    return "".join(f"""---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext-{i}, namespace: shop}}
spec:
  hosts: [ext-{i}.example.com]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: DNS
""" for i in range(n))


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def commit(repo: Path, n: int) -> str:
    (repo / "mesh.yaml").write_text(WEB + entries(n))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{n} service entries")
    return git(repo, "rev-parse", "HEAD")


def size_of(repo: Path) -> int:
    result = build_mod.build([repo / "mesh.yaml"])
    return config_budget.ConfigBudget(0).size(build_mod.snapshot_for(result, SIDECAR))


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


class Live:
    """`meshward serve` in-process on an event loop thread, with a SotW client connected as SIDECAR."""

    def __init__(self, repo: Path, workdir: Path, budget: int) -> None:
        config = serve.ServeConfig(repo=str(repo), poll_interval=3600, xds_address="127.0.0.1:0",
                                   admin_address="127.0.0.1:0", max_config_bytes=budget)
        self.loop = asyncio.new_event_loop()
        self.server = serve.Server(config, workdir)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=30)
        self.runner = asyncio.run_coroutine_threadsafe(self.server.run(), self.loop)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.server.xds_port}")
        self.requests: queue.Queue[discovery_pb2.DiscoveryRequest | None] = queue.Queue()
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.responses = stub.StreamAggregatedResources(iter(self.requests.get, None), timeout=120)
        self.received: queue.Queue[discovery_pb2.DiscoveryResponse] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self.responses:
                self.received.put(response)
                self.requests.put(discovery_pb2.DiscoveryRequest(  # ACK
                    type_url=response.type_url, version_info=response.version_info, response_nonce=response.nonce))
        except grpc.RpcError:
            pass

    def subscribe(self) -> discovery_pb2.DiscoveryResponse:
        self.requests.put(discovery_pb2.DiscoveryRequest(node=base_pb2.Node(id=SIDECAR), type_url=type_urls.CLUSTER))
        return self.received.get(timeout=30)

    def status(self) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server.admin.port}/status", timeout=5) as resp:
            return json.loads(resp.read())

    def trigger(self) -> None:
        self.loop.call_soon_threadsafe(self.server.loop.trigger)

    def close(self) -> None:
        self.requests.put(None)
        self.responses.cancel()
        self.channel.close()
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=30)
        finally:
            loop_thread.close(self.loop, self.thread)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def test_a_proxy_over_the_budget_keeps_its_config_and_is_named(repo: Path, tmp_path: Path) -> None:
    small = commit(repo, 2)
    budget = size_of(repo) + 2000  # room for a few more entries, not for 200
    live = Live(repo, tmp_path / "serve", budget)
    try:
        eventually(lambda: (live.status().get("serving") or {}).get("sha") == small, "first commit served")
        before = live.subscribe()
        large = commit(repo, 200)
        live.trigger()
        status = eventually(lambda: (s := live.status())["serving"]["sha"] == large and s["proxyErrors"] and s,
                            "large commit served, the sidecar kept back")
        (error,) = status["proxyErrors"]
        assert error["node"] == SIDECAR
        assert error["error"].startswith("ConfigTooLarge: its config is ")
        assert f"over the per-proxy budget of {budget:,} (serve --max-config-bytes)" in error["error"]
        time.sleep(0.5)
        assert live.received.empty(), "the proxy over the budget was sent the new config"
        # Back under the budget: served again, and no longer listed.
        (repo / "mesh.yaml").write_text(WEB + entries(3))
        git(repo, "commit", "-q", "-am", "fewer")
        live.trigger()
        after = live.received.get(timeout=30)
        assert after.version_info != before.version_info and len(after.resources) == len(before.resources) + 1
        assert eventually(lambda: not live.status()["proxyErrors"], "the sidecar no longer listed")
    finally:
        live.close()
