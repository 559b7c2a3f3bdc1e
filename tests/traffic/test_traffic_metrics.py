"""Istio's metrics questions answered by upstream Envoy: a real Prometheus scrapes a real sidecar's
`:PORT/stats/prometheus` (Istio's 15090 endpoint, here on a free port) after a weighted split, and the Grafana
dashboard's own expressions (deploy/grafana/meshward-mesh.json) return what the traffic did.

The backends count what they answered, so the expected numbers are what really happened, not what the weights
promise. Prometheus scrapes before any traffic, so `rate()` of `upstream_rq_total` (made with the cluster, at 0)
sees every request. Traffic then runs in two rounds: the first creates the other series (Envoy makes
`upstream_rq_503` on the first 503, and histograms on the first stats flush after a request) and is scraped before
the second, so `rate()` of those sees the whole second round.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import prometheus_server
import pytest
import traffic_sidecar
from traffic_backends import Backend, Behavior, Reply, get, running
from traffic_envoy import envoy, free_port, write_tree

from compiler import build
from compiler.emit import bootstrap_static
from reconciler.ops import mesh_view, prom_rates
from reconciler.ops.status import Status

pytestmark = pytest.mark.envoy

NS = "shop"
NODE = f"sidecar~127.0.9.2~client.{NS}~{NS}.svc.cluster.local"
SERVICE = f"split.{NS}.svc.cluster.local"
DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "meshward-mesh.json"
SLOW_S = 0.12  # v2 answers after 120 ms: Envoy's histogram buckets put it in (100, 250] ms, even under load
V2_FAILS_EVERY = 4  # v2 answers 503 to every 4th request
# Envoy's default histogram bucket bounds (source/common/stats/histogram_impl.h supportedBuckets), in ms
_ENVOY_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
WINDOW = "1m"  # for the dashboard's $__rate_interval: longer than the test, so rate() sees all of it


def _tree(port: int, v1: Backend, v2: Backend) -> dict[str, str]:
    entries = "".join(f"""---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: split-{b.name}, namespace: {NS}}}
spec: {{address: {b.address}, labels: {{app: split, version: {b.name}}}, ports: {{http: {b.port}}}}}
""" for b in (v1, v2))
    return {"mesh.yaml": f"""apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: flush, namespace: istio-system}}
spec:
  metrics:
  - providers: [{{name: prometheus}}]
    reportingInterval: 1s  # the bootstrap's stats flush: histograms reach /stats on one (Envoy's default: 5s)
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: {NS}}}
spec: {{address: 127.0.9.2, labels: {{app: client}}}}
---
{traffic_sidecar.client_egress(NS, port)}apiVersion: v1
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
        self.total: dict[str, int] = {}  # what the backends answered in all
        self.round_two: dict[str, int] = {}  # and in round two
        self.elapsed_ms: dict[str, list[float]] = {}  # the times the client saw, per backend

    def send(self, n: int) -> list[Reply]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda _: get(self.port, "/", f"split:{self.port}"), range(n)))

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
        assert doc["stats_flush_interval"] == "1s"  # the Telemetry's reportingInterval
        (root / "bootstrap.json").write_text(json.dumps(doc))
        with envoy(envoy_bin, root / "bootstrap.json", admin, [("127.0.0.1", port), ("127.0.0.1", stats)]), \
                prometheus_server.running([f"127.0.0.1:{stats}"], root) as prometheus:
            m = Mesh(port, v1, v2, prometheus, f"http://127.0.0.1:{stats}/stats/prometheus")
            prometheus.eventually(f'envoy_cluster_upstream_rq_total{{destination_service="{SERVICE}"}}',
                                  "destination_subset", lambda got: got == {"": 0, "v1": 0, "v2": 0})
            round_one = m.send(40)  # round one: every series exists
            first = m.counts()
            prometheus.eventually(f'sum(envoy_cluster_upstream_rq{{destination_service="{SERVICE}", '
                                  f'response_code="503"}})', "", lambda got: got.get("", 0) == first["503"])
            prometheus.eventually(f'envoy_cluster_upstream_rq_time_count{{destination_service="{SERVICE}"}}',
                                  "destination_subset", lambda got: got == {"v1": first["v1"], "v2": first["v2"]})
            for reply in round_one + m.send(160):
                m.elapsed_ms.setdefault(reply.backend or "", []).append(reply.elapsed_s * 1000)
            last = m.counts()
            m.total, m.round_two = last, {key: last[key] - first[key] for key in last}
            prometheus.eventually(f'sum(envoy_cluster_upstream_rq_time_count{{destination_service="{SERVICE}"}})',
                                  "", lambda got: got.get("", 0) == 200)
            yield m


def _panels() -> dict[str, str]:
    """Panel title -> its PromQL, as Grafana would send it (its variables filled in)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: t["expr"].replace("$__rate_interval", WINDOW).replace("$service", ".+")
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
    rates = {s["metric"].get("destination_subset", ""): float(s["value"][1])
             for s in mesh.prometheus.query(_panels()["Request rate by service and subset"])
             if s["metric"]["destination_service"] == SERVICE}
    assert rates[""] == 0, rates  # the service's cluster without a subset: no route sends there
    # shares within 3 points; series of one target share their scrape times, so rate() extrapolates them alike
    share = rates["v2"] / (rates["v1"] + rates["v2"])
    assert _close(share, mesh.total["v2"] / (mesh.total["v1"] + mesh.total["v2"]), 0.03), (rates, mesh.total)
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
    """histogram_quantile interpolates inside Envoy's buckets, so the tolerance is a bucket: each quantile lies
    between the lower bound of the delay's bucket and the upper bound of the bucket of the slowest request the
    client measured (its times include Envoy's own, so are never shorter; the first scrape may fall inside round
    one, so its requests count too)."""
    for panel in ("p99 latency by service and subset", "p50 latency by service and subset"):
        got = mesh.prometheus.values(_panels()[panel], "destination_subset")
        for subset, floor in (("v1", 0.0), ("v2", 100.0)):  # v2 sleeps 120 ms: Envoy's (100, 250] bucket
            slowest = max(mesh.elapsed_ms[subset])
            ceiling = next(bound for bound in _ENVOY_BUCKETS_MS if bound >= slowest)
            assert floor <= got[subset] <= ceiling, (panel, subset, got, slowest)
    assert got["v1"] < 100 <= got["v2"], got  # the medians tell the fast subset from the slow one


def test_every_dashboard_expression_is_accepted(mesh: Mesh) -> None:
    """Grafana sends them as they are: each must parse and return data for this traffic."""
    for title, expr in _panels().items():
        assert mesh.prometheus.query(expr), f"{title}: no data for {expr}"
    template: Any = json.loads(DASHBOARD.read_text())["templating"]["list"][1]["query"]["query"]
    metric = re.fullmatch(r"label_values\((.+), destination_service\)", template)
    assert metric and mesh.prometheus.values(metric.group(1), "destination_service").get(SERVICE) is not None


def test_mesh_page_rates_follow_the_split(mesh: Mesh, tmp_path: Path) -> None:
    """The mesh page's rates (serve --prometheus-url): its own query against this Prometheus, put on the edges of
    the routing graph of the same tree, give v2's edge the share the backends saw."""
    graph = build.routing(build.build([write_tree(tmp_path, _tree(mesh.port, mesh.v1, mesh.v2))]))
    samples = asyncio.run(prom_rates.fetch(mesh.prometheus.url))
    assert {s.source for s in samples if s.service == SERVICE} == {f"{NS}/client"}
    doc = mesh_view.document(graph, Status(), [], lambda _: None, samples=samples, rates_configured=True)
    rates = {e["target"].rsplit("|", 1)[1]: e["rate"] for e in doc["edges"] if e["weight"] in (70, 30)}
    share = rates["v2"] / (rates["v1"] + rates["v2"])
    assert _close(share, mesh.total["v2"] / (mesh.total["v1"] + mesh.total["v2"]), 0.03), (rates, mesh.total)
