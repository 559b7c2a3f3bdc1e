"""Trace collectors over HTTP for tests, speaking the real wire protocols Envoy's tracers send: Zipkin v2 JSON (a
list of spans POSTed to `/api/v2/spans`, chunked) and OTLP/HTTP (an ExportTraceServiceRequest, protobuf, POSTed to
the exporter's path). An aiohttp server on its own thread and event loop binds a loopback address on a free port
and keeps every span it receives; a test waits for spans with a bounded deadline. (OTLP over gRPC is
tests/otlp_collector.py's.)"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from otlp_collector import Span, attributes

ZIPKIN_PATH = "/api/v2/spans"
OTLP_PATH = "/v1/traces"
T = TypeVar("T")


def zipkin_spans(body: bytes) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = json.loads(body)
    return spans


def otlp_spans(body: bytes) -> list[Span]:
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    return [Span(span, attributes(group.resource.attributes)) for group in request.resource_spans
            for scope in group.instrumentation_library_spans for span in scope.spans]


class Collector(Generic[T]):
    """The spans received (decoded by `decode`), and each request's content type and headers."""

    def __init__(self, decode: Callable[[bytes], list[T]]) -> None:
        self.spans: list[T] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._decode = decode
        self._lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        spans = self._decode(await request.read())
        with self._lock:
            self.requests.append((request.content_type, {k.lower(): v for k, v in request.headers.items()}))
            self.spans.extend(spans)
        return web.Response(status=202 if request.path == ZIPKIN_PATH else 200)

    def wait_for(self, count: int, deadline_s: float = 20.0) -> list[T]:
        """The spans received, once there are at least `count` of them."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} spans after {deadline_s}s: {self.spans!r}")

    def after(self, seconds: float) -> list[T]:
        """The spans received by `seconds` from now (for asserting that none come)."""
        time.sleep(seconds)
        with self._lock:
            return list(self.spans)


@contextmanager
def running(address: str, path: str, decode: Callable[[bytes], list[T]]) -> Iterator[tuple[Collector[T], int]]:
    """A collector of POSTs to `path` on (address, a free port) until the block ends; yields it and its port."""
    collector, loop = Collector(decode), asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post(path, collector.handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, address, 0)
    loop.run_until_complete(site.start())
    port = int(runner.addresses[0][1])
    thread = threading.Thread(target=loop.run_forever, name="trace-collector", daemon=True)
    thread.start()
    try:
        yield collector, port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
