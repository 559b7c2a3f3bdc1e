"""Telemetry `metrics` overrides in a real Envoy's Prometheus output: a disabled metric's stats are never created
(bootstrap `stats_matcher`) and a removed label is not extracted (bootstrap `stats_tags`), while the rest of
Istio's labels and Envoy's other stats stay."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import pytest
import traffic_sidecar
from traffic_backends import Backend, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

NS = "shop"
NODE = f"sidecar~127.0.9.3~client.{NS}~{NS}.svc.cluster.local"
SERVICE = f"web.{NS}.svc.cluster.local"


def _tree(port: int, backend: Backend) -> dict[str, str]:
    return {"mesh.yaml": f"""apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: metrics, namespace: {NS}}}
spec:
  metrics:
  - reportingInterval: 200ms
    overrides:
    - match: {{metric: REQUEST_DURATION}}
      disabled: true
    - match: {{metric: ALL_METRICS}}
      tagOverrides:
        destination_version: {{operation: REMOVE}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: {NS}}}
spec: {{address: 127.0.9.3, labels: {{app: client}}}}
---
{traffic_sidecar.client_egress(NS, port)}apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: {port}, targetPort: http}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: web-v1, namespace: {NS}}}
spec: {{address: {backend.address}, labels: {{app: web, version: v1}}, ports: {{http: {backend.port}}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: web, namespace: {NS}}}
spec:
  host: web
  subsets: [{{name: v1, labels: {{version: v1}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: {NS}}}
spec:
  hosts: [web]
  http:
  - route:
    - destination: {{host: web, subset: v1}}
"""}


def _series(admin: int, name: str) -> list[dict[str, str]]:
    """The labels of each of the service's series of metric `name` on Envoy's /stats/prometheus."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=5) as resp:
        text = resp.read().decode()
    found = [dict(re.findall(r'(\w+)="([^"]*)"', line)) for line in text.splitlines()
             if line.startswith(name + "{")]
    return [labels for labels in found if labels.get("destination_service") == SERVICE]


def test_disabled_metric_and_removed_label_are_absent(envoy_bin: str, tmp_path: Path) -> None:
    backend = Backend("v1", "127.0.11.3")
    with running({"v1": backend}):
        port, admin = free_port(), free_port()
        tree = write_tree(tmp_path / "tree", _tree(port, backend))
        boot = compile_bootstrap(tree, NODE, tmp_path / "bootstrap.json", admin)
        with envoy(envoy_bin, boot, admin, [("127.0.0.1", port)]):
            assert all(get(port, "/", f"web:{port}").status == 200 for _ in range(5))
            # a histogram that is kept shows that a stats flush has happened since the requests
            deadline = time.monotonic() + 10
            while not _series(admin, "envoy_cluster_upstream_cx_connect_ms_count"):
                assert time.monotonic() < deadline, "no flush of the cluster's histograms within 10 s"
                time.sleep(0.1)
            assert _series(admin, "envoy_cluster_upstream_rq_time_count") == []
            totals = _series(admin, "envoy_cluster_upstream_rq_total")
            assert totals and all("destination_subset" not in s for s in totals), totals
            assert {(s["destination_port"], s["reporter"], s["source_workload"]) for s in totals} == {
                (str(port), "source", "client")}, totals
