"""Real spans from real Envoys compiled by meshward with Telemetry tracing: a request crosses two sidecars (the
client's outbound listener, then the server's inbound one, then the application), and the collector, speaking the
tracer's own wire protocol, receives one trace: the client's span and the server's span under it, each with the
Telemetry's custom tags. At 0% sampling nothing is reported, and the sampling decision reaches the application.

The tracers batch spans (a flush every 5 s, or 5 spans); the bootstraps get a runtime layer that flushes each span
at once, so a test waits for what it expects and, for what must not come, a bounded quiet period. A gateway
spawns an upstream span under the span of each request it routes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import http_collector
import otlp_collector
import pytest
import traffic_gateway
from opentelemetry.proto.trace.v1 import trace_pb2
from traffic_backends import Backend, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

CLIENT_IP, SERVER_IP, GATEWAY_IP, COLLECTOR_IP = "127.0.12.1", "127.0.12.2", "127.0.12.3", "127.0.12.9"
CLIENT_NODE = f"sidecar~{CLIENT_IP}~client.shop~shop.svc.cluster.local"
SERVER_NODE = f"sidecar~{SERVER_IP}~server.shop~shop.svc.cluster.local"
# Envoy's batching, per tracer (source/extensions/tracers/*: runtime keys and their 5 s / 5 span defaults)
FLUSH_AT_ONCE = {f"tracing.{tracer}.{key}": value for tracer in ("zipkin", "opentelemetry")
                 for key, value in (("min_flush_spans", 1), ("flush_interval_ms", 100))}


@dataclass(frozen=True)
class Collector:
    """A collector as the tree names it: the MeshConfig provider (its name is its kind) and its Service, whose one
    endpoint is where the test's collector listens."""

    kind: str  # zipkin | opentelemetry
    port_name: str  # the Service port's name: its protocol (OTLP is gRPC, so HTTP/2)
    number: int  # the Service port
    port: int  # the collector's real port on COLLECTOR_IP
    http_path: str = ""  # OpenTelemetry: OTLP over HTTP to this path (else gRPC)


@contextmanager
def mesh(envoy_bin: str, root: Path, collector: Collector, sampling: int) -> Iterator[int]:
    """The client and server sidecars (each a real Envoy on its compiled bootstrap) and the server's application;
    yields the client's outbound port."""
    app = Backend("server", "127.0.0.1")
    with running({"server": app}), ExitStack() as stack:
        outbound, inbound = free_port(CLIENT_IP), free_port(SERVER_IP)
        text = _tree(outbound, inbound, app) + _collector(collector) + _telemetry(collector.kind, sampling)
        text += SERVER_TELEMETRY
        tree = write_tree(root / "tree", {"tree.yaml": text})
        for node, address, port in ((SERVER_NODE, SERVER_IP, inbound), (CLIENT_NODE, CLIENT_IP, outbound)):
            admin = free_port()
            bootstrap = compile_bootstrap(tree, node, root / f"{node.split('~')[2]}.json", admin)
            config = json.loads(bootstrap.read_text())
            config["layered_runtime"] = {"layers": [{"name": "flush", "static_layer": FLUSH_AT_ONCE}]}
            bootstrap.write_text(json.dumps(config))
            stack.enter_context(envoy(envoy_bin, bootstrap, admin, [(address, port)]))
        yield outbound


def _collector(c: Collector) -> str:
    http = f", http: {{path: {c.http_path}, headers: [{{name: x-tenant, value: shop}}]}}" if c.http_path else ""
    return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    extensionProviders:
    - name: {c.kind}
      {c.kind}: {{service: collector.istio-system.svc.cluster.local, port: {c.number}{http}}}
---
apiVersion: v1
kind: Service
metadata: {{name: collector, namespace: istio-system}}
spec:
  selector: {{app: collector}}
  ports:
  - {{name: {c.port_name}, port: {c.number}, targetPort: {c.port_name}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: collector, namespace: istio-system}}
spec:
  address: {COLLECTOR_IP}
  labels: {{app: collector}}
  ports: {{{c.port_name}: {c.port}}}
---
"""


def _tree(outbound: int, inbound: int, app: Backend) -> str:
    return f"""apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: shop}}
spec:
  address: {CLIENT_IP}
  labels: {{app: client}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: client, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: client}}}}
  egress:
  - port: {{number: {outbound}, protocol: HTTP, name: http}}
    bind: {CLIENT_IP}
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: server, namespace: shop}}
spec:
  address: {SERVER_IP}
  labels: {{app: server}}
  ports: {{http: {inbound}}}
---
apiVersion: v1
kind: Service
metadata: {{name: server, namespace: shop}}
spec:
  selector: {{app: server}}
  ports:
  - {{name: http, port: {outbound}, targetPort: http}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: server, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: server}}}}
  ingress:
  - port: {{number: {inbound}, protocol: HTTP, name: http}}
    bind: {SERVER_IP}
    captureMode: NONE
    defaultEndpoint: 127.0.0.1:{app.port}
  egress:
  - hosts: ["./*"]
---
"""


def _telemetry(provider: str, sampling: int) -> str:
    """The root namespace traces to the provider with tags."""
    return f"""apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: mesh-default, namespace: istio-system}}
spec:
  tracing:
  - providers: [{{name: {provider}}}]
    randomSamplingPercentage: {sampling}
    customTags:
      team: {{literal: {{value: payments}}}}
      user: {{header: {{name: x-user, defaultValue: anonymous}}}}
---
"""


# the server's own Telemetry: its SERVER side gets other tags (the provider and sampling are inherited)
SERVER_TELEMETRY = """apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: server, namespace: shop}
spec:
  selector: {matchLabels: {app: server}}
  tracing:
  - match: {mode: SERVER}
    customTags:
      side: {literal: {value: inbound}}
      user: {header: {name: x-user, defaultValue: anonymous}}
---
"""


def _zipkin() -> AbstractContextManager[tuple[http_collector.Collector[dict[str, Any]], int]]:
    return http_collector.running(COLLECTOR_IP, http_collector.ZIPKIN_PATH, http_collector.zipkin_spans)


def _by_kind(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {span["kind"]: span for span in spans}


def test_a_request_across_two_sidecars_is_one_zipkin_trace(envoy_bin: str, tmp_path: Path) -> None:
    with _zipkin() as (collector, collector_port), \
            mesh(envoy_bin, tmp_path, Collector("zipkin", "http", 9411, collector_port), 100) as port:
        reply = get(port, "/orders", "server", {"x-user": "alice"}, address=CLIENT_IP)
        assert reply.status == 200, reply.body
        spans = _by_kind(collector.wait_for(2))
    assert set(spans) == {"CLIENT", "SERVER"}, spans
    client, server = spans["CLIENT"], spans["SERVER"]
    assert client["traceId"] == server["traceId"] and len(client["traceId"]) == 32  # 128-bit, Istio's default
    assert "parentId" not in client and server["parentId"] == client["id"]
    assert (client["localEndpoint"]["serviceName"], server["localEndpoint"]["serviceName"]) == (
        "client.shop", "server.shop")
    assert client["tags"]["team"] == "payments" and client["tags"]["user"] == "alice"
    assert "team" not in server["tags"] and server["tags"]["side"] == "inbound" and server["tags"]["user"] == "alice"
    assert client["tags"]["istio.namespace"] == server["tags"]["istio.namespace"] == "shop"
    assert client["tags"]["upstream_cluster"] == f"outbound|{port}||server.shop.svc.cluster.local"
    assert client["tags"]["istio.canonical_revision"] == "latest"
    headers = reply.echo()["headers"]  # the trace reached the application too
    assert headers["x-b3-traceid"] == client["traceId"] and headers["x-b3-parentspanid"] == client["id"]
    assert {content_type for content_type, _ in collector.requests} == {"application/json"}


def test_zero_sampling_reports_nothing(envoy_bin: str, tmp_path: Path) -> None:
    with _zipkin() as (collector, collector_port), \
            mesh(envoy_bin, tmp_path, Collector("zipkin", "http", 9411, collector_port), 0) as port:
        replies = [get(port, f"/orders/{i}", "server", address=CLIENT_IP) for i in range(3)]
        assert [r.status for r in replies] == [200] * 3
        assert {r.echo()["headers"]["x-b3-sampled"] for r in replies} == {"0"}  # the decision went downstream
        assert collector.after(1.5) == []


@contextmanager
def _otlp(transport: str) -> Iterator[tuple[Callable[[int], list[otlp_collector.Span]], Collector]]:
    """An OTLP collector over gRPC (tests/otlp_collector.py) or HTTP, and the provider that names it; yields a
    function waiting for N spans (0: a quiet period, then whatever came) and the provider."""
    if transport == "grpc":
        with otlp_collector.serving(COLLECTOR_IP) as grpc_collector:
            yield (lambda n: grpc_collector.wait_spans(n) if n else _quiet(grpc_collector.spans),
                   Collector("opentelemetry", "grpc", 4317, grpc_collector.port))
        return
    with http_collector.running(COLLECTOR_IP, http_collector.OTLP_PATH, http_collector.otlp_spans) as (c, port):
        yield (lambda n: c.wait_for(n) if n else c.after(1.5),
               Collector("opentelemetry", "http", 4318, port, http_collector.OTLP_PATH))
        assert all(headers["x-tenant"] == "shop" for _, headers in c.requests)  # the provider's header
        assert {content_type for content_type, _ in c.requests} <= {"application/x-protobuf"}


def _quiet(spans: Callable[[], list[otlp_collector.Span]]) -> list[otlp_collector.Span]:
    time.sleep(1.5)
    return spans()


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_request_across_two_sidecars_is_one_opentelemetry_trace(envoy_bin: str, tmp_path: Path,
                                                                   transport: str) -> None:
    """The same in OpenTelemetry's protocol: Envoy's tracer exports to the collector over OTLP/gRPC (its
    TraceService) or OTLP/HTTP (the provider's `http` exporter, with its header)."""
    with _otlp(transport) as (wait, provider), mesh(envoy_bin, tmp_path, provider, 100) as port:
        reply = get(port, "/orders", "server", {"x-user": "bob"}, address=CLIENT_IP)
        assert reply.status == 200, reply.body
        spans = {s.span.kind: s for s in wait(2)}
    client, server = spans[trace_pb2.Span.SPAN_KIND_CLIENT], spans[trace_pb2.Span.SPAN_KIND_SERVER]
    assert len(spans) == 2 and client.span.trace_id == server.span.trace_id and len(client.span.trace_id) == 16
    assert not client.span.parent_span_id and server.span.parent_span_id == client.span.span_id
    assert (client.resource["service.name"], server.resource["service.name"]) == ("client.shop", "server.shop")
    assert client.attributes["team"] == "payments" and client.attributes["user"] == "bob"
    assert "team" not in server.attributes and server.attributes["side"] == "inbound"
    assert server.attributes["user"] == "bob"
    assert reply.echo()["headers"]["traceparent"].split("-")[1] == client.span.trace_id.hex()


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_zero_sampling_exports_no_opentelemetry_span(envoy_bin: str, tmp_path: Path, transport: str) -> None:
    with _otlp(transport) as (wait, provider), mesh(envoy_bin, tmp_path, provider, 0) as port:
        assert [get(port, f"/orders/{i}", "server", address=CLIENT_IP).status for i in range(3)] == [200] * 3
        assert wait(0) == []


def test_a_gateway_spawns_an_upstream_span(envoy_bin: str, tmp_path: Path) -> None:
    """A router's connection manager reports its request's span and, under it, the span of the upstream request
    (spawn_upstream_span, as Pilot sets it for gateways). Five spans flush Envoy's zipkin batch at once."""
    with _zipkin() as (collector, collector_port), traffic_gateway.gateway(
            envoy_bin, tmp_path, node=f"router~{GATEWAY_IP}~istio-ingressgateway.istio-system~istio-system.svc."
            "cluster.local", address=GATEWAY_IP, backends={"site": "127.0.12.4"},
            files=lambda port, b: {"tree.yaml": traffic_gateway.http_site(b["site"], GATEWAY_IP, port)
                                   + _collector(Collector("zipkin", "http", 9411, collector_port))
                                   + _telemetry("zipkin", 100)}) as gw:
        assert [gw.get("site.example.com", f"/{i}").status for i in range(3)] == [200] * 3
        spans = collector.wait_for(6)
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_trace.setdefault(span["traceId"], []).append(span)
    assert len(by_trace) == 3
    for pair in by_trace.values():
        request, upstream = sorted(pair, key=lambda span: "parentId" in span)
        assert upstream["parentId"] == request["id"] and "parentId" not in request
        assert {span["localEndpoint"]["serviceName"] for span in pair} == {"istio-ingressgateway.istio-system"}
