"""`meshward serve` in-process on an event loop thread, for tests that watch a (fake) cluster."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import loop_thread

from reconciler import serve


class ServeHarness:
    def __init__(self, config: serve.ServeConfig, workdir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = serve.Server(config, workdir)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        try:
            self._call(self.server.start())
        except BaseException:
            loop_thread.close(self.loop, self.thread)
            raise
        self.runner = asyncio.run_coroutine_threadsafe(self.server.run(), self.loop)

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server.admin.port}{path}", timeout=5) as resp:
            return json.loads(resp.read())

    def status(self) -> dict[str, Any]:
        return dict(self.get("/status"))

    def config(self, node: str) -> dict[str, Any]:
        """The proxy's config dump, or {"error": why} when the server answers 404 or 503."""
        try:
            return dict(self.get(f"/debug/config?node={urllib.parse.quote(node)}"))
        except urllib.error.HTTPError as err:
            return {"error": err.read().decode()}

    def trigger(self) -> None:
        self.loop.call_soon_threadsafe(self.server.loop.trigger)

    def close(self) -> None:
        try:
            self._call(self.server.stop())
        finally:
            loop_thread.close(self.loop, self.thread)  # the runner too, if stop() has not ended it yet


def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Until `check()` is truthy (returned); an AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, KeyError, TypeError, IndexError) as err:  # not there yet
            last = err
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s (last: {last!r})")


def endpoint_ports(config: dict[str, Any], cluster: str) -> list[int]:
    """Port numbers of the endpoints the dump holds for `cluster`."""
    from meshxds import type_urls

    for cla in config.get(type_urls.ENDPOINT, []):
        if cla.get("cluster_name") == cluster:
            return sorted(int(lb["endpoint"]["address"]["socket_address"]["port_value"])
                          for group in cla.get("endpoints", []) for lb in group.get("lb_endpoints", []))
    return []
