"""`meshward serve` watching Pods and Namespaces: a pod turning ready changes EDS without a recompile; dropped watches
and 410s leave no stale endpoint; an API server that is down (at start or mid-run), slow or answering garbage never
costs the proxies their last good config, `/readyz` says not-ready only until the first complete view, and the
reconciler recovers by itself."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import FakeApiServer
from pods_tree import CLIENT_NODE, WEB, endpoint_addresses, kubeconfig, populate, repo, set_ready
from serve_harness import ServeHarness, eventually

from reconciler import serve
from reconciler.ops import envoy_process
from reconciler.xds import bootstrap

BOTH = {"web-a": True, "web-b": True}
ONLY_A = {"web-a": True, "web-b": False}


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    yield
    prefixes = ("registry-", "fake-apiserver", "cluster-notify", "credentials-poll")
    assert not [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


def start(tmp_path: Path, apiserver: FakeApiServer) -> ServeHarness:
    config = serve.ServeConfig(repo=str(repo(tmp_path / "work")), poll_interval=3600, xds_address="127.0.0.1:0",
                               admin_address="127.0.0.1:0",
                               kubeconfig=str(kubeconfig(tmp_path / "kubeconfig", apiserver.url)))
    return ServeHarness(config, tmp_path / "serve")


def readyz(h: ServeHarness) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{h.server.admin.port}/readyz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def served(h: ServeHarness) -> list[str]:
    return endpoint_addresses(h.config(CLIENT_NODE))


def envoy_hosts(admin_port: int) -> list[str]:
    """The hosts a real Envoy holds for `web` (its EDS), from its admin API."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/clusters?format=json", timeout=3) as resp:
        clusters = json.loads(resp.read())["cluster_statuses"]
    return sorted(h["address"]["socket_address"]["address"] for c in clusters if c["name"] == WEB
                  for h in c.get("host_statuses", []))


@pytest.mark.envoy
def test_a_pod_turning_ready_reaches_envoy_without_a_recompile(tmp_path: Path, apiserver: FakeApiServer) -> None:
    populate(apiserver, ONLY_A)
    h = start(tmp_path, apiserver)
    try:
        eventually(lambda: h.status().get("serving"), what="first commit served")
        admin_port = envoy_process.free_port()
        config = tmp_path / "client.json"
        config.write_text(json.dumps(bootstrap.render(CLIENT_NODE, f"127.0.0.1:{h.server.xds_port}",
                                                      admin_port=admin_port)))
        with envoy_process.running(config, log=tmp_path / "client.log") as envoy:
            envoy.wait_ready(admin_port)
            eventually(lambda: envoy_hosts(admin_port) == ["127.0.0.2"], what="only the ready pod in Envoy's EDS")
            compiles, generation = h.server.compiler.compiles, h.status()["servingClusterGeneration"]

            set_ready(apiserver, BOTH)
            eventually(lambda: envoy_hosts(admin_port) == ["127.0.0.2", "127.0.0.3"], timeout=10,
                       what="the pod turned ready in Envoy's EDS")
            assert h.server.compiler.compiles == compiles  # readiness alone: the build was reused, EDS patched
            assert h.status()["servingClusterGeneration"] > generation

            set_ready(apiserver, ONLY_A)
            eventually(lambda: envoy_hosts(admin_port) == ["127.0.0.2"], timeout=10, what="the pod unready again")
            assert h.server.compiler.compiles == compiles
    finally:
        h.close()


def test_dropped_watches_and_410_leave_no_stale_endpoint(tmp_path: Path, apiserver: FakeApiServer) -> None:
    populate(apiserver, BOTH)
    h = start(tmp_path, apiserver)
    try:
        eventually(lambda: served(h) == ["127.0.0.2", "127.0.0.3"], what="both pods served")
        # The connection breaks while web-b goes unready: the watch resumes from its resourceVersion and replays it.
        apiserver.drop_connections()
        set_ready(apiserver, ONLY_A)
        eventually(lambda: served(h) == ["127.0.0.2"], what="the unready pod dropped after a reconnect")
        # Changes no watcher saw, then the history compacted: only a re-list (after the 410) can tell.
        set_ready(apiserver, {"web-a": False, "web-b": True}, silent=True)
        apiserver.compact(expire_live=True)
        eventually(lambda: served(h) == ["127.0.0.3"], what="the re-listed state, nothing stale")
        watches = {w["kind"]: w for w in h.status()["cluster"]["watches"]}
        assert watches["Pod"]["synced"] and watches["Namespace"]["objects"] == 1
    finally:
        h.close()


def test_api_server_down_at_start_is_not_ready_until_it_answers(tmp_path: Path) -> None:
    apiserver = FakeApiServer(port=envoy_process.free_port())  # not started yet
    populate(apiserver, ONLY_A)
    h = start(tmp_path, apiserver)
    try:
        time.sleep(1.0)
        assert readyz(h) == 503 and h.status()["serving"] is None
        assert "error" in h.config(CLIENT_NODE)
        apiserver.start()
        eventually(lambda: readyz(h) == 200, timeout=40, what="ready once the API server answers")
        assert served(h) == ["127.0.0.2"]
    finally:
        h.close()
        apiserver.stop()


def test_api_server_down_mid_run_keeps_the_last_good_config(tmp_path: Path, apiserver: FakeApiServer) -> None:
    populate(apiserver, ONLY_A)
    h = start(tmp_path, apiserver)
    try:
        eventually(lambda: served(h) == ["127.0.0.2"], what="served")
        apiserver.stop()
        set_ready(apiserver, BOTH)  # while nobody is connected: replayed from the watch history
        eventually(lambda: any(w["errors"] for w in h.status()["cluster"]["watches"]), what="the outage reported")
        assert readyz(h) == 200 and served(h) == ["127.0.0.2"]  # the proxies keep what they have
        apiserver.start()
        eventually(lambda: served(h) == ["127.0.0.2", "127.0.0.3"], timeout=40, what="caught up after the outage")
        assert readyz(h) == 200
    finally:
        h.close()


def test_slow_api_server_delays_but_does_not_break(tmp_path: Path, apiserver: FakeApiServer) -> None:
    populate(apiserver, ONLY_A)
    apiserver.slow_requests(1.5)
    h = start(tmp_path, apiserver)
    try:
        assert readyz(h) == 503
        eventually(lambda: served(h) == ["127.0.0.2"], timeout=40, what="served by a slow API server")
        set_ready(apiserver, BOTH)
        eventually(lambda: served(h) == ["127.0.0.2", "127.0.0.3"], timeout=40, what="a change through a slow one")
    finally:
        apiserver.slow_requests(0)
        h.close()


def test_garbage_answers_are_errors_not_state(tmp_path: Path, apiserver: FakeApiServer) -> None:
    populate(apiserver, ONLY_A)
    apiserver.garbage_requests("Pod")
    h = start(tmp_path, apiserver)
    try:
        pods: Any = eventually(lambda: next((w for w in h.status()["cluster"]["watches"]
                                             if w["kind"] == "Pod" and w["errors"]), None), what="garbage reported")
        assert not pods["synced"] and readyz(h) == 503  # no partial registry is ever compiled
        apiserver.garbage_requests("Pod", on=False)
        eventually(lambda: served(h) == ["127.0.0.2"], timeout=40, what="recovered from garbage at start")

        # Mid-run: every watch reconnects into garbage; the last good config stays, changes wait for the fix.
        for kind in ("Pod", "EndpointSlice"):
            apiserver.garbage_requests(kind)
        apiserver.drop_connections()
        set_ready(apiserver, BOTH)
        eventually(lambda: sum(w["errors"] for w in h.status()["cluster"]["watches"]) > pods["errors"] + 1,
                   what="garbage mid-run reported")
        assert readyz(h) == 200 and served(h) == ["127.0.0.2"]
        for kind in ("Pod", "EndpointSlice"):
            apiserver.garbage_requests(kind, on=False)
        eventually(lambda: served(h) == ["127.0.0.2", "127.0.0.3"], timeout=40, what="recovered mid-run")
    finally:
        h.close()
