"""Stopping `meshward serve` with proxies connected: SIGTERM (Kubernetes stopping the pod) and SIGINT (Ctrl-C) both
end every ADS stream with UNAVAILABLE (Envoy keeps its config and reconnects), remove the temporary clone and exit 0
with nothing above INFO in the log: a handler left for gRPC to cancel logged an ERROR with a CancelledError
traceback per stream."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from meshxds import type_urls
from reconciler.ops import demo, envoy_process

NODE = "router~127.0.0.10~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
# Idle streams must end at once, not after the grace period: with a grace far longer than the bounded wait for the
# exit, a shutdown that waited for it fails the wait, however slow the machine (an exit takes a second or two).
GRACE, EXIT_WAIT = 600, 60


class Proxy:
    """A connected ADS client (SotW or delta) that has received its clusters."""

    def __init__(self, address: str, *, delta: bool) -> None:
        self.channel = grpc.insecure_channel(address)
        self.requests: queue.Queue[object] = queue.Queue()
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        node = base_pb2.Node(id=NODE)
        if delta:
            self.requests.put(discovery_pb2.DeltaDiscoveryRequest(node=node, type_url=type_urls.CLUSTER))
            self.responses = stub.DeltaAggregatedResources(iter(self.requests.get, None), timeout=GRACE)
        else:
            self.requests.put(discovery_pb2.DiscoveryRequest(node=node, type_url=type_urls.CLUSTER))
            self.responses = stub.StreamAggregatedResources(iter(self.requests.get, None), timeout=GRACE)
        assert next(self.responses).resources

    def ending(self) -> grpc.RpcError:
        """How the server ended the stream."""
        try:
            next(self.responses)
        except grpc.RpcError as err:
            return err
        raise AssertionError("the stream got another response instead of ending")

    def close(self) -> None:
        self.requests.put(None)
        self.responses.cancel()
        self.channel.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return demo.make_repo(tmp_path / "repo")[0]


@pytest.fixture
def serving(repo: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    xds, admin = f"127.0.0.1:{envoy_process.free_port()}", f"127.0.0.1:{envoy_process.free_port()}"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshward", "serve", "--repo", str(repo), "--path", "policies", "--xds-address", xds,
         "--admin-address", admin, "--shutdown-grace", str(GRACE)],
        env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _until_ready(admin)
        yield proc, xds, tmp
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def _until_ready(admin: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{admin}/readyz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError("serve never became ready")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_drains_streams_and_exits_quietly(serving: tuple[subprocess.Popen[str], str, Path],
                                                 sig: signal.Signals) -> None:
    proc, xds, tmp = serving
    proxies = [Proxy(xds, delta=False), Proxy(xds, delta=True)]
    try:
        assert list(tmp.iterdir()), "serve keeps its clone in a temporary directory"
        proc.send_signal(sig)
        try:
            log, _ = proc.communicate(timeout=EXIT_WAIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not exit within {EXIT_WAIT}s of {sig.name}: idle streams waited for the grace")
        endings = [p.ending() for p in proxies]
    finally:
        for p in proxies:
            p.close()
    assert proc.returncode == 0, log
    assert "Traceback" not in log and " ERROR " not in log and " WARNING " not in log, log
    assert [(e.code(), e.details()) for e in endings] == [  # type: ignore[attr-defined]
        (grpc.StatusCode.UNAVAILABLE, "meshward is shutting down; reconnect")] * 2
    assert not list(tmp.iterdir()), "the temporary clone is removed"
