"""The agent's SDS server (`reconciler.identity.sds`, what `meshward agent` serves on its socket) holding secrets a
test made, on an event loop of its own thread: for Envoys whose compiled config takes the mesh identity (`default`,
`ROOTCA`) from the `sds-grpc` cluster, when the test is about the config rather than about the CA and the agent
(those are `tests/identity` and `tests/e2e/test_mesh_mtls.py`, every part its real command)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import loop_thread

from reconciler.identity import sds


@contextlib.contextmanager
def serving(socket_path: Path, credentials: sds.Credentials) -> Iterator[None]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="agent-sds", daemon=True)
    thread.start()

    async def start() -> sds.SdsServer:
        store = sds.SecretStore()
        await store.publish(credentials)
        server = sds.SdsServer(store)
        await server.start(socket_path)
        return server

    try:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
    finally:
        loop_thread.close(loop, thread)
