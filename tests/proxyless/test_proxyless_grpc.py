"""A second real xDS client: grpcio's own xDS support (`xds:///` targets, a bootstrap file, no Envoy) resolves a
service through meshward's ADS server and reaches loopback gRPC backends, routed by a VirtualService.

Each test runs meshward's AdsServer in-process over a compiled policy tree, and the gRPC client in a subprocess
(GRPC_XDS_BOOTSTRAP is read once per process, and gRPC's xDS client state is process-global).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from proxyless_harness import (
    CLIENT_NODE,
    HOST,
    SERVICE_PORT,
    backends,
    client,
    compiled,
    eventually,
    meshward,
    run,
    write_bootstrap,
    write_tree,
)

from compiler import build, emit
from meshxds import type_urls as T
from meshxds.snapshot import Snapshot
from reconciler.xds.ads_status import SyncState
from reconciler.xds.xds_node import NodeInfo

TARGET = f"xds:///{HOST}:{SERVICE_PORT}"
ALL_TYPES = {T.LISTENER, T.ROUTE, T.CLUSTER, T.ENDPOINT}


def test_grpc_client_routes_through_meshward(tmp_path: Path) -> None:
    """Default route to v1, `x-version: v2` to v2, short names as Istio expands them, and an unknown host fails
    with gRPC's 'does not exist' after its 15 s timer, not a hang. The client ACKs every type; nothing is NACKed."""
    calls: list[dict[str, Any]] = [
        {"target": TARGET},
        {"target": TARGET, "metadata": [["x-version", "v2"]]},
        {"target": f"xds:///echo:{SERVICE_PORT}"},
        {"target": f"xds:///echo.demo:{SERVICE_PORT}", "metadata": [["x-version", "v2"]]},
        {"target": f"xds:///nope.demo.svc.cluster.local:{SERVICE_PORT}", "timeout": 25},
    ]

    async def body() -> None:
        async with backends("v1", "v2") as ports, meshward(compiled(write_tree(tmp_path, ports))) as mw:
            bootstrap = write_bootstrap(tmp_path / "bootstrap.json", mw.address)
            async with client(bootstrap, calls, timeout=40) as done:
                assert done.results[:4] == [{"reply": "v1"}, {"reply": "v2"}, {"reply": "v1"}, {"reply": "v2"}]
                unknown = done.results[4]
                assert unknown.get("code") == "UNAVAILABLE", unknown
                assert "nope.demo.svc.cluster.local:7070: does not exist" in unknown["details"], unknown
                assert await eventually(lambda: bool(mw.statuses()) and all(
                    s.state is SyncState.SYNCED for s in mw.statuses())), mw.statuses()
                synced = [s for s in mw.statuses() if set(s.types) == ALL_TYPES]
                assert synced, "no stream subscribed all four types"
                assert mw.counts.nacks == {}
                assert set(mw.counts.acks) == ALL_TYPES

    run(body)


def test_unknown_node_is_reported_and_the_client_does_not_hang(tmp_path: Path) -> None:
    """A node id naming no workload: the server lists it as UNKNOWN and sends nothing; the client's RPC ends at
    its deadline instead of waiting forever."""
    stranger = "sidecar~127.0.0.9~stranger.demo~demo.svc.cluster.local"

    async def body() -> None:
        async with backends("v1", "v2") as ports, meshward(compiled(write_tree(tmp_path, ports))) as mw:
            bootstrap = write_bootstrap(tmp_path / "bootstrap.json", mw.address, node_id=stranger)
            async with client(bootstrap, [{"target": TARGET, "timeout": 3}], timeout=20) as done:
                assert done.results[0].get("code") in ("DEADLINE_EXCEEDED", "UNAVAILABLE"), done.results
                assert stranger in mw.cache.unknown_nodes()
                assert [s.state for s in mw.statuses(stranger)] == [SyncState.UNKNOWN]

    run(body)


def test_a_new_revision_reaches_the_running_client(tmp_path: Path) -> None:
    """A publish that moves the default route to v2 is pushed over the client's open ADS stream (no reconnect),
    and its next calls land on v2."""

    async def body() -> None:
        async with backends("v1", "v2") as ports, meshward(compiled(write_tree(tmp_path, ports))) as mw:
            bootstrap = write_bootstrap(tmp_path / "bootstrap.json", mw.address)
            async with client(bootstrap, [{"target": TARGET}]) as done:
                assert done.results == [{"reply": "v1"}]
                streams = {s.stream_id for s in mw.statuses()}
                moved = compiled(write_tree(tmp_path, ports, default_subset="v2"))
                mw.cache.publish("r2", functools.partial(build.snapshot_for, moved))
                new = build.snapshot_for(moved, NodeInfo(id=CLIENT_NODE, metadata={"GENERATOR": "grpc"})).version
                assert await eventually(lambda: all(
                    s.snapshot_version == new and s.state is SyncState.SYNCED for s in mw.statuses()))
                replies = [await done.again([{"target": TARGET}]) for _ in range(3)]
                assert replies[-1] == [{"reply": "v2"}], replies
                assert {s.stream_id for s in mw.statuses()} == streams
                assert mw.counts.nacks == {}

    run(body)


def _with_envoy_cluster(proxyless: Snapshot, sidecar: Snapshot, name: str) -> Snapshot:
    """The proxyless snapshot, but with one cluster exactly as an Envoy sidecar gets it."""
    resources = [r for by_name in proxyless.by_type.values() for r in by_name.values()
                 if not (r.type_url == T.CLUSTER and r.name == name)]
    return Snapshot.of([*resources, sidecar.get(T.CLUSTER)[name]])


def test_grpc_nack_is_recorded(tmp_path: Path) -> None:
    """The other direction: a cluster gRPC cannot take (Envoy's LEAST_REQUEST, which the proxyless emitter maps to
    ROUND_ROBIN) is NACKed by the real client, and the server records the NACK with gRPC's reason."""
    v1 = f"outbound|{SERVICE_PORT}|v1|{HOST}"

    async def body() -> None:
        async with backends("v1", "v2") as ports:
            result = compiled(write_tree(tmp_path, ports))
            grpc_node = NodeInfo(id=CLIENT_NODE, metadata={"GENERATOR": "grpc"})
            sidecar = emit.snapshot(build.proxy_config(result, CLIENT_NODE))
            assert sidecar.get(T.CLUSTER)[v1].message.lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
            bad = _with_envoy_cluster(build.snapshot_for(result, grpc_node), sidecar, v1)
            async with meshward(result) as mw:
                mw.cache.publish("bad", lambda node: bad)
                bootstrap = write_bootstrap(tmp_path / "bootstrap.json", mw.address)
                async with client(bootstrap, [{"target": TARGET, "timeout": 3}], timeout=20) as done:
                    assert "reply" not in done.results[0], done.results
                    assert await eventually(lambda: mw.counts.nacks.get(T.CLUSTER, 0) >= 1), mw.counts.nacks
                    nacked = [s.types[T.CLUSTER] for s in mw.statuses() if T.CLUSTER in s.types]
                    assert nacked and nacked[0].state is SyncState.NACKED
                    assert nacked[0].last_nack is not None
                    assert "LB policy is not supported" in nacked[0].last_nack.message

    run(body)

