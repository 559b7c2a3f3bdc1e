"""End to end: a real git repository, the reconciler, real Envoy over ADS (SotW and delta), real HTTP backends.

Uses the policies-example topology (backends on 127.0.0.x:9080, the productpage sidecar's egress on 127.0.0.1:9080),
so every test of this module runs in one process, one after the other.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import loop_thread
import pytest

from reconciler import serve
from reconciler.ops import demo, envoy_process
from reconciler.xds import bootstrap

pytestmark = pytest.mark.envoy

SIDECAR_EGRESS = ("127.0.0.1", 9080)


def _addresses_free() -> bool:
    for address in [*demo.BACKENDS.values(), SIDECAR_EGRESS[0]]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does; TIME_WAIT is fine
            try:
                s.bind((address, 9080))
            except OSError:
                return False
    return True


class Harness:
    """The reconciler on an event loop in a background thread, so the test body stays synchronous."""

    def __init__(self, root: Path) -> None:
        self.bare, self.work = demo.make_repo(root)
        self.loop = asyncio.new_event_loop()
        config = serve.ServeConfig(repo=str(self.bare), path="policies", poll_interval=0.5,
                                   xds_address="127.0.0.1:0", admin_address="127.0.0.1:0")
        self.server = serve.Server(config, root / "reconciler")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self.server.start())
        self.runner = asyncio.run_coroutine_threadsafe(self.server.run(), self.loop)

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def admin(self, path: str) -> object:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server.admin.port}{path}", timeout=5) as resp:
            return json.loads(resp.read())

    def close(self) -> None:
        try:
            self._call(self.server.stop())
        finally:
            loop_thread.close(self.loop, self.thread)  # the runner too, if stop() has not ended it yet


def _split(n: int = 200) -> collections.Counter[str]:
    return collections.Counter(demo._request(demo.SIDECAR_URL, "reviews") for _ in range(n))


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"condition not reached within {timeout:.0f}s")


def _serving(h: Harness) -> str:
    serving = h.admin("/status").get("serving") or {}  # type: ignore[union-attr]
    return str(serving.get("sha", ""))


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    if not demo.EXAMPLE.is_dir() or shutil.which("git") is None:
        pytest.skip("policies-example or git missing")
    if not _addresses_free():
        pytest.skip("the policies-example loopback addresses (127.0.0.x:9080) are in use")
    backends = [demo._backend(name, address) for name, address in demo.BACKENDS.items()]
    h = Harness(tmp_path_factory.mktemp("e2e"))
    try:
        yield h
    finally:
        h.close()
        for b in backends:
            b.shutdown()
            b.server_close()


def test_demo_stopped_by_sigterm_cleans_up(tmp_path: Path) -> None:
    """Runs first in this module: the module's harness (created at its first use) holds the same addresses."""
    if not _addresses_free():
        pytest.skip("the policies-example loopback addresses (127.0.0.x:9080) are in use")
    out = tmp_path / "demo.out"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with out.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "meshward", "demo"], stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "TMPDIR": str(tmp), "COLUMNS": "120"})
    try:
        # Envoys started, traffic running: two Envoys and the reconciler starting on a loaded machine can take
        # longer than the module's usual 30 s; the wait only bounds a failure.
        _eventually(lambda: "gateway: curl" in out.read_text(), 120)
        assert [p.name[:14] for p in tmp.iterdir()] == ["meshward-demo-"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    log = out.read_text()
    assert proc.returncode == 0 and "Traceback" not in log and "stopped" in log, log
    assert not list(tmp.iterdir()), "the demo's temporary directory is removed"


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
def test_commit_flow_with_real_envoy(harness: Harness, delta: bool, tmp_path: Path) -> None:
    h = harness
    mode = "SotW" if not delta else "delta"
    _set_weights(h, 80, 20)  # the other mode's test may have left other weights
    with _envoy(h, delta, tmp_path):
        _eventually(lambda: _serving(h) == _head(h))
        # The proxy has the 80/20 config once v1 serves most requests (the previous test may have left v2 at 100%).
        _eventually(lambda: _split(40)["v1"] >= 20)
        first = _split(300)
        assert first["v1"] + first["v2"] == 300, (mode, first)
        assert 0.12 < first["v2"] / 300 < 0.30, (mode, first)  # 20% canary, generous binomial bounds

        # A new commit changing the weights takes effect within a bounded time.
        target = (0, 100) if not delta else (100, 0)
        _set_weights(h, *target)
        want = "v2" if target[1] == 100 else "v1"
        _eventually(lambda: _serving(h) == _head(h))
        _eventually(lambda: _split(20) == collections.Counter({want: 20}))
        good = _serving(h)

        # A commit that istioctl analyze flags (an unknown subset) but Pilot serves is served, the finding on
        # /status with Istio's code.
        reviews = h.work / "policies" / demo.REVIEWS_FILE
        reviews.write_text(reviews.read_text().replace("subset: v3", "subset: v9"))
        demo._git(h.work, "commit", "-q", "-am", "flagged: unknown subset")
        demo._git(h.work, "push", "-q", "origin", "main")
        h.server.loop.trigger()
        _eventually(lambda: _serving(h) == _head(h))
        status = h.admin("/status")
        assert status["lastResult"] == "Synced", status  # type: ignore[index]
        assert any("MW0303" in line and "[IST0101]" in line for line in status["flagged"]), status  # type: ignore[index]
        good = _serving(h)

        # A commit Istio's webhook would reject (an unknown field) is not served; traffic keeps flowing on the old
        # config; status names the error.
        reviews.write_text(reviews.read_text().replace("subset: v9", "subset: v3").replace("weight:", "wieght:", 1))
        demo._git(h.work, "commit", "-q", "-am", "broken: unknown field")
        demo._git(h.work, "push", "-q", "origin", "main")
        h.server.loop.trigger()
        _eventually(lambda: h.admin("/status").get("lastResult") == "ValidationFailed")  # type: ignore[union-attr]
        status = h.admin("/status")
        assert _serving(h) == good
        assert any("MW0101" in line and "reviews.yaml:" in line for line in status["errors"]), status  # type: ignore[index]

        # The fix recovers on its own.
        reviews.write_text(reviews.read_text().replace("wieght:", "weight:"))
        demo._git(h.work, "commit", "-q", "-am", "fix subset")
        demo._git(h.work, "push", "-q", "origin", "main")
        h.server.loop.trigger()
        _eventually(lambda: h.admin("/status").get("lastResult") == "Synced" and _serving(h) != good)  # type: ignore[union-attr]
        assert _split(20) == collections.Counter({want: 20})
        held = h.admin(f"/debug/config?node={urllib.parse.quote(demo.SIDECAR)}")
        clusters = held["type.googleapis.com/envoy.config.cluster.v3.Cluster"]  # type: ignore[index]
        assert any(c["name"] == "outbound|9080|v3|reviews.bookinfo.svc.cluster.local" for c in clusters)
        (proxy,) = h.admin("/debug/proxies")  # type: ignore[misc]
        assert proxy["mode"] == ("delta" if delta else "sotw")
        assert all(t["last_nack"] is None for t in proxy["types"].values()), proxy  # a NACK is a compiler bug
        _eventually(lambda: h.admin("/debug/proxies")[0]["state"] == "SYNCED")  # type: ignore[index]


def _head(h: Harness) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=h.work, capture_output=True, text=True,
                          check=True).stdout.strip()


def _set_weights(h: Harness, v1: int, v2: int) -> None:
    path = h.work / "policies" / demo.REVIEWS_FILE
    lines = path.read_text().splitlines(keepends=True)
    seen = 0
    for i, line in enumerate(lines):
        if line.strip().startswith("weight:"):
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f"{indent}weight: {(v1, v2)[seen]}\n"
            seen += 1
    path.write_text("".join(lines))
    demo._git(h.work, "commit", "-q", "--allow-empty", "-am", f"weights {v1}/{v2}")
    demo._git(h.work, "push", "-q", "origin", "main")
    h.server.loop.trigger()


@contextlib.contextmanager
def _envoy(h: Harness, delta: bool, workdir: Path) -> Iterator[envoy_process.EnvoyProcess]:
    config = bootstrap.render(demo.SIDECAR, f"127.0.0.1:{h.server.xds_port}", delta=delta,
                              admin_port=envoy_process.free_port())
    path = workdir / "envoy.json"
    path.write_text(json.dumps(config))
    with envoy_process.running(path, log=workdir / "envoy.log") as proc:
        yield proc
