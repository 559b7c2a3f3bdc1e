"""A real Prometheus server (Debian's `prometheus` package) for the metrics tests: its own config and storage in a
temporary directory, 127.0.0.1 and a free port, a 1s scrape interval, bounded waits, always stopped.

Where the binary is missing the tests skip on a workstation but fail in CI (`CI` set, as GitHub Actions and
`.ci/run` do), so the metrics proof cannot silently disappear from the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from reconciler.ops import envoy_process


def binary() -> str:
    """The prometheus binary; skips (fails in CI) when it is not installed."""
    found = shutil.which("prometheus")
    if found:
        return found
    message = "prometheus is not installed (apt-get install prometheus; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Prometheus:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector; raises AssertionError when Prometheus refuses the expression."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{expr}: {err.code} {err.read().decode(errors='replace')}") from None
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, expr: str, by: str) -> dict[str, float]:
        """{label value: sample value} of an instant query grouped by one label."""
        return {s["metric"].get(by, ""): float(s["value"][1]) for s in self.query(expr)}

    def eventually(self, expr: str, by: str, ok: Any, deadline_s: float = 20.0) -> dict[str, float]:
        """Poll until `ok(values)` holds (scrapes and Envoy's stats flushes are periodic); bounded."""
        end = time.monotonic() + deadline_s
        while True:
            got = self.values(expr, by)
            if ok(got):
                return got
            assert time.monotonic() < end, f"not within {deadline_s}s: {expr} -> {got}"
            time.sleep(0.25)


@contextmanager
def running(targets: list[str], workdir: Path) -> Iterator[Prometheus]:
    """Prometheus scraping each `HOST:PORT` target's /stats/prometheus every second."""
    port = envoy_process.free_port()
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "envoy", "metrics_path": "/stats/prometheus",
                            "static_configs": [{"targets": targets}]}],
    }))
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary(), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        server = Prometheus(port)
        _wait_ready(server, proc, workdir / "prometheus.log")
        yield server
    finally:
        envoy_process.stop(proc)
        log.close()


def _wait_ready(server: Prometheus, proc: subprocess.Popen[bytes], log: Path, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        assert proc.poll() is None, f"prometheus exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < end, f"prometheus not ready within {deadline_s}s: {log.read_text()[-2000:]}"
        time.sleep(0.1)
