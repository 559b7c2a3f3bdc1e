"""Shared pieces of the proxyless gRPC tests: a policy tree around real loopback gRPC backends, meshward's ADS
server in-process, a gRPC bootstrap file, and the client subprocess (`proxyless_client.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from compiler import build
from reconciler.xds import bootstrap as bootstrap_mod
from reconciler.xds.ads import AdsOptions, AdsServer
from reconciler.xds.ads_status import NullObserver, ProxyStatus
from reconciler.xds.cache import SnapshotCache

R = TypeVar("R")
CLIENT = Path(__file__).with_name("proxyless_client.py")
HOST = "echo.demo.svc.cluster.local"
SERVICE_PORT = 7070
CLIENT_NODE = "sidecar~127.0.0.2~client.demo~demo.svc.cluster.local"
METHOD = "/meshward.test.Echo/Who"


def run(body: Callable[[], Awaitable[R]], timeout: float = 60.0) -> R:
    async def bounded() -> R:
        return await asyncio.wait_for(body(), timeout)
    return asyncio.run(bounded())


# ---- backends ------------------------------------------------------------------------------------------------

def _who(name: str) -> grpc.GenericRpcHandler:
    async def answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return name.encode()
    service, method = METHOD.strip("/").split("/")
    return grpc.method_handlers_generic_handler(service, {method: grpc.unary_unary_rpc_method_handler(answer)})


@contextlib.asynccontextmanager
async def backends(*names: str) -> AsyncIterator[dict[str, int]]:
    """One gRPC server per name on 127.0.0.1 (free ports); each answers every call with its own name."""
    servers: list[grpc.aio.Server] = []
    ports: dict[str, int] = {}
    try:
        for name in names:
            server = grpc.aio.server()
            server.add_generic_rpc_handlers([_who(name)])
            ports[name] = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            servers.append(server)
        yield ports
    finally:
        for server in servers:
            await server.stop(grace=None)


# ---- the policy tree -------------------------------------------------------------------------------------------

def write_tree(root: Path, ports: dict[str, int], *, default_subset: str = "v1") -> Path:
    """Service `echo` (port name grpc) over WorkloadEntries v1 and v2 on the backends' ports, a DestinationRule
    with both subsets and LEAST_REQUEST (which gRPC would NACK as Envoy gets it), a VirtualService sending `x-version: v2` to v2 and the rest to `default_subset`, and the
    client's own WorkloadEntry (its node id names it)."""
    tree = root / f"policies-{default_subset}"
    tree.mkdir()
    entries = "".join(_workload_entry(f"echo-{v}", {"app": "echo", "version": v}, ports[v]) for v in ("v1", "v2"))
    (tree / "mesh.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Namespace
        metadata: {{name: demo, labels: {{istio-injection: enabled}}}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: echo, namespace: demo}}
        spec:
          selector: {{app: echo}}
          ports: [{{name: grpc, port: {SERVICE_PORT}, targetPort: {SERVICE_PORT}}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {{name: echo, namespace: demo}}
        spec:
          host: {HOST}
          trafficPolicy: {{loadBalancer: {{simple: LEAST_REQUEST}}}}
          subsets:
          - {{name: v1, labels: {{version: v1}}}}
          - {{name: v2, labels: {{version: v2}}}}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {{name: echo, namespace: demo}}
        spec:
          hosts: [echo]
          http:
          - match: [{{headers: {{x-version: {{exact: v2}}}}}}]
            route: [{{destination: {{host: echo, subset: v2}}}}]
          - route: [{{destination: {{host: echo, subset: {default_subset}}}}}]
        """) + entries + _workload_entry("client", {"app": "client"}, None, address="127.0.0.2"))
    return tree


def _workload_entry(name: str, labels: dict[str, str], port: int | None, *, address: str = "127.0.0.1") -> str:
    ports = f"\n  ports: {{grpc: {port}}}" if port is not None else ""
    return textwrap.dedent(f"""\
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {{name: {name}, namespace: demo}}
        spec:
          address: {address}
          labels: {json.dumps(labels)}""") + ports + "\n"


def compiled(tree: Path) -> build.Build:
    result = build.build([tree])
    assert result.ok, [str(d) for d in result.diagnostics]
    return result


# ---- the ADS server and the client -----------------------------------------------------------------------------

class Counts(NullObserver):
    """An AdsObserver that counts ACKs and NACKs per type URL."""

    def __init__(self) -> None:
        self.acks: dict[str, int] = {}
        self.nacks: dict[str, int] = {}

    def on_ack(self, type_url: str) -> None:
        self.acks[type_url] = self.acks.get(type_url, 0) + 1

    def on_nack(self, type_url: str) -> None:
        self.nacks[type_url] = self.nacks.get(type_url, 0) + 1


@dataclasses.dataclass
class Meshward:
    server: AdsServer
    cache: SnapshotCache
    counts: Counts
    address: str

    def statuses(self, node_id: str = CLIENT_NODE) -> list[ProxyStatus]:
        return [s for s in self.server.status() if s.node_id == node_id]


@contextlib.asynccontextmanager
async def meshward(result: build.Build) -> AsyncIterator[Meshward]:
    cache = SnapshotCache()
    cache.publish("r1", functools.partial(build.snapshot_for, result))
    counts = Counts()
    server = AdsServer(cache, observer=counts, options=AdsOptions(debounce=0.0, send_timeout=None))
    port = await server.start("127.0.0.1:0")
    try:
        yield Meshward(server, cache, counts, f"127.0.0.1:{port}")
    finally:
        await server.stop(grace=0.1)


def write_bootstrap(path: Path, xds_address: str, *, node_id: str = CLIENT_NODE, generator: str = "grpc") -> Path:
    """gRPC's xDS bootstrap (gRFC A27) as `meshward bootstrap --grpc` renders it (so the real gRPC client judges
    that output); `generator=""` drops GENERATOR to play an Envoy-shaped node."""
    doc = bootstrap_mod.render_grpc(node_id, xds_address)
    if generator:
        doc["node"]["metadata"]["GENERATOR"] = generator
    else:
        del doc["node"]["metadata"]["GENERATOR"]
    path.write_text(json.dumps(doc, indent=2))
    return path


@dataclasses.dataclass
class ClientRun:
    results: list[dict[str, str]]
    process: asyncio.subprocess.Process

    async def again(self, calls: list[dict[str, Any]], timeout: float = 30.0) -> list[dict[str, str]]:
        """Another round of calls on the same channels (the client keeps its ADS streams)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(calls).encode() + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert line, "the client exited"
        results: list[dict[str, str]] = json.loads(line)
        return results


@contextlib.asynccontextmanager
async def client(bootstrap: Path, calls: list[dict[str, Any]], *, timeout: float = 30.0) -> AsyncIterator[ClientRun]:
    """Runs the client subprocess; yields its results while it still holds its ADS stream; always ends it."""
    env = {**os.environ, "GRPC_XDS_BOOTSTRAP": str(bootstrap), "GRPC_VERBOSITY": "ERROR"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(CLIENT), json.dumps(calls), env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
        if not line:
            stderr = await asyncio.wait_for(process.stderr.read(), 5) if process.stderr else b""
            raise AssertionError(f"the client exited without results: {stderr.decode(errors='replace')[-2000:]}")
        yield ClientRun(json.loads(line), process)
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()
