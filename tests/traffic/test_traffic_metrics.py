"""Istio's metrics questions answered by upstream Envoy: a real Prometheus scrapes a real sidecar's
`:PORT/stats/prometheus` (Istio's 15090 endpoint, here on a free port) after a weighted split, and the Grafana
dashboard's own expressions (deploy/grafana/meshward-mesh.json) return what the traffic did.

The backends count what they answered, so the expected numbers are what really happened, not what the weights
promise. Traffic runs in two rounds: the first creates every series (Envoy makes `upstream_rq_503` on the first
503) and is scraped before the second, so the dashboards' `rate()` sees the whole second round.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import prometheus_server
import pytest
from traffic_backends import Backend, Behavior, get, running
from traffic_envoy import envoy, free_port, write_tree

from compiler import build
from compiler.emit import bootstrap_static

pytestmark = pytest.mark.envoy

NS = "shop"
NODE = f"sidecar~127.0.9.2~client.{NS}~{NS}.svc.cluster.local"
SERVICE = f"split.{NS}.svc.cluster.local"
DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "meshward-mesh.json"
SLOW_S = 0.06  # v2 answers after 60 ms: Envoy's histogram buckets put it in (50, 100] ms
V2_FAILS_EVERY = 4  # v2 answers 503 to every 4th request
WINDOW = "1m"  # for the dashboard's $__rate_interval: longer than the test, so rate() sees all of round two


def _tree(port: int, v1: Backend, v2: Backend) -> dict[str, str]:
    entries = "".join(f"""---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: split-{b.name}, namespace: {NS}}}
spec: {{address: {b.address}, labels: {{app: split, version: {b.name}}}, ports: {{http: {b.port}}}}}
""" for b in (v1, v2))
    return {"mesh.yaml": f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: {NS}}}
spec: {{address: 127.0.9.2, labels: {{app: client}}}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: client, namespace: {NS}}}
spec:
  workloadSelector: {{labels: {{app: client}}}}
  egress:
  - port: {{number: {port}, protocol: HTTP, name: egress-http}}
    bind: 127.0.0.1
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: v1
kind: Service
metadata: {{name: split, namespace: {NS}}}
spec:
  selector: {{app: split}}
  ports: [{{name: http, port: {port}, targetPort: http}}]
{entries}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: split, namespace: {NS}}}
spec:
  host: split
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: split, namespace: {NS}}}
spec:
  hosts: [split]
  http:
  - route:
    - {{destination: {{host: split, subset: v1}}, weight: 70}}
    - {{destination: {{host: split, subset: v2}}, weight: 30}}
    retries: {{attempts: 0}}
"""}


class Mesh:
    def __init__(self, port: int, v1: Backend, v2: Backend, prometheus: prometheus_server.Prometheus,
                 stats_url: str) -> None:
        self.port, self.v1, self.v2, self.prometheus, self.stats_url = port, v1, v2, prometheus, stats_url
        self.round_two: dict[str, int] = {}  # what the backends answered in round two

    def send(self, n: int) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: get(self.port, "/", f"split:{self.port}"), range(n)))

    def counts(self) -> dict[str, int]:
        v2_failed = self.v2.requests // V2_FAILS_EVERY
        return {"v1": self.v1.requests, "v2": self.v2.requests, "503": v2_failed}


def _total(mesh: Mesh) -> float:
    got = mesh.prometheus.values(f'sum(envoy_cluster_upstream_rq_total{{destination_service="{SERVICE}"}})', "")
    return got.get("", 0.0)


@pytest.fixture(scope="module")
def mesh(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("metrics")
    prometheus_server.binary()  # skip (or fail in CI) before starting anything
    v1 = Backend("v1", "127.0.11.1")
    v2 = Backend("v2", "127.0.11.2", Behavior(fail_every=V2_FAILS_EVERY, delay_s=SLOW_S))
    with running({"v1": v1, "v2": v2}):
        port, admin, stats = free_port(), free_port(), free_port()
        result = build.build([write_tree(root / "tree", _tree(port, v1, v2))])
        assert result.ok and not build.errors(result), [str(d) for d in result.diagnostics]
        doc = bootstrap_static.static_bootstrap(build.proxy_config(result, NODE), admin_port=admin,
                                                stats_address=("127.0.0.1", stats))
        (root / "bootstrap.json").write_text(json.dumps(doc))
        with envoy(envoy_bin, root / "bootstrap.json", admin, [("127.0.0.1", port), ("127.0.0.1", stats)]), \
                prometheus_server.running([f"127.0.0.1:{stats}"], root) as prometheus:
            m = Mesh(port, v1, v2, prometheus, f"http://127.0.0.1:{stats}/stats/prometheus")
            m.send(40)  # round one: every series exists
            first = m.counts()
            prometheus.eventually(f'sum(envoy_cluster_upstream_rq{{destination_service="{SERVICE}", '
                                  f'response_code="503"}})', "", lambda got: got.get("", 0) == first["503"])
            m.send(160)
            last = m.counts()
            m.round_two = {key: last[key] - first[key] for key in last}
            prometheus.eventually(f'sum(envoy_cluster_upstream_rq_total{{destination_service="{SERVICE}"}})', "",
                                  lambda got: got.get("", 0) == 200)
            yield m


def _panels() -> dict[str, str]:
    """Panel title -> its PromQL, as Grafana would send it (its variables filled in)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: t["expr"].replace("$__rate_interval", WINDOW).replace("$service", ".*")
            for p in panels for t in p["targets"]}


def _close(got: float, want: float, tolerance: float) -> bool:
    return abs(got - want) <= tolerance


def test_endpoint_serves_istio_labels(mesh: Mesh) -> None:
    with urllib.request.urlopen(mesh.stats_url, timeout=5) as resp:
        text = resp.read().decode()
    (line,) = [ln for ln in text.splitlines()
               if ln.startswith("envoy_cluster_upstream_rq_total{") and 'destination_subset="v2"' in ln]
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    assert {k: labels.get(k) for k in ("reporter", "source_workload", "source_workload_namespace",
                                        "destination_service", "destination_service_namespace",
                                        "destination_port", "destination_subset")} == {
        "reporter": "source", "source_workload": "client", "source_workload_namespace": NS,
        "destination_service": SERVICE, "destination_service_namespace": NS,
        "destination_port": str(mesh.port), "destination_subset": "v2"}
    # the cluster name is cut out of every metric name, so one name holds every cluster's series
    names = {ln.split("{")[0].split(" ")[0] for ln in text.splitlines() if not ln.startswith("#")}
    assert not [n for n in names if "svc" in n or "split" in n], names


def test_request_rate_per_subset_follows_the_split(mesh: Mesh) -> None:
    rates = mesh.prometheus.values(_panels()["Request rate by service and subset"], "destination_subset")
    total = sum(rates.values())
    sent = mesh.round_two["v1"] + mesh.round_two["v2"]
    # shares within 3 points; series of one target share their scrape times, so rate() extrapolates them alike
    assert _close(rates["v2"] / total, mesh.round_two["v2"] / sent, 0.03), (rates, mesh.round_two)
    by_source = mesh.prometheus.query(_panels()["Request rate by source"])
    (series,) = [s for s in by_source if s["metric"].get("destination_service") == SERVICE]
    assert series["metric"]["source_workload"] == "client"
    assert series["metric"]["source_workload_namespace"] == NS


def test_error_rate_per_response_code(mesh: Mesh) -> None:
    errors = mesh.prometheus.query(_panels()["Error rate by response code"])
    assert {(s["metric"]["destination_subset"], s["metric"]["response_code"]) for s in errors} == {("v2", "503")}
    ratio = mesh.prometheus.values(_panels()["Error ratio by service and subset"], "destination_subset")
    assert set(ratio) == {"v2"}, ratio  # v1 has no 5xx series: no ratio, as in Istio's dashboards
    assert _close(ratio["v2"], mesh.round_two["503"] / mesh.round_two["v2"], 0.05), (ratio, mesh.round_two)


def test_latency_quantiles(mesh: Mesh) -> None:
    # Envoy merges histograms on its stats flush (every 5s): wait for the one after the traffic
    p99 = mesh.prometheus.eventually(_panels()["p99 latency by service and subset"], "destination_subset",
                                     lambda got: "v2" in got and got["v2"] == got["v2"])
    # v2 answers after 60 ms: its p99 lies in Envoy's (50, 100] ms bucket; v1 answers at once
    assert 50 <= p99["v2"] <= 100, p99
    p50 = mesh.prometheus.values(_panels()["p50 latency by service and subset"], "destination_subset")
    assert p50["v1"] < 50, p50


def test_every_dashboard_expression_is_accepted(mesh: Mesh) -> None:
    """Grafana sends them as they are: each must parse and return data for this traffic."""
    for title, expr in _panels().items():
        assert mesh.prometheus.query(expr), f"{title}: no data for {expr}"
    template: Any = json.loads(DASHBOARD.read_text())["templating"]["list"][1]["query"]["query"]
    metric = re.fullmatch(r"label_values\((.+), destination_service\)", template)
    assert metric and mesh.prometheus.values(metric.group(1), "destination_service").get(SERVICE) is not None
