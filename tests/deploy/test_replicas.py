"""Horizontal scale with nothing shared but Git: two `serve` processes follow one repository, a real Envoy reaches
them through a relay standing in for the Service, and its ADS connection is moved from one to the other (the
first is then stopped) under steady traffic, over state-of-the-world and delta ADS. Both build the same bytes from the same commit (versions are content
hashes), so Envoy gets no config change: same versions, no listener or cluster added, modified, removed or drained,
and no request fails."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import deployed_serve
import gateway_tree
import mesh_tree
import pytest
from switch_proxy import SwitchProxy

from reconciler.ops import envoy_process
from reconciler.xds import bootstrap

CLIENT_IP = "127.0.0.174"
NODE = mesh_tree.node(CLIENT_IP)
# Envoy's counters of what an xDS update did; none may move when the same config arrives from another replica.
CHANGES = ("listener_manager.listener_added", "listener_manager.listener_modified",
           "listener_manager.listener_removed", "listener_manager.total_listeners_draining",
           "cluster_manager.cluster_added", "cluster_manager.cluster_modified", "cluster_manager.cluster_removed")
VERSIONS = ("listener_manager.lds.version_text", "cluster_manager.cds.version_text")


def _get(url: str, host: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return bytes(resp.read())


def _stats(admin_port: int) -> dict[str, Any]:
    stats = json.loads(_get(f"http://127.0.0.1:{admin_port}/stats?format=json"))["stats"]
    return {s["name"]: s["value"] for s in stats if "name" in s}


def _proxy_on(admin: str) -> dict[str, Any] | None:
    proxies = json.loads(_get(f"http://{admin}/debug/proxies"))
    return next((p for p in proxies if p["node_id"] == NODE and p["state"] == "SYNCED"), None)


def _until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s")


class Traffic:
    """Requests through the client's sidecar, one after another, from a thread; every failure kept."""

    def __init__(self) -> None:
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                assert _get(f"http://{CLIENT_IP}:{mesh_tree.SERVICE_PORT}/", mesh_tree.HOST) == b"hello from web\n"
            except (OSError, AssertionError, urllib.error.URLError) as err:
                self.failures.append(repr(err))
            self.sent += 1
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.mark.envoy
@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_a_proxy_moved_to_another_replica_gets_no_config_change_and_drops_no_request(
        tmp_path: Path, envoy_bin: str, delta: bool) -> None:
    with mesh_tree.backend() as backend_port:
        work = mesh_tree.write(tmp_path / "work", client_ip=CLIENT_IP, backend_port=backend_port)
        gateway_tree.make_repo(work)
        replicas = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            xds, admin = envoy_process.free_port(), envoy_process.free_port()
            replicas.append((xds, f"127.0.0.1:{admin}", [
                f"--repo={work}", "--poll-interval=3600", f"--xds-address=127.0.0.1:{xds}",
                f"--admin-address=127.0.0.1:{admin}"], tmp_path / name))
        (xds_a, admin_a, args_a, tmp_a), (xds_b, admin_b, args_b, tmp_b) = replicas
        with deployed_serve.running(args_b, tmp=tmp_b, ready_at=admin_b):
            relay = SwitchProxy(xds_a)
            try:
                with deployed_serve.running(args_a, tmp=tmp_a, ready_at=admin_a) as serve_a:
                    envoy_admin = envoy_process.free_port()
                    config = tmp_path / "envoy.json"
                    config.write_text(json.dumps(bootstrap.render(NODE, f"127.0.0.1:{relay.port}", delta=delta,
                                                                  admin_port=envoy_admin)))
                    with envoy_process.running(config, log=tmp_path / "envoy.log", envoy_bin=envoy_bin) as envoy:
                        envoy.wait_ready(envoy_admin, deadline_s=60)
                        on_a = _until(lambda: _proxy_on(admin_a), "Envoy in sync with replica a")
                        traffic = Traffic()
                        try:
                            _until(lambda: traffic.sent >= 20, "traffic flowing")
                            before = _stats(envoy_admin)
                            relay.switch(xds_b)
                            on_b = _until(lambda: _proxy_on(admin_b), "Envoy in sync with replica b")
                            serve_a.terminate()  # only b is left
                            serve_a.wait(timeout=30)
                            sent = traffic.sent
                            _until(lambda: traffic.sent >= sent + 20, "traffic flowing after the move")
                            after = _stats(envoy_admin)
                        finally:
                            traffic.stop()
            finally:
                relay.close()
    assert on_b["snapshot_version"] == on_a["snapshot_version"], "both replicas built the same bytes"
    assert {t: s["acked_version"] for t, s in on_b["types"].items()} == \
        {t: s["acked_version"] for t, s in on_a["types"].items()}
    assert [before[v] for v in VERSIONS] == [after[v] for v in VERSIONS] and all(before[v] for v in VERSIONS)
    assert {c: after[c] - before[c] for c in CHANGES} == dict.fromkeys(CHANGES, 0)
    assert after["control_plane.connected_state"] == 1
    assert not traffic.failures, f"{len(traffic.failures)} of {traffic.sent} requests failed: {traffic.failures[:3]}"
