"""Tiny HTTP backends for the traffic tests: each binds its own loopback address and a free port, names itself in a
response header, and can be told to fail or to be slow, so a test can see which endpoint Envoy picked and what
request it forwarded.

Every response carries `x-backend: NAME`, and a JSON body {"backend", "path", "host", "headers"} echoing the request
as the backend saw it (after any rewrite Envoy made).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclasses.dataclass
class Behavior:
    """What a backend does; mutable so a test can change it while the server runs."""

    fail_every: int = 0  # answer 503 on every Nth request (1 = always); 0 = never
    delay_s: float = 0.0  # sleep before answering


class Backend:
    """A threaded HTTP/1.1 server on (address, free port), counting the requests it answered."""

    def __init__(self, name: str, address: str, behavior: Behavior | None = None) -> None:
        self.name = name
        self.behavior = behavior or Behavior()
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((address, 0), _handler_for(self))
        self._server.daemon_threads = True
        self.address: str = address
        self.port: int = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"backend-{name}",
            daemon=True,
        )

    def start(self) -> Backend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def next_status(self) -> int:
        """Count this request and decide its status (the Nth, 2Nth, ... fail when fail_every is N)."""
        with self._lock:
            self.requests += 1
            n = self.behavior.fail_every
            return 503 if n and self.requests % n == 0 else 200


def _handler_for(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so Envoy's upstream pool reuses connections
        # One buffered write per response and no Nagle: headers and body written apart would wait for a delayed ACK.
        wbufsize = -1
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            status = backend.next_status()
            if backend.behavior.delay_s:
                time.sleep(backend.behavior.delay_s)
            body = json.dumps(
                {
                    "backend": backend.name,
                    "path": self.path,
                    "host": self.headers.get("host", ""),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            ).encode()
            self.send_response(status)
            self.send_header("x-backend", backend.name)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: hundreds of requests per test

    return Handler


@contextmanager
def running(backends: Mapping[str, Backend]) -> Iterator[Mapping[str, Backend]]:
    """Start all backends; stop them all on the way out, whatever happened."""
    started: list[Backend] = []
    try:
        for b in backends.values():
            started.append(b.start())
        yield backends
    finally:
        for b in started:
            b.stop()


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    elapsed_s: float

    @property
    def backend(self) -> str | None:
        return self.headers.get("x-backend")

    def echo(self) -> dict[str, Any]:
        """The backend's view of the request (its JSON body)."""
        data: dict[str, Any] = json.loads(self.body)
        return data


def get(
    port: int,
    path: str,
    host: str,
    headers: Mapping[str, str] | None = None,
    *,
    address: str = "127.0.0.1",
    timeout_s: float = 10.0,
) -> Reply:
    """One GET on a fresh connection (redirects are not followed), with the Host header given."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout_s)
    start = time.monotonic()
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        return Reply(
            resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, time.monotonic() - start
        )
    finally:
        conn.close()
