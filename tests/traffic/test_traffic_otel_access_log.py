"""Real OpenTelemetry access logs: requests through a real Envoy sidecar compiled by meshward with an envoyOtelAls
provider reach a collector speaking OTLP over gRPC (tests/otlp_collector.py) as log records, Istio's TEXT line as
each record's body and the provider's labels as its attributes (method, path, response code, cluster, route); the
collector's Service is outside the sidecar's egress scope, its cluster there all the same. A namespace Telemetry's
`disabled` stops the records while the requests are still served. A gateway logs the same way."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import otlp_collector
import pytest
import traffic_gateway
import traffic_sidecar
from traffic_backends import Backend, Behavior, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

SIDECAR_ADDRESS = "127.0.8.40"
COLLECTOR_ADDRESS = "127.0.8.41"
GATEWAY_ADDRESS = "127.0.8.42"
NODE = "sidecar~127.0.8.40~client.shop~shop.svc.cluster.local"
GATEWAY_NODE = "router~127.0.8.42~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
COLLECTOR_HOST = "otel-collector.observability.svc.cluster.local"
# the start of Istio's TEXT line (compiler.translate.telemetry.ISTIO_TEXT_FORMAT), up to the response code
TEXT_LINE = re.compile(r'^\[[^\]]+\] "(?P<method>\S+) (?P<path>\S+) HTTP/1\.1" (?P<code>\d+) ')
LABELS = ('{method: "%REQ(:METHOD)%", path: "%REQ(:PATH)%", code: "%RESPONSE_CODE%", '
          'cluster: "%UPSTREAM_CLUSTER%", route: "%ROUTE_NAME%"}')


def _mesh(collector: otlp_collector.Collector) -> str:
    """MeshConfig's envoyOtelAls provider, the default one, and the collector's Service and endpoint."""
    return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    defaultProviders: {{accessLogging: [otel]}}
    extensionProviders:
    - name: otel
      envoyOtelAls:
        service: observability/{COLLECTOR_HOST}
        port: {collector.port}
        logFormat: {{labels: {LABELS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: otel-collector, namespace: observability}}
spec:
  selector: {{app: otel-collector}}
  ports:
  - {{name: grpc-otlp, port: {collector.port}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: otel-collector, namespace: observability}}
spec:
  address: {collector.address}
  labels: {{app: otel-collector}}
---
"""


def _tree(port: int, web: Backend, collector: otlp_collector.Collector, telemetry: str) -> str:
    return _mesh(collector) + telemetry + traffic_sidecar.client_to_web(SIDECAR_ADDRESS, port, web)


@contextmanager
def _sidecar(envoy_bin: str, root: Path, web: Backend, telemetry: str = "") -> Iterator[
        tuple[int, otlp_collector.Collector]]:
    with otlp_collector.serving(COLLECTOR_ADDRESS) as collector, running({"web": web}):
        port, admin = free_port(SIDECAR_ADDRESS), free_port()
        tree = write_tree(root / "tree", {"tree.yaml": _tree(port, web, collector, telemetry)})
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(SIDECAR_ADDRESS, port)]):
            yield port, collector


def test_requests_arrive_as_otlp_log_records(envoy_bin: str, tmp_path: Path) -> None:
    web = Backend("web", "127.0.7.40", Behavior(fail_every=2))  # the second request is answered 503
    with _sidecar(envoy_bin, tmp_path, web) as (port, collector):
        assert get(port, "/items?page=1", "web", address=SIDECAR_ADDRESS).status == 200
        assert get(port, "/cart", "web", address=SIDECAR_ADDRESS).status == 503
        records = collector.wait_logs(2)
    cluster = f"outbound|{port}||web.shop.svc.cluster.local"
    assert sorted((r.attributes for r in records), key=lambda a: a["path"]) == [
        {"method": "GET", "path": "/cart", "code": "503", "cluster": cluster, "route": "to-web"},
        {"method": "GET", "path": "/items?page=1", "code": "200", "cluster": cluster, "route": "to-web"}]
    lines = [TEXT_LINE.match(r.body) for r in records]
    assert sorted(m.group("method", "path", "code") for m in lines if m is not None) == [
        ("GET", "/cart", "503"), ("GET", "/items?page=1", "200")], [r.body for r in records]


def test_disabled_telemetry_sends_no_records(envoy_bin: str, tmp_path: Path) -> None:
    """The shop namespace's `disabled` turns off the provider defaultProviders gives it: no logger, no records,
    and the request is still served. The records of an enabled logger arrive within Envoy's 1 s flush."""
    telemetry = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: quiet, namespace: shop}
spec:
  accessLogging:
  - disabled: true
---
"""
    web = Backend("web", "127.0.7.41", Behavior())
    with _sidecar(envoy_bin, tmp_path, web, telemetry) as (port, collector):
        assert get(port, "/items", "web", address=SIDECAR_ADDRESS).status == 200
        time.sleep(2)  # two of Envoy's flush intervals
        assert collector.log_requests() == []
    assert web.requests == 1


def test_a_gateway_sends_its_records_too(envoy_bin: str, tmp_path: Path) -> None:
    site = Backend("site", "127.0.7.42", Behavior())
    with otlp_collector.serving(COLLECTOR_ADDRESS) as collector, running({"site": site}):
        port, admin = free_port(GATEWAY_ADDRESS), free_port()
        tree = write_tree(tmp_path / "tree", {"tree.yaml": traffic_gateway.http_site(
            site, GATEWAY_ADDRESS, port, route_name="to-site") + _mesh(collector)})
        bootstrap = compile_bootstrap(tree, GATEWAY_NODE, tmp_path / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(GATEWAY_ADDRESS, port)]):
            assert get(port, "/page", "site.example.com", address=GATEWAY_ADDRESS).status == 200
            records = collector.wait_logs(1)
    assert [r.attributes for r in records] == [{"method": "GET", "path": "/page", "code": "200",
                                                "cluster": "outbound|80||site.istio-system.svc.cluster.local",
                                                "route": "to-site"}]
