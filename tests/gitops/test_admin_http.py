"""The admin HTTP server over real sockets: health, readiness, metrics, status, debug, webhook, bad requests."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from gitops_fakes import FakeCache, FakeCompiler, snapshot_for
from gitops_repos import Remote

from reconciler.git.source import FetchedCommit, GitSource, SourceConfig
from reconciler.git.webhook import WebhookHandler, github_signature
from reconciler.loop import LoopConfig, Reconciler
from reconciler.ops import admin as admin_mod
from reconciler.ops.admin import AdminServer
from reconciler.ops.metrics import XdsObserver
from reconciler.ops.status import SyncResult

WAIT_S = 10.0
SECRET = b"hook-secret"
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


@dataclasses.dataclass(frozen=True)
class ProxyRow:
    """Stands in for the ADS server's per-proxy status dataclass."""

    node_id: str
    types: frozenset[str]


class CountingSource:
    def __init__(self, source: GitSource) -> None:
        self.source = source
        self.polls = 0

    def poll(self) -> FetchedCommit | None:
        self.polls += 1
        return self.source.poll()


class Admin:
    """A reconciler (not running unless a test starts it) plus its admin server on a free port."""

    def __init__(self, remote: Remote, tmp_path: Path, *, allowed_hosts: tuple[str, ...] = ()) -> None:
        git_source = GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work"))
        self.source = CountingSource(git_source)
        self.cache = FakeCache()
        self.reconciler = Reconciler(self.source, build=FakeCompiler().build, snapshot_for=snapshot_for,
                                     publisher=self.cache, config=LoopConfig(poll_interval=3600, debounce=0.01))
        hook = WebhookHandler(SECRET, lambda: git_source.followed_refs, self.reconciler.trigger)
        self.server = AdminServer(status=lambda: self.reconciler.status, metrics=self.reconciler.metrics,
                                  webhook=hook, proxies=lambda: [ProxyRow("sidecar~10.0.0.1~a.ns~ns.svc.cluster.local",
                                                            frozenset({"b", "a"}))],
                                  config=self._config, describe=self._describe, mesh=self._mesh, host="127.0.0.1",
                                  port=0, allowed_hosts=allowed_hosts)

    @staticmethod
    def _config(node: str) -> dict[str, str]:
        if node != "known":
            raise LookupError(f"unknown proxy {node}:\n no workload")
        return {"node": node}

    @staticmethod
    async def _mesh() -> dict[str, list[str]]:
        return {"nodes": []}

    @staticmethod
    def _describe(node: str) -> dict[str, str]:
        if node == "early":
            raise admin_mod.Unavailable("no good commit published yet")
        return Admin._config(node)

    async def raw(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        try:
            writer.write(data)
            await writer.drain()
            response = await asyncio.wait_for(reader.read(), WAIT_S)
        finally:
            writer.close()
            await writer.wait_closed()
        head, _, body = response.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split(" ")[1]), headers, body

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
                      host: str | None = None) -> tuple[int, bytes]:
        host = f"127.0.0.1:{self.server.port}" if host is None else host
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        status, _, data = await self.raw(head.encode() + b"\r\n" + body)
        return status, data

    async def push_hook(self, ref: str = "refs/heads/main", *, secret: bytes = SECRET,
                        host: str | None = None) -> tuple[int, bytes]:
        body = json.dumps({"ref": ref, "after": "0" * 40}).encode()
        headers = {"X-GitHub-Event": "push", "Content-Type": "application/json",
                   "X-Hub-Signature-256": github_signature(secret, body)}
        return await self.request("POST", "/webhook", body, headers, host=host)


def serve(remote: Remote, tmp_path: Path, body: Callable[[Admin], Awaitable[None]], *, run: bool = False,
          allowed_hosts: tuple[str, ...] = ()) -> None:
    async def main() -> None:
        admin = Admin(remote, tmp_path, allowed_hosts=allowed_hosts)
        await admin.server.start()
        task = asyncio.create_task(admin.reconciler.run()) if run else None
        try:
            await body(admin)
        finally:
            if task is not None:
                admin.reconciler.stop()
                await asyncio.wait_for(task, WAIT_S)
            await admin.server.close()

    asyncio.run(asyncio.wait_for(main(), 60))


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT_S):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


def test_health_and_readiness_follow_the_first_good_publish(remote: Remote, tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        assert await admin.request("GET", "/healthz") == (200, b"ok\n")
        assert (await admin.request("GET", "/readyz"))[0] == 503
        remote.commit({"BROKEN": "", "mesh.yaml": "x\n"})
        assert await admin.reconciler.reconcile_once() is SyncResult.VALIDATION_FAILED
        assert (await admin.request("GET", "/readyz"))[0] == 503  # a rejected commit does not make us ready
        remote.commit({"BROKEN": None, "mesh.yaml": "good\n"})
        assert await admin.reconciler.reconcile_once() is SyncResult.SYNCED
        assert await admin.request("GET", "/readyz") == (200, b"ready\n")

    serve(remote, tmp_path, body)


def test_metrics_and_status_after_a_rejected_commit(remote: Remote, tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        good = remote.commit({"mesh.yaml": "good\n"})
        await admin.reconciler.reconcile_once()
        bad = remote.commit({"BROKEN": ""}, "broken policy")
        await admin.reconciler.reconcile_once()
        observer = XdsObserver(admin.reconciler.metrics)
        observer.on_connect("sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", "sotw")
        observer.on_push(CDS, 120, latency_seconds=0.02)
        observer.on_nack(CDS)
        status, text = await admin.request("GET", "/metrics")
        assert status == 200
        metrics = text.decode()
        for line in ('meshward_commits_seen_total 2.0', 'meshward_commits_applied_total 1.0',
                     'meshward_commits_rejected_total{result="ValidationFailed"} 1.0',
                     'meshward_sync_result{result="ValidationFailed"} 1.0',
                     f'meshward_last_applied_commit_info{{author="t <t@e>",sha="{good}"}} 1.0',
                     'meshward_compile_seconds_count 2.0', 'meshward_xds_connected_proxies 1.0',
                     f'meshward_xds_nacks_total{{type_url="{CDS}"}} 1.0',
                     f'meshward_xds_push_bytes_total{{type_url="{CDS}"}} 120.0',
                     'meshward_xds_push_latency_seconds_count 1.0'):
            assert line in metrics.splitlines(), line
        status, data = await admin.request("GET", "/status")
        doc = json.loads(data)
        assert status == 200
        assert doc["serving"]["sha"] == good and doc["lastSeen"]["sha"] == bad
        assert doc["lastResult"] == "ValidationFailed"
        assert doc["lastRejected"]["commit"]["subject"] == "broken policy"
        assert doc["errors"] and doc["errors"][0].startswith("mesh.yaml:3:7: error MW0001:")

    serve(remote, tmp_path, body)


def test_webhook_triggers_a_fetch_and_bad_ones_change_nothing(remote: Remote, tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        first = remote.commit({"mesh.yaml": "v1\n"})
        await until(lambda: admin.cache.revisions == [first], "initial commit served")
        polls = admin.source.polls
        second = remote.commit({"mesh.yaml": "v2\n"})
        for bad in (await admin.push_hook(secret=b"wrong"), await admin.request("POST", "/webhook", b"{}")):
            assert bad[0] == 401
        assert (await admin.push_hook("refs/heads/feature"))[0] == 202  # accepted, ignored
        await asyncio.sleep(0.3)  # give a wrong trigger the chance to show
        assert admin.source.polls == polls and admin.cache.revisions == [first]
        status, reply = await admin.push_hook()
        assert status == 202 and json.loads(reply)["result"] == "Triggered"
        await until(lambda: admin.cache.revisions == [first, second], "pushed commit served after webhook")
        polls = admin.source.polls
        assert (await admin.push_hook())[0] == 202  # a replay: one more fetch, nothing new
        await until(lambda: admin.source.polls == polls + 1, "replay fetched")
        assert admin.cache.revisions == [first, second]
        metrics = (await admin.request("GET", "/metrics"))[1].decode()
        assert 'meshward_webhook_requests_total{result="Unauthorized"} 2.0' in metrics

    serve(remote, tmp_path, body, run=True)


def test_debug_endpoints(remote: Remote, tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        status, data = await admin.request("GET", "/debug/proxies")
        assert status == 200
        assert json.loads(data) == [{"node_id": "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", "types": ["a", "b"]}]
        assert await admin.request("GET", "/debug/config?node=known") == (200, b'{\n  "node": "known"\n}\n')
        assert await admin.request("GET", "/debug/config?node=unknown") == (404, b"unknown proxy unknown: no workload\n")
        assert (await admin.request("GET", "/debug/config"))[0] == 400
        assert await admin.request("GET", "/debug/describe?node=known") == (200, b'{\n  "node": "known"\n}\n')
        assert (await admin.request("GET", "/debug/describe?node=unknown"))[0] == 404
        assert await admin.request("GET", "/debug/describe?node=early") == (503, b"no good commit published yet\n")

    serve(remote, tmp_path, body)


def test_malformed_requests_get_4xx_and_the_server_keeps_serving(remote: Remote, tmp_path: Path) -> None:
    cases: list[tuple[bytes, int]] = [
        (b"garbage\r\n\r\n", 400),
        (b"GET /healthz\r\n\r\n", 400),
        (b"GET healthz HTTP/1.1\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"POST /webhook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        (b"POST /webhook HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 400),
        (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"GET /webhook HTTP/1.1\r\n\r\n", 405),
        (b"DELETE /healthz HTTP/1.1\r\n\r\n", 405),
        (b"GET /healthz", 400),  # connection closed mid-request (we half-close below)
    ]

    async def body(admin: Admin) -> None:
        for data, expected in cases:
            got = await _send_and_half_close(admin, data)
            assert got == expected, (data[:40], got)
        assert await admin.request("GET", "/healthz") == (200, b"ok\n")
        assert await admin.request("HEAD", "/healthz") == (200, b"ok\n")

    serve(remote, tmp_path, body)


async def _send_and_half_close(admin: Admin, data: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", admin.server.port)
    try:
        writer.write(data)
        writer.write_eof()
        await writer.drain()
        response: Any = await asyncio.wait_for(reader.read(), WAIT_S)
    finally:
        writer.close()
        await writer.wait_closed()
    return int(response.split(b" ", 2)[1])


def test_debug_is_refused_to_a_peer_that_is_not_loopback(remote: Remote, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests connect over loopback only, so the peer the server sees is faked: one of TEST-NET-3.
    monkeypatch.setattr(admin_mod, "_peer_host", lambda writer: "203.0.113.7")

    async def body(admin: Admin) -> None:
        assert await admin.request("GET", "/debug/proxies") == (403, b"/debug/* is served to loopback clients only\n")
        assert (await admin.request("GET", "/debug/config?node=known"))[0] == 403
        assert (await admin.request("GET", "/debug/describe?node=known"))[0] == 403
        assert (await admin.request("GET", "/status"))[0] == 200  # the rest of the port is the operator's choice

    serve(remote, tmp_path, body)


def test_a_name_re_pointed_at_loopback_is_refused(remote: Remote, tmp_path: Path) -> None:
    """DNS rebinding: a page of evil.example points its name at 127.0.0.1, so the browser connects from loopback
    but still sends Host: evil.example. Nothing but the probes and the signed webhook answers it."""
    async def body(admin: Admin) -> None:
        status, text = await admin.request("GET", "/debug/config?node=known", host="evil.example:15014")
        assert status == 403 and b"not at Host 'evil.example:15014'" in text and b"DNS rebinding" in text
        for path in ("/mesh/graph", "/mesh", "/status", "/metrics", "/debug/proxies"):
            assert (await admin.request("GET", path, host="evil.example"))[0] == 403, path
        status, text = await admin.request("GET", "/status", host="evil.example")
        assert b"--admin-allowed-host" in text
        assert (await admin.request("GET", "/status", host=""))[0] == 403  # no Host at all
        assert await admin.request("GET", "/healthz", host="evil.example") == (200, b"ok\n")
        assert (await admin.request("GET", "/readyz", host="evil.example"))[0] == 503  # answered: not ready yet
        assert (await admin.push_hook(host="hooks.example.com"))[0] == 202  # the public name, via an ingress

    serve(remote, tmp_path, body)


def test_port_forward_probe_and_scrape_hosts_are_answered(remote: Remote, tmp_path: Path) -> None:
    async def body(admin: Admin) -> None:
        # `kubectl port-forward deploy/meshward 15014` relays the client's Host: localhost or 127.0.0.1
        for host in ("localhost:15014", "127.0.0.1:8080", "[::1]:15014", "LOCALHOST"):
            assert (await admin.request("GET", "/debug/config?node=known", host=host))[0] == 200, host
            assert (await admin.request("GET", "/mesh/graph", host=host))[0] == 200, host
        # kubelet probes and Prometheus (pod discovery) send the pod's IP
        assert await admin.request("GET", "/healthz", host="10.244.1.7:15014") == (200, b"ok\n")
        assert (await admin.request("GET", "/metrics", host="10.244.1.7:15014"))[0] == 200
        # a name the operator listed opens the port, not /debug/* (loopback Host only)
        assert (await admin.request("GET", "/status", host="meshward.meshward-system.svc:15014"))[0] == 200
        assert (await admin.request("GET", "/debug/proxies", host="meshward.meshward-system.svc"))[0] == 403
        assert (await admin.request("GET", "/debug/proxies", host="10.244.1.7:15014"))[0] == 403

    serve(remote, tmp_path, body, allowed_hosts=("meshward.meshward-system.svc",))
