"""`meshward bootstrap --sds-socket`: the `sds-grpc` cluster reaching the agent's Unix socket, accepted by real
Envoy's `--mode validate`; without the flag the bootstrap is as before."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from meshward import cli

NODE = "sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local"


def _bootstrap(tmp_path: Path, *extra: str) -> dict[str, object]:
    out = tmp_path / "bootstrap.json"
    assert cli.main(["bootstrap", "--node", NODE, "--xds-address", "127.0.0.1:15010", *extra, "-o", str(out)]) == 0
    doc: dict[str, object] = json.loads(out.read_text())
    return doc


def test_the_sds_cluster_is_a_pipe_to_the_agent(tmp_path: Path) -> None:
    clusters = _bootstrap(tmp_path, "--sds-socket", "/var/run/meshward/sds.sock")["static_resources"]["clusters"]  # type: ignore[index]
    sds = {c["name"]: c for c in clusters}["sds-grpc"]
    assert sds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "pipe": {"path": "/var/run/meshward/sds.sock"}}
    assert "http2_protocol_options" in json.dumps(sds)
    assert [c["name"] for c in _bootstrap(tmp_path)["static_resources"]["clusters"]] == ["xds-grpc"]  # type: ignore[index]


@pytest.mark.envoy
def test_real_envoy_validates_it(tmp_path: Path, envoy_bin: str) -> None:
    _bootstrap(tmp_path, "--sds-socket", str(tmp_path / "sds.sock"))
    done = subprocess.run([envoy_bin, "--mode", "validate", "-c", str(tmp_path / "bootstrap.json"),
                           "--log-level", "warn"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
