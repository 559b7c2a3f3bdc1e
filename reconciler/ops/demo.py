"""`meshward demo`: the whole product on one machine, in one command.

It makes a git repository from `policies-example/`, runs the reconciler on it, starts real Envoy processes (the
ingress gateway and the productpage sidecar) connected over ADS, and small HTTP backends on the loopback addresses
the example's WorkloadEntries name. Then it sends traffic through the sidecar and shows the reviews split live;
after a while it commits a weight change to the repository and the split moves. Ctrl-C or SIGTERM stops everything
it started and removes its temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import http.server
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from rich.console import Console
from rich.live import Live
from rich.table import Table

from reconciler import serve
from reconciler.ops import envoy_process
from reconciler.xds import bootstrap

EXAMPLE = Path(__file__).resolve().parents[2] / "policies-example"
BACKENDS = {"productpage-v1": "127.0.0.11", "reviews-v1": "127.0.0.21", "reviews-v2": "127.0.0.22",
            "reviews-v3": "127.0.0.23", "ratings-v1": "127.0.0.31", "details-v1": "127.0.0.41"}
SIDECAR = "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local"
GATEWAY = "router~127.0.0.10~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
REVIEWS_FILE = "bookinfo/routing/reviews.yaml"
SIDECAR_URL = "http://127.0.0.1:9080/reviews/0"


def _backend(name: str, address: str) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"served_by": name, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("x-served-by", name)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((address, 9080), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name=f"backend-{name}").start()
    return server


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=meshward demo", "-c", "user.email=demo@meshward.invalid", *args],
                   cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path) -> tuple[Path, Path]:
    """A bare 'remote' and a clone holding policies-example, pushed."""
    bare, work = root / "policy.git", root / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    shutil.copytree(EXAMPLE, work / "policies")
    _git(work, "checkout", "-q", "-b", "main")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "bookinfo policy from policies-example")
    _git(work, "push", "-q", "origin", "main")
    return bare, work


def commit_weights(work: Path, v1: int, v2: int) -> None:
    path = work / "policies" / REVIEWS_FILE
    text = path.read_text()
    text = text.replace("weight: 80", f"weight: {v1}").replace("weight: 20", f"weight: {v2}")
    path.write_text(text)
    _git(work, "commit", "-q", "-am", f"reviews canary: v1 {v1}% / v2 {v2}%")
    _git(work, "push", "-q", "origin", "main")


@contextlib.contextmanager
def envoy(node: str, xds_port: int, workdir: Path) -> Iterator[envoy_process.EnvoyProcess]:
    """A real Envoy connected to the reconciler over ADS as `node`, with Istio's metrics endpoint on its own
    address (the node id's IP), port 15090."""
    admin_port = envoy_process.free_port()
    config = bootstrap.render(node, f"127.0.0.1:{xds_port}", delta=False, admin_port=admin_port,
                              stats_address=f"{node.split('~')[1]}:15090")
    path = workdir / f"{node.split('~')[0]}-{admin_port}.json"
    path.write_text(json.dumps(config))
    with envoy_process.running(path, log=path.with_suffix(".log")) as proc:
        yield proc


def _request(url: str, host: str) -> str:
    req = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return str(resp.headers.get("x-bookinfo-subset") or resp.headers.get("x-served-by") or resp.status)
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError):
        return "unreachable"


def _table(counts: collections.Counter[str], phase: str, status: str) -> Table:
    total = sum(counts.values()) or 1
    table = Table(title=f"reviews through the productpage sidecar - {phase}", caption=status)
    table.add_column("served by")
    table.add_column("requests", justify="right")
    table.add_column("share", justify="right")
    table.add_column("")
    for key, n in sorted(counts.items()):
        table.add_row(key, str(n), f"{100 * n / total:5.1f}%", "#" * round(40 * n / total))
    return table


def summary(counts: collections.Counter[str], phase: str, serving: str) -> str:
    """The split as one plain line: what a CI log or a screen reader gets instead of the live table."""
    total = sum(counts.values()) or 1
    split = ", ".join(f"{key} {n} ({100 * n / total:.0f}%)" for key, n in sorted(counts.items()))
    return f"reviews through the productpage sidecar, {phase}, serving commit {serving}: {split}"


class Report:
    """Where the split goes: a live table on a terminal; anywhere else (a CI log, a pipe, a screen reader) one
    `summary` line when the phase or the serving commit changes, and every `every` seconds in between."""

    def __init__(self, console: Console, every: float = 5.0) -> None:
        self._console = console
        self._every = every
        self._live: Live | None = None
        self._last: tuple[str, str] | None = None
        self._last_at = 0.0

    def __enter__(self) -> Self:
        if self._console.is_terminal:
            self._live = Live(console=self._console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(self, counts: collections.Counter[str], phase: str, serving: str, now: float) -> None:
        if self._live is not None:
            self._live.update(_table(counts, phase, f"serving commit {serving}; Ctrl-C to stop"))
            return
        if counts and ((phase, serving) != self._last or now - self._last_at >= self._every):
            self._console.print(summary(counts, phase, serving), highlight=False, soft_wrap=True)
            self._last, self._last_at = (phase, serving), now


async def _traffic(console: Console, server: serve.Server, work: Path, duration: float) -> None:
    window: collections.deque[str] = collections.deque(maxlen=200)
    started, changed = time.monotonic(), False
    with Report(console) as report:
        while duration <= 0 or time.monotonic() - started < duration:
            for _ in range(10):
                window.append(await asyncio.to_thread(_request, SIDECAR_URL, "reviews"))
            elapsed = time.monotonic() - started
            if not changed and elapsed > max(10.0, duration / 2 if duration > 0 else 20.0):
                await asyncio.to_thread(commit_weights, work, 50, 50)
                server.loop.trigger()
                changed = True
                window.clear()
            st = server.loop.status
            serving = getattr(getattr(st, "serving", None), "short", "-")
            phase = "after commit 'v1 50% / v2 50%'" if changed else "policy as committed (v1 80% / v2 20%)"
            report.update(collections.Counter(window), phase, serving, time.monotonic())
            await asyncio.sleep(0.2)


async def run_demo(duration: float, console: Console) -> None:
    # SIGTERM unwinds like Ctrl-C does, so the Envoys, the backends and the temporary directory are cleaned up.
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    with tempfile.TemporaryDirectory(prefix="meshward-demo-") as tmp:
        root = Path(tmp)
        bare, work = make_repo(root)
        backends = [_backend(name, address) for name, address in BACKENDS.items()]
        config = serve.ServeConfig(repo=str(bare), path="policies", poll_interval=2.0,
                                   xds_address=f"127.0.0.1:{envoy_process.free_port()}", admin_address=f"127.0.0.1:{envoy_process.free_port()}")
        server = serve.Server(config, root / "reconciler")
        await server.start()
        runner = asyncio.create_task(server.run())
        console.print(f"reconciler: xDS 127.0.0.1:{server.xds_port}, admin http://{config.admin_address} "
                      f"(try /mesh in a browser, /status, /debug/proxies, /metrics)")
        try:
            with envoy(SIDECAR, server.xds_port, root), envoy(GATEWAY, server.xds_port, root):
                console.print("gateway: curl -H 'Host: bookinfo.example.com' http://127.0.0.10:8080/productpage")
                console.print("metrics: curl http://127.0.0.10:15090/stats/prometheus (gateway), "
                              "http://127.0.0.11:15090/stats/prometheus (sidecar)")
                await _traffic(console, server, work, duration)
        finally:
            await server.stop()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            for b in backends:
                b.shutdown()
                b.server_close()


def main(args: argparse.Namespace) -> int:
    console = Console()
    try:
        envoy_process.binary()
        asyncio.run(run_demo(args.duration, console))
    except FileNotFoundError as err:
        console.print(f"meshward demo: {err}")
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (run_demo)
        console.print("stopped")
    return 0
