"""A real headless Chromium (Debian's `chromium`) driven over the Chrome DevTools Protocol with aiohttp's websocket
client: it opens a URL, and the tab's `evaluate` runs an expression in it and returns the value (Runtime.evaluate,
returnByValue), so a test reads the DOM the page's own script rendered.

Chromium is started in its own process group with a throwaway profile, no network services of its own (no sync,
component updates or background requests: the machine may have no internet) and `--remote-debugging-port=0`; the
port it took is read from `DevToolsActivePort` in the profile. The whole group is killed on close. Where the binary
is missing the tests skip on a workstation and fail in CI (`CI` set, as `.ci/run` does), like the Prometheus tests.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0")
START_S = 30.0


def binary() -> str:
    """Chromium's path; skips (fails in CI) when it is not installed."""
    found = shutil.which("chromium")
    if found:
        return found
    message = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group, ten seconds, then SIGKILL: Chromium's renderers, `serve`'s children."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=10)


class Page:
    """One tab's DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        while True:  # events (none enabled) and nothing else come between; bounded by the caller's timeout
            message = await self._ws.receive_json()
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await asyncio.wait_for(self.call("Runtime.evaluate", expression=expression, returnByValue=True), 10)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, ok: Any, what: str, deadline_s: float = 20.0) -> Any:
        """Evaluate until `ok(value)` holds; the last value in the failure otherwise."""
        end = time.monotonic() + deadline_s
        while True:
            value = await self.evaluate(expression)
            if ok(value):
                return value
            if time.monotonic() > end:
                raise AssertionError(f"{what}: not within {deadline_s:.0f}s; the page shows {value}")
            await asyncio.sleep(0.2)


class Chromium:
    """Chromium showing one URL, in its own process group with a throwaway profile."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.profile = workdir / "chromium-profile"
        self.profile.mkdir(parents=True)
        with (workdir / "chromium.log").open("wb") as log:
            self.proc = subprocess.Popen([binary(), *FLAGS, f"--user-data-dir={self.profile}", url], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @asynccontextmanager
    async def page(self) -> AsyncIterator[Page]:
        """The DevTools connection to the tab it opened."""
        port = await _devtools_port(self.profile / "DevToolsActivePort", self.proc)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            ws_url = await _page_target(session, port)
            async with session.ws_connect(ws_url, max_msg_size=16 << 20) as ws:
                yield Page(ws)

    def stop(self) -> None:
        stop_group(self.proc)


async def _devtools_port(path: Path, proc: subprocess.Popen[bytes]) -> int:
    end = time.monotonic() + START_S
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        lines = path.read_text().splitlines() if path.exists() else []
        if lines and lines[0].isdigit():
            return int(lines[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"chromium wrote no {path.name} within {START_S:.0f}s")


async def _page_target(session: aiohttp.ClientSession, port: int) -> str:
    end = time.monotonic() + START_S
    while time.monotonic() < end:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
        if pages:
            return str(pages[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"chromium opened no page within {START_S:.0f}s")
