"""`meshward status` against a live reconciler: a real Envoy gateway that ACKs everything and a scripted proxy that
NACKs its clusters; the CLI's columns (node, commit, cluster generation, per-type state and version) and the NACK
message are checked on the real command's output, as `istioctl proxy-status` users would read it."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import loop_thread
import pytest
from nacking_proxy import NackingProxy

from meshxds import type_urls
from reconciler import serve
from reconciler.ops import envoy_process
from reconciler.xds import bootstrap

pytestmark = pytest.mark.envoy

GATEWAY = "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
SIDECAR = "sidecar~127.0.0.1~web-v1.shop~shop.svc.cluster.local"
NACK_MESSAGE = "cluster outbound|8080||web.shop.svc.cluster.local: scripted rejection"

TREE = """\
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Service
metadata: {{name: istio-ingressgateway, namespace: istio-system, labels: {{istio: ingressgateway}}}}
spec:
  selector: {{istio: ingressgateway}}
  ports: [{{name: http, port: 80, targetPort: {gateway_port}}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: istio-ingressgateway, namespace: istio-system}}
spec: {{address: 127.0.0.1, labels: {{istio: ingressgateway}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: shop-gateway, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {gateway_port}, name: http, protocol: HTTP}}
    bind: 127.0.0.1
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: shop}}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/shop-gateway]
  http:
  - route:
    - destination: {{host: web.shop.svc.cluster.local, port: {{number: 8080}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 8080, targetPort: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web-v1, namespace: shop}}
spec: {{address: 127.0.0.1, labels: {{app: web}}, ports: {{http: {backend_port}}}}}
"""


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


class Server:
    """`meshward serve` in-process on an event loop thread."""

    def __init__(self, repo: Path, workdir: Path) -> None:
        config = serve.ServeConfig(repo=str(repo), poll_interval=3600, xds_address="127.0.0.1:0",
                                   admin_address="127.0.0.1:0")
        self.loop = asyncio.new_event_loop()
        self.server = serve.Server(config, workdir)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=30)
        self.runner = asyncio.run_coroutine_threadsafe(self.server.run(), self.loop)

    @property
    def admin(self) -> str:
        return f"127.0.0.1:{self.server.admin.port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=5) as resp:
            return json.loads(resp.read())

    def proxy(self, node: str) -> dict[str, Any] | None:
        return next((p for p in self.get("/debug/proxies") if p["node_id"] == node), None)

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=30)
        finally:
            loop_thread.close(self.loop, self.thread)  # the runner too, if stop() has not ended it yet


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mesh.yaml").write_text(TREE.format(gateway_port=envoy_process.free_port(),
                                                backend_port=envoy_process.free_port()))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "mesh")
    server = Server(repo, tmp_path / "serve")
    try:
        yield server, git(repo, "rev-parse", "HEAD")
    finally:
        server.close()


def meshward(*args: str, code: int = 0, stderr: bool = False) -> str:
    """The command's stdout (its stderr with `stderr`), after checking its exit code."""
    done = subprocess.run([sys.executable, "-m", "meshward", *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == code, done.stderr
    return done.stderr if stderr else done.stdout


def text(server: Server, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://{server.admin}{path}", timeout=5) as resp:
        return resp.status, resp.read().decode()


def table(output: str) -> dict[str, dict[str, str]]:
    """The proxy rows by NAME, each as {column: cell}; columns are separated by two or more spaces."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NAME "))
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=len(header) - 1) for line in lines[start + 1:] if line]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_status_lists_synced_and_nacked_proxies(live: tuple[Server, str], tmp_path: Path) -> None:
    server, sha = live
    eventually(lambda: (server.get("/status").get("serving") or {}).get("sha") == sha, "commit served")
    admin_port = envoy_process.free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(bootstrap.render(GATEWAY, f"127.0.0.1:{server.server.xds_port}",
                                                  admin_port=admin_port)))
    nacker = NackingProxy(f"127.0.0.1:{server.server.xds_port}", node_id=SIDECAR, cluster="web-v1.shop")
    try:
        with envoy_process.running(config, log=tmp_path / "gateway.log") as envoy:
            envoy.wait_ready(admin_port)
            eventually(lambda: (server.proxy(GATEWAY) or {}).get("state") == "SYNCED", "gateway synced")
            assert server.get("/status")["lastResult"] == "Synced"
            meshward("status", "--admin-address", server.admin)  # exit 0 while every proxy accepts its config
            (served,) = json.loads(meshward("status", "--admin-address", server.admin, "--history", "-o", "json"))
            assert (served["commit"]["sha"], served["result"], served["ackedBy"]) == (sha, "Served", [GATEWAY])
            nacker.nack_clusters(NACK_MESSAGE)
            eventually(lambda: (server.proxy(SIDECAR) or {}).get("state") == "NACKED", "sidecar nacked")
            output = meshward("status", "--admin-address", server.admin, code=1)
            as_json = json.loads(meshward("status", "--admin-address", server.admin, "-o", "json", code=1))
            readyz = text(server, "/readyz")
            metrics = text(server, "/metrics")[1]
    finally:
        nacker.close()

    # The top level says a proxy rejects the served commit: Degraded, naming the proxy, the message, the resources.
    top = as_json["status"]
    assert top["lastResult"] == "Degraded" and top["commitResult"] == "Synced"
    (nack,) = top["nacks"]
    assert nack["node"] == SIDECAR and nack["typeUrl"] == type_urls.CLUSTER and nack["message"] == NACK_MESSAGE
    assert "outbound|8080||web.shop.svc.cluster.local" in nack["resources"]
    line = f"proxy {SIDECAR} rejects Cluster {nack['version'][:12]} ({', '.join(nack['resources'])}): {NACK_MESSAGE}"
    assert top["errors"] == [line]
    assert readyz[0] == 200 and "degraded" in readyz[1]  # readiness is the server's (docs/operations.md: `meshward status`)
    assert 'meshward_sync_result{result="Degraded"} 1.0' in metrics
    assert f'meshward_xds_nacks_total{{type_url="{type_urls.CLUSTER}"}} 1.0' in metrics
    assert f'meshward_xds_rejecting_proxies{{type_url="{type_urls.CLUSTER}"}} 1.0' in metrics

    assert output.splitlines()[:2] == [f"serving commit {sha[:12]}  last result Degraded", f"  {top['errors'][0]}"]
    rows = table(output)
    assert list(rows) == [GATEWAY, SIDECAR]
    gateway, sidecar = rows[GATEWAY], rows[SIDECAR]
    assert gateway["MODE"] == "sotw" and gateway["STATE"] == "SYNCED" and gateway["COMMIT"] == sha[:12]
    gateway_types = server_types(as_json, GATEWAY)
    for column, type_name in (("CDS", "Cluster"), ("LDS", "Listener"), ("EDS", "ClusterLoadAssignment"),
                              ("RDS", "RouteConfiguration")):
        acked = gateway_types[type_name]["acked_version"]
        assert acked and gateway[column] == f"SYNCED {acked[:8]}", (column, gateway)
    assert gateway["SDS"] == "-" and gateway["MESSAGE"] == "-"
    assert sidecar["STATE"] == "NACKED" and sidecar["CDS"] == "NACKED -"  # nothing of that type ever ACKed
    assert sidecar["MESSAGE"] == f"CDS NACK: {NACK_MESSAGE}"
    assert sidecar["COMMIT"] == sha[:12] and sidecar["GEN"] == "-"


def server_types(as_json: dict[str, Any], node: str) -> dict[str, Any]:
    proxy = next(p for p in as_json["proxies"] if p["node_id"] == node)
    assert as_json["status"]["serving"]["sha"] == proxy["commit"]
    return {url.rsplit(".", 1)[-1]: t for url, t in proxy["types"].items()}
