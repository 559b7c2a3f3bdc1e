"""A Zipkin collector for tests that speaks the real wire protocol: Zipkin v2 JSON, a list of spans POSTed to
`/api/v2/spans`, as Envoy's zipkin tracer sends them (collector_endpoint_version HTTP_JSON, chunked). An aiohttp
server on its own thread and event loop binds a loopback address on a free port and keeps every span it receives;
a test waits for spans with a bounded deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

PATH = "/api/v2/spans"


class ZipkinCollector:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        spans = await request.json()
        with self._lock:
            self.content_types.append(request.content_type)
            self.spans.extend(spans)
        return web.Response(status=202)

    def wait_for(self, count: int, deadline_s: float = 20.0) -> list[dict[str, Any]]:
        """The spans received, once there are at least `count` of them."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} spans after {deadline_s}s: {self.spans!r}")

    def after(self, seconds: float) -> list[dict[str, Any]]:
        """The spans received by `seconds` from now (for asserting that none come)."""
        time.sleep(seconds)
        with self._lock:
            return list(self.spans)


@contextmanager
def running(address: str) -> Iterator[tuple[ZipkinCollector, int]]:
    """A collector serving on (address, a free port) until the block ends; yields it and its port."""
    collector, loop = ZipkinCollector(), asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post(PATH, collector.handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, address, 0)
    loop.run_until_complete(site.start())
    port = int(runner.addresses[0][1])
    thread = threading.Thread(target=loop.run_forever, name="zipkin-collector", daemon=True)
    thread.start()
    try:
        yield collector, port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
