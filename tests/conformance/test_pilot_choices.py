"""Pilot's choices among configs that istioctl analyze flags, through real Envoy, in the simulation corpus' format
(`sim_harness`): cases the corpus does not have.

Two namespace-wide Sidecars (MW0306, IST0111): Pilot applies the oldest (pilot/pkg/model/push_context.go
initSidecarScopes), so only its egress listener exists; the newer one's port has no listener.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sim_harness
from sim_harness import Case

pytestmark = pytest.mark.envoy

NODE = "sidecar~10.0.0.1~client.app~app.svc.cluster.local"


SIDECAR = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: {name}, namespace: app, creationTimestamp: "{created}"}}
spec:
  egress:
  - port: {{number: {port}, protocol: HTTP, name: http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
"""
REST = """apiVersion: v1
kind: Service
metadata: {{name: web, namespace: app}}
spec:
  ports: [{{name: http, port: {older}}}, {{name: http-b, port: {newer}}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: app}}
spec: {{address: 10.0.0.1, labels: {{app: client}}}}
"""


def _mesh(older: int, newer: int) -> str:
    # "aaa-newer" comes first by name, but it is the newer: Pilot does not apply it
    return "\n---\n".join([REST.format(older=older, newer=newer),
                            SIDECAR.format(name="aaa-newer", created="2021-01-01T00:00:00Z", port=newer),
                            SIDECAR.format(name="zzz-older", created="2019-01-01T00:00:00Z", port=older)])


def _case(root: Path, older: int, newer: int) -> Case:
    root.mkdir()
    (root / "mesh.yaml").write_text(_mesh(older, newer))
    (root / "added.yaml").write_text("")
    calls = [{"name": "older", "port": older, "host": "web.app.svc.cluster.local",
              "expect": {"cluster": f"outbound|{older}||web.app.svc.cluster.local"}}]
    (root / "calls.json").write_text(json.dumps({"node": NODE, "calls": calls}))
    return Case.read(root)


def test_the_oldest_namespace_wide_sidecar_applies(envoy_bin: str, tmp_path: Path) -> None:
    older, newer = 9081, 9082
    case = _case(tmp_path / "case", older, newer)
    bootstrap, errors = sim_harness.compile_case(case)
    assert bootstrap is not None, errors
    assert [port for _, port in sim_harness.listeners(bootstrap)] == [older]
    with sim_harness.started([(case, bootstrap)], tmp_path, envoy_bin) as running:
        seen = sim_harness.send_all([case], running)[case.name]["older"]
        assert set(running[0].ports) == {older}
    assert seen.cluster == f"outbound|{older}||web.app.svc.cluster.local"
