"""The mesh page in a real headless browser: a real `meshward serve` follows a git repository, Chromium opens
/mesh, and the DOM its script rendered is read over the DevTools Protocol: the served commit, the gateway, services
and subsets with the split's weights and request rates, and a proxy that rejects its config with Envoy's message.
Then a commit changes the weights and adds a service, and the same page (not reloaded) shows them after its next
poll; Prometheus going away leaves the graph without rates and a note saying why.

The rates come from a stand-in for Prometheus's query API with a fixed answer: what the page does with an answer
is tested here; that the query is right is tested against a real Prometheus scraping a real Envoy
(tests/traffic/test_traffic_metrics.py)."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import meshpage_chromium as chromium
import meshpage_tree
import pytest
from nacking_proxy import NackingProxy

from reconciler.ops import envoy_process

NACK_MESSAGE = "cluster outbound|9080|v1|reviews.shop.svc.cluster.local: scripted rejection"
# What the page shows, read from its DOM: text as rendered, and the marks the script gives elements (null while
# the page is still loading).
SHOWN = """document.getElementById("commit") && (() => ({
  commit: document.getElementById("commit").textContent,
  result: document.getElementById("result").textContent,
  nodes: [...document.querySelectorAll("#nodes g.node")].map(g =>
    [g.dataset.kind, g.querySelector("text").textContent, g.classList.contains("new")]),
  edges: [...document.querySelectorAll("#edges g.edge")].map(g =>
    [...g.querySelectorAll("tspan")].map(t => t.textContent)),
  proxies: [...document.querySelectorAll("#proxies tbody tr")].map(tr => [...tr.cells].map(td => td.textContent)),
  note: document.getElementById("note").textContent,
  probe: window.meshwardProbe || null,
}))()"""
RATES = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"source": "istio-system/istio-ingressgateway", "destination_service": meshpage_tree.REVIEWS,
                "destination_subset": "v1"}, "value": [0, "2"]},
    {"metric": {"source": "shop/client", "destination_service": meshpage_tree.REVIEWS, "destination_subset": "v1"},
     "value": [0, "6"]},
    {"metric": {"source": "shop/client", "destination_service": meshpage_tree.REVIEWS, "destination_subset": "v2"},
     "value": [0, "1.5"]}]}}


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def commit(repo: Path, text: str, message: str) -> str:
    (repo / "mesh.yaml").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


class StandInPrometheus:
    """Answers every instant query with RATES, on 127.0.0.1 and a free port, until stopped."""

    def __init__(self) -> None:
        body = json.dumps(RATES).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class Serve:
    """`meshward serve` as its own process (group), polling the repository every half second."""

    def __init__(self, repo: Path, workdir: Path, prometheus: str) -> None:
        self.admin = f"127.0.0.1:{envoy_process.free_port()}"
        self.xds = f"127.0.0.1:{envoy_process.free_port()}"
        self.log_path = workdir / "serve.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshward", "serve", "--repo", str(repo), "--poll-interval", "0.5",
                 "--xds-address", self.xds, "--admin-address", self.admin, "--workdir", str(workdir / "clone"),
                 "--prometheus-url", prometheus],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def graph(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.admin}/mesh/graph", timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc

    def wait_serving(self, sha: str, deadline_s: float = 30.0) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if (self.graph().get("serving") or {}).get("sha") == sha:
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)
        raise AssertionError(f"commit {sha} not served within {deadline_s:.0f}s:\n{self.log_path.read_text()[-3000:]}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Serve, StandInPrometheus, Path, str]]:
    chromium.binary()  # skip (or fail in CI) before starting anything
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    sha = commit(repo, meshpage_tree.tree(80, 20), "reviews: 80/20")
    prometheus = StandInPrometheus()
    try:
        serve = Serve(repo, tmp_path, prometheus.url)
        try:
            serve.wait_serving(sha)
            yield serve, prometheus, repo, sha
        finally:
            chromium.stop_group(serve.proc)
    finally:
        prometheus.stop()


def _edge_lines(shown: dict[str, Any]) -> set[str]:
    return {line for lines in shown["edges"] for line in lines}


def test_the_page_shows_the_served_mesh_and_follows_a_commit(
        served: tuple[Serve, StandInPrometheus, Path, str], tmp_path: Path) -> None:
    serve, prometheus, repo, first = served
    proxy = NackingProxy(serve.xds, node_id=meshpage_tree.CLIENT, cluster="client.shop")
    try:
        proxy.nack_clusters(NACK_MESSAGE)
        browser = chromium.Chromium(f"http://{serve.admin}/mesh?poll=1", tmp_path)
        try:
            asyncio.run(_browse(browser, prometheus, repo, first))
        finally:
            browser.stop()
    finally:
        proxy.close()


async def _browse(browser: chromium.Chromium, prometheus: StandInPrometheus, repo: Path, first: str) -> None:
    async with browser.page() as page:
        shown = await page.until(SHOWN, lambda s: s and s["commit"] == first and s["nodes"]
                                 and any(row[2] == "NACKED" for row in s["proxies"]), "the first commit drawn")
        assert shown["result"] == "Degraded"  # served, and a proxy rejects it
        assert {(kind, label) for kind, label, _ in shown["nodes"]} >= {
            ("gateway", "istio-system/istio-ingressgateway"), ("service", "reviews.shop"),
            ("subset", "reviews.shop v1"), ("subset", "reviews.shop v2")}
        assert {"prefix /reviews · 2.00 req/s", "8.00 req/s", "80% · 8.00 req/s", "20% · 1.50 req/s",
                "end-user=jason · 1.50 req/s"} == _edge_lines(shown)
        assert shown["note"] == "edges show requests per second over the last 1m, from Prometheus"
        (row,) = [r for r in shown["proxies"] if r[0] == meshpage_tree.CLIENT]
        assert row[1:3] == ["sotw", "NACKED"] and row[3] == first[:12] and f"Cluster: {NACK_MESSAGE}" == row[5]
        await page.evaluate("window.meshwardProbe = 'same page'; 1")

        second = commit(repo, meshpage_tree.tree(50, 50, ratings=True), "reviews: 50/50, and ratings")
        shown = await page.until(SHOWN, lambda s: s["commit"] == second, "the second commit drawn", deadline_s=30)
        assert shown["probe"] == "same page"  # updated by its poll, not reloaded
        assert {"50% · 8.00 req/s", "50% · 1.50 req/s"} <= _edge_lines(shown)
        assert not [line for line in _edge_lines(shown) if line.startswith(("80%", "20%"))]
        assert ["service", "ratings.shop", True] in shown["nodes"]  # new since the last poll: marked
        assert ["subset", "reviews.shop v1", False] in shown["nodes"]

        prometheus.stop()
        shown = await page.until(SHOWN, lambda s: "Prometheus is unreachable" in s["note"], "the rates' note")
        assert shown["note"].startswith("no request rates: Prometheus is unreachable")
        assert "50%" in _edge_lines(shown) and not [line for line in _edge_lines(shown) if "req/s" in line]
