"""Real access-log lines from a gateway and a sidecar compiled by meshward with MeshConfig's `accessLogFile`:
Istio's default TEXT format, with the method, path, response code, upstream cluster and route name of each request
(and REGISTRY_ONLY's 502 from the block_all route); Istio's JSON encoding with custom labels; and a namespace
Telemetry that replaces MeshConfig's default provider, or disables it, or logs only what its CEL filter matches."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import traffic_gateway
import traffic_sidecar
from traffic_backends import Backend, Behavior, get, running
from traffic_envoy import compile_bootstrap, envoy, free_port, write_tree

pytestmark = pytest.mark.envoy

GW_ADDRESS = "127.0.8.5"
NODE = "router~127.0.8.5~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
CLUSTER = "outbound|80||site.istio-system.svc.cluster.local"
# the start of Istio's TEXT line, then its upstream cluster and, last, the route name
# (compiler.translate.telemetry.ISTIO_TEXT_FORMAT)
TEXT_LINE = re.compile(r'^\[[^\]]+\] "(?P<method>\S+) (?P<path>\S+) HTTP/1\.1" (?P<code>\d+) .* '
                       r'(?P<cluster>\S+) \S+ \S+ \S+ \S+ (?P<route>\S+)$')


def _tree(port: int, site: Backend, mesh: str) -> str:
    return traffic_gateway.http_site(site, GW_ADDRESS, port, route_name="to-site") + f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
{mesh}---
"""


def _lines(log: Path, count: int, deadline_s: float = 20.0) -> list[str]:
    """The log's first `count` lines, once Envoy has flushed them (its file logger flushes every second)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.1)
    found = log.read_text() if log.exists() else "(no file)"
    raise AssertionError(f"{log}: fewer than {count} lines after {deadline_s}s: {found!r}")


@contextmanager
def _run(envoy_bin: str, root: Path, mesh: str) -> Iterator[tuple[int, Backend]]:
    site = Backend("site", "127.0.7.20", Behavior())
    with running({"site": site}):
        port, admin = free_port(GW_ADDRESS), free_port()
        tree = write_tree(root / "tree", {"tree.yaml": _tree(port, site, mesh)})
        bootstrap = compile_bootstrap(tree, NODE, root / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(GW_ADDRESS, port)]):
            yield port, site


@pytest.fixture
def text_log(envoy_bin: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    log = tmp_path / "access.log"
    with _run(envoy_bin, tmp_path, f"    accessLogFile: {log}\n") as (port, _):
        yield port, log


def test_istio_text_format_names_the_request_and_where_it_went(text_log: tuple[int, Path]) -> None:
    port, log = text_log
    assert get(port, "/page?q=1", "site.example.com", address=GW_ADDRESS).status == 200
    line = _lines(log, 1)[0]
    found = TEXT_LINE.match(line)
    assert found is not None, line
    assert found.group("method", "path", "code", "cluster") == ("GET", "/page?q=1", "200", CLUSTER), line
    assert found.group("route") == "to-site", line
    assert '"site.example.com"' in line, "the authority is logged"


def test_json_encoding_with_custom_labels(envoy_bin: str, tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    labels = '{"method": "%REQ(:METHOD)%", "path": "%REQ(:PATH)%", "code": "%RESPONSE_CODE%", ' \
             '"cluster": "%UPSTREAM_CLUSTER%", "route": "%ROUTE_NAME%"}'
    mesh = f"    accessLogFile: {log}\n    accessLogEncoding: JSON\n    accessLogFormat: '{labels}'\n"
    with _run(envoy_bin, tmp_path, mesh) as (port, _):
        assert get(port, "/a", "x", address=GW_ADDRESS).status == 200
        assert get(port, "/b", "x", address=GW_ADDRESS).status == 200
        records = [json.loads(line) for line in _lines(log, 2)]
    assert records == [{"method": "GET", "path": p, "code": 200, "cluster": CLUSTER, "route": "to-site"}
                       for p in ("/a", "/b")]



SIDECAR_ADDRESS = "127.0.8.6"
SIDECAR_NODE = "sidecar~127.0.8.6~client.shop~shop.svc.cluster.local"


def _sidecar_tree(port: int, web: Backend, mesh: str, extra: str = "") -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
{mesh}---
{extra}
""" + traffic_sidecar.client_to_web(SIDECAR_ADDRESS, port, web)


def test_sidecar_logs_routed_and_registry_only_requests(envoy_bin: str, tmp_path: Path) -> None:
    """Through a sidecar's egress listener: a routed request names its cluster and route; a host outside the
    registry gets MeshConfig REGISTRY_ONLY's 502 from Istio's block_all route, logged as such."""
    log = tmp_path / "access.log"
    web = Backend("web", "127.0.7.21", Behavior())
    with running({"web": web}):
        port, admin = free_port(SIDECAR_ADDRESS), free_port()
        mesh = f"    accessLogFile: {log}\n    outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}\n"
        tree = write_tree(tmp_path / "tree", {"tree.yaml": _sidecar_tree(port, web, mesh)})
        bootstrap = compile_bootstrap(tree, SIDECAR_NODE, tmp_path / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(SIDECAR_ADDRESS, port)]):
            assert get(port, "/items", "web", address=SIDECAR_ADDRESS).status == 200
            assert get(port, "/", "unknown.example.com", address=SIDECAR_ADDRESS).status == 502
            lines = _lines(log, 2)
    routed, blocked = (TEXT_LINE.match(line) for line in lines)
    assert routed is not None and blocked is not None, lines
    assert routed.group("method", "path", "code", "cluster", "route") == (
        "GET", "/items", "200", f"outbound|{port}||web.shop.svc.cluster.local", "to-web"), lines[0]
    assert blocked.group("code", "route") == ("502", "block_all"), lines[1]
    assert web.requests == 1


def _telemetry_mesh(mesh_log: Path, shop_log: Path) -> str:
    return f"""    accessLogFile: {mesh_log}
    defaultProviders: {{accessLogging: [mesh-log]}}
    extensionProviders:
    - name: mesh-log
      envoyFileAccessLog: {{path: {mesh_log}}}
    - name: shop-log
      envoyFileAccessLog:
        path: {shop_log}
        logFormat: {{text: "shop %REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %ROUTE_NAME%"}}
"""


def _shop_telemetry(logging: str) -> str:
    return f"""apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: logs, namespace: shop}}
spec:
  accessLogging:
{logging}---
"""


@pytest.mark.parametrize("logging", [
    "  - providers: [{name: shop-log}]\n",  # replaces the mesh's default provider
    "  - providers: [{name: shop-log}]\n  - providers: [{name: mesh-log}]\n    disabled: true\n",
], ids=["namespace-overrides-default", "disabled-stops-mesh-log"])
def test_namespace_telemetry_overrides_the_mesh_default(envoy_bin: str, tmp_path: Path, logging: str) -> None:
    """A shop Telemetry's provider logs the sidecar's requests in its own format, and the mesh's default provider
    (and the legacy accessLogFile, on the same path) gets no logger at all: Envoy opens no file for it."""
    mesh_log, shop_log = tmp_path / "mesh.log", tmp_path / "shop.log"
    web = Backend("web", "127.0.7.22", Behavior())
    with running({"web": web}):
        port, admin = free_port(SIDECAR_ADDRESS), free_port()
        tree = write_tree(tmp_path / "tree", {"tree.yaml": _sidecar_tree(
            port, web, _telemetry_mesh(mesh_log, shop_log), _shop_telemetry(logging))})
        bootstrap = compile_bootstrap(tree, SIDECAR_NODE, tmp_path / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(SIDECAR_ADDRESS, port)]):
            assert get(port, "/items", "web", address=SIDECAR_ADDRESS).status == 200
            lines = _lines(shop_log, 1)
    assert lines == ["shop GET /items 200 to-web"]
    assert not mesh_log.exists(), mesh_log.read_text()


def test_disabled_namespace_telemetry_stops_the_lines(envoy_bin: str, tmp_path: Path) -> None:
    """`disabled` without providers turns off the providers inherited from defaultProviders: no access logger is
    configured, so Envoy never opens the mesh's log file, while the request itself is served."""
    mesh_log, shop_log = tmp_path / "mesh.log", tmp_path / "shop.log"
    web = Backend("web", "127.0.7.23", Behavior())
    with running({"web": web}):
        port, admin = free_port(SIDECAR_ADDRESS), free_port()
        tree = write_tree(tmp_path / "tree", {"tree.yaml": _sidecar_tree(
            port, web, _telemetry_mesh(mesh_log, shop_log), _shop_telemetry("  - disabled: true\n"))})
        bootstrap = compile_bootstrap(tree, SIDECAR_NODE, tmp_path / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(SIDECAR_ADDRESS, port)]):
            assert get(port, "/items", "web", address=SIDECAR_ADDRESS).status == 200
    assert web.requests == 1
    assert not mesh_log.exists() and not shop_log.exists()


def test_cel_filter_keeps_only_the_5xx_lines(envoy_bin: str, tmp_path: Path) -> None:
    """A shop Telemetry's `filter.expression: response.code >= 500` becomes Envoy's CEL access-log filter: the
    backend's 503s are logged and the 200s around them are not (the last request is a 503, so any 200 Envoy had
    logged would be in the file before it)."""
    mesh_log, shop_log = tmp_path / "mesh.log", tmp_path / "shop.log"
    web = Backend("web", "127.0.7.24", Behavior())
    logging = "  - providers: [{name: shop-log}]\n    filter: {expression: 'response.code >= 500'}\n"
    with running({"web": web}):
        port, admin = free_port(SIDECAR_ADDRESS), free_port()
        tree = write_tree(tmp_path / "tree", {"tree.yaml": _sidecar_tree(
            port, web, _telemetry_mesh(mesh_log, shop_log), _shop_telemetry(logging))})
        bootstrap = compile_bootstrap(tree, SIDECAR_NODE, tmp_path / "bootstrap.json", admin)
        with envoy(envoy_bin, bootstrap, admin, [(SIDECAR_ADDRESS, port)]):
            for path, status in (("/ok1", 200), ("/fail1", 503), ("/ok2", 200), ("/ok3", 200), ("/fail2", 503)):
                web.behavior.fail_every = 1 if status == 503 else 0
                assert get(port, path, "web", address=SIDECAR_ADDRESS).status == status, path
            lines = _lines(shop_log, 2)
    assert lines == ["shop GET /fail1 503 to-web", "shop GET /fail2 503 to-web"]
