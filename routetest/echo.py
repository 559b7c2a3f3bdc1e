"""Echo backends: one loopback port per upstream cluster, each recording what it received.

A test's proxy sends each cluster's traffic to that cluster's port, so a request's record says which cluster Envoy
picked, and the method, path (after any rewrite) and headers the backend saw, mirrored copies included. Records are
kept by the test call's id (a request header). All ports are served by one aiohttp server on one background event
loop; the sockets are bound by the OS (port 0), so no port is guessed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Self

from aiohttp import web

CALL_HEADER = "x-meshward-test-call"  # the call's id, logged by Envoy and recorded here
STATUS_HEADER = "x-meshward-test-status"  # the status the backend answers with (retries are judged so)


@dataclasses.dataclass(frozen=True)
class Received:
    cluster: str
    method: str
    path: str  # with the query string, as the backend received it
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ","


class Echo:
    """The backends of one test run. Use as a context manager; `ports` binds ports for new cluster names."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="routetest-echo", daemon=True)
        self._runner: web.ServerRunner | None = None
        self._clusters: dict[int, str] = {}  # port -> cluster
        self._ports: dict[str, int] = {}  # cluster -> port
        self._records: dict[str, list[Received]] = {}
        self._changed = threading.Condition()

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self._setup())
        return self

    async def _setup(self) -> None:
        self._runner = web.ServerRunner(web.Server(self._handle), access_log=None)  # on the loop it serves on
        await self._runner.setup()

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    def ports(self, clusters: Iterable[str]) -> dict[str, int]:
        """Each cluster's backend port, bound now for the clusters not seen before."""
        for name in sorted(set(clusters) - set(self._ports)):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            assert self._runner is not None
            self._call(web.SockSite(self._runner, sock).start())
            self._ports[name], self._clusters[port] = port, name
        return dict(self._ports)

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        port = request.transport.get_extra_info("sockname")[1] if request.transport is not None else 0
        await request.read()
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            name = key.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        record = Received(self._clusters.get(port, ""), request.method, request.raw_path, headers)
        with self._changed:
            self._records.setdefault(headers.get(CALL_HEADER, ""), []).append(record)
            self._changed.notify_all()
        status = headers.get(STATUS_HEADER, "200")
        return web.Response(status=int(status) if status.isdigit() else 200, text="echo\n")

    def received(self, call_id: str) -> list[Received]:
        with self._changed:
            return list(self._records.get(call_id, ()))

    def wait(self, call_id: str, count: int, deadline_s: float) -> list[Received]:
        """The call's records once there are `count` of them (a mirrored copy arrives after the response), or
        what there is when the deadline passes."""
        end = time.monotonic() + deadline_s
        with self._changed:
            while len(self._records.get(call_id, ())) < count and time.monotonic() < end:
                self._changed.wait(timeout=max(end - time.monotonic(), 0.0))
            return list(self._records.get(call_id, ()))

    def forget(self, call_ids: Iterable[str]) -> None:
        with self._changed:
            for call_id in call_ids:
                self._records.pop(call_id, None)
