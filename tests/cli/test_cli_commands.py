"""The CLI contract of DESIGN.md: commands, formats and exit codes (0 valid, 1 invalid, 2 usage or I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshward import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "policies-example"
SIDECAR = "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local"
BROKEN = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: shop}
spec:
  hosts: [r]
  http:
  - route:
    - destination: {host: r}
      weight: -5
"""


def test_validate_example_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(EXAMPLE)]) == 0
    assert "0 errors" in capsys.readouterr().out


def test_validate_invalid_exits_1_with_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vs.yaml").write_text(BROKEN)
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert f"{tmp_path / 'vs.yaml'}:9:7: error MW0204" in capsys.readouterr().out


def test_validate_missing_path_exits_2(tmp_path: Path) -> None:
    assert cli.main(["validate", str(tmp_path / "nope")]) == 2


def test_validate_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vs.yaml").write_text(BROKEN)
    cli.main(["validate", str(tmp_path), "--format", "json"])
    (item,) = [d for d in json.loads(capsys.readouterr().out) if d["code"] == "MW0204"]
    assert item["line"] == 9 and item["severity"] == "error"


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["validate", "--format", "yaml", "x"])
    assert exc.value.code == 2


def test_compile_one_node_prints_a_config_dump(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compile", str(EXAMPLE), "--node", SIDECAR]) == 0
    dump = json.loads(capsys.readouterr().out)
    clusters = dump["type.googleapis.com/envoy.config.cluster.v3.Cluster"]
    assert any(c["name"] == "outbound|9080|v1|reviews.bookinfo.svc.cluster.local" for c in clusters)


def test_compile_unknown_node_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["compile", str(EXAMPLE), "--node", "sidecar~10.9.9.9~ghost.bookinfo~bookinfo.svc.cluster.local"])
    assert code == 1 and "MW0401" in capsys.readouterr().err


def test_compile_invalid_policy_exits_1(tmp_path: Path) -> None:
    (tmp_path / "vs.yaml").write_text(BROKEN)
    assert cli.main(["compile", str(tmp_path), "--node", SIDECAR]) == 1


def test_compile_all_writes_one_file_per_proxy(tmp_path: Path) -> None:
    assert cli.main(["compile", str(EXAMPLE), "--all", "-o", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 7 and any(n.startswith("router_127.0.0.10_") for n in names)


def test_compile_bootstrap_is_static(tmp_path: Path) -> None:
    out = tmp_path / "envoy.json"
    assert cli.main(["compile", str(EXAMPLE), "--node", SIDECAR, "--format", "bootstrap", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["static_resources"]["listeners"] and "dynamic_resources" not in doc


def test_compile_mesh_identity_gives_istios_permissive_default(tmp_path: Path) -> None:
    """With --mesh-identity (the proxies run agents), inbound ports no PeerAuthentication names get Istio's
    PERMISSIVE chains, whose mTLS half takes the identity from the agent's socket; without, plaintext only."""
    for flags, socket in (([], None), (["--mesh-identity", "--sds-socket", "/run/agent.sock"], "/run/agent.sock")):
        out = tmp_path / "boot.json"
        assert cli.main(["compile", str(EXAMPLE), "--node", SIDECAR, "--format", "bootstrap", *flags,
                         "-o", str(out)]) == 0
        static = json.loads(out.read_text())["static_resources"]
        transports = {c.get("filter_chain_match", {}).get("transport_protocol") for li in static["listeners"]
                      for c in li["filter_chains"]}
        sds = [c for c in static["clusters"] if c["name"] == "sds-grpc"]
        if socket is None:
            assert "tls" not in transports and not sds
        else:
            assert {"tls", "raw_buffer"} <= transports
            assert sds[0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
                "pipe": {"path": socket}}


def test_bootstrap_for_ads(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bootstrap", "--node", SIDECAR, "--xds-address", "127.0.0.1:15010", "--delta"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    assert doc["node"]["id"] == SIDECAR


def test_bootstrap_for_proxyless_grpc(capsys: pytest.CaptureFixture[str]) -> None:
    """The file gRPC reads from GRPC_XDS_BOOTSTRAP; tests/proxyless runs a real gRPC client on this output."""
    assert cli.main(["bootstrap", "--node", SIDECAR, "--xds-address", "127.0.0.1:15010", "--grpc"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["xds_servers"][0]["server_uri"] == "127.0.0.1:15010"
    assert doc["node"]["id"] == SIDECAR and doc["node"]["metadata"] == {"GENERATOR": "grpc", "NAMESPACE": "bookinfo"}


def test_bootstrap_bad_address_exits_2() -> None:
    assert cli.main(["bootstrap", "--node", SIDECAR, "--xds-address", "no-port"]) == 2
    assert cli.main(["bootstrap", "--node", SIDECAR, "--stats-address", "127.0.0.1:15090"]) == 2  # no admin


@pytest.mark.parametrize(("flags", "metrics"), [
    (["--admin-port", "15000"], "0.0.0.0_15090"),  # Istio's endpoint wherever Envoy has an admin interface
    (["--admin-port", "15000", "--stats-address", "127.0.0.9:9102"], "127.0.0.9_9102"),
    (["--admin-port", "15000", "--stats-address", "off"], None),
    ([], None),
])
def test_bootstrap_metrics_endpoint(flags: list[str], metrics: str | None,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bootstrap", "--node", SIDECAR, *flags]) == 0
    listeners = json.loads(capsys.readouterr().out)["static_resources"].get("listeners", [])
    assert [li["name"] for li in listeners] == ([metrics] if metrics else [])


def test_bootstrap_takes_the_proxys_metrics_settings_from_the_policy(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Envoy reads stats settings from its bootstrap only: `--policy` compiles them for the node."""
    node = "sidecar~10.0.0.5~web.shop~shop.svc.cluster.local"
    (tmp_path / "mesh.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: web, namespace: shop}\n"
        "spec: {address: 10.0.0.5, labels: {app: web}}\n---\n"
        "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: metrics, namespace: shop}\n"
        "spec:\n  metrics:\n  - reportingInterval: 2s\n    overrides:\n    - match: {metric: REQUEST_COUNT}\n"
        "      disabled: true\n")
    assert cli.main(["bootstrap", "--node", node, "--policy", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stats_flush_interval"] == "2s"
    (pattern,) = doc["stats_config"]["stats_matcher"]["exclusion_list"]["patterns"]
    assert "upstream_rq_(?:total" in pattern["safe_regex"]["regex"]
    assert cli.main(["bootstrap", "--node", node]) == 0  # without a tree: Istio's defaults
    assert "stats_matcher" not in json.loads(capsys.readouterr().out)["stats_config"]
    assert cli.main(["bootstrap", "--node", node.replace("10.0.0.5~web", "10.0.0.6~db"), "--policy",
                     str(tmp_path)]) == 1
    assert "MW0401" in capsys.readouterr().err


def test_schemas_and_messages_are_current() -> None:
    assert cli.main(["schemas", "--check", "--dir", str(ROOT / "schemas")]) == 0
    assert cli.main(["messages", "--check", "--file", str(ROOT / "docs" / "messages.md")]) == 0


@pytest.mark.parametrize(("args", "code", "out"), [
    (["validate", "policies-example"], 0, "0 errors"),
    (["validate", "missing-dir"], 2, "MW0009"),
    (["compile", "policies-example", "--node", "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local"],
     0, '"type.googleapis.com/envoy.config.cluster.v3.Cluster"'),
])
def test_console_script_exits_with_the_code_and_all_output(args: list[str], code: int, out: str) -> None:
    """`entry` ends validate and compile with os._exit: their exit code and every byte written must still get out."""
    import subprocess
    import sys

    script = "import sys; from meshward.cli import entry; sys.argv[0] = 'meshward'; entry()"
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == code, proc.stderr
    assert out in proc.stdout + proc.stderr
    if args[0] == "compile":
        assert json.loads(proc.stdout)  # the whole document, flushed before the exit


# istioctl analyze flags this (IST0101: no registry entry for the destination) but Pilot serves it: the route names
# outbound|80||gone.shop.svc.cluster.local and answers 503 at runtime.
FLAGGED = """apiVersion: v1
kind: Service
metadata: {name: r, namespace: shop}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: shop}
spec: {address: 10.0.0.1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r, namespace: shop}
spec:
  hosts: [r]
  http:
  - route:
    - destination: {host: gone}
"""
FLAGGED_NODE = "sidecar~10.0.0.1~client.shop~shop.svc.cluster.local"


def test_compile_serves_a_flagged_error_as_pilot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mesh.yaml").write_text(FLAGGED)
    assert cli.main(["compile", str(tmp_path), "--node", FLAGGED_NODE]) == 0
    out = capsys.readouterr()
    assert "error MW0302" in out.err and "1 flagged error(s)" in out.err
    routes = json.loads(out.out)["type.googleapis.com/envoy.config.route.v3.RouteConfiguration"]
    clusters = {r["route"]["cluster"] for rc in routes for vh in rc["virtual_hosts"] for r in vh["routes"]}
    assert "outbound|80||gone.shop.svc.cluster.local" in clusters


def test_compile_strict_fails_on_a_flagged_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mesh.yaml").write_text(FLAGGED)
    assert cli.main(["compile", str(tmp_path), "--node", FLAGGED_NODE, "--strict"]) == 1
    out = capsys.readouterr()
    assert "error MW0302" in out.err and not out.out


def test_validate_fails_on_a_flagged_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mesh.yaml").write_text(FLAGGED)
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert "error MW0302" in capsys.readouterr().out


@pytest.mark.parametrize(("threshold", "code"), [("error", 0), ("Warning", 1), ("info", 1)])
def test_validate_failure_threshold(threshold: str, code: int, tmp_path: Path) -> None:
    """As istioctl analyze's --failure-threshold: a warning (MW0308, a port name that gives no protocol) fails from
    `warning` down."""
    warned = FLAGGED.replace("{host: gone}", "{host: r}").replace("name: http,", "name: web,")
    (tmp_path / "mesh.yaml").write_text(warned)
    assert cli.main(["validate", str(tmp_path), "--failure-threshold", threshold]) == code
