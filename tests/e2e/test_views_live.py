"""`meshward proxy-config` and `meshward describe` against a live `serve` with a real Envoy gateway: the tables are
the ones the same tree gives offline, the clusters are the ones Envoy itself holds (its /config_dump), and an
unknown proxy exits 1 with one line."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from test_status_cli import GATEWAY, Server, eventually, live, meshward

from reconciler.ops import envoy_process
from reconciler.xds import bootstrap

pytestmark = pytest.mark.envoy
__all__ = ["live"]  # the fixture, shared with test_status_cli

UNKNOWN = "sidecar~127.0.0.9~nobody.shop~shop.svc.cluster.local"


def cells(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]


def envoy_clusters(admin_port: int) -> set[str]:
    url = f"http://127.0.0.1:{admin_port}/config_dump?resource=dynamic_active_clusters"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return {c["cluster"]["name"] for c in json.loads(resp.read())["configs"]}


def test_views_of_a_live_gateway(live: tuple[Server, str], tmp_path: Path) -> None:
    server, sha = live
    eventually(lambda: (server.get("/status").get("serving") or {}).get("sha") == sha, "commit served")
    xds = f"127.0.0.1:{server.server.xds_port}"
    admin_port = envoy_process.free_port()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(bootstrap.render(GATEWAY, xds, admin_port=admin_port)))
    tree = str(tmp_path / "repo")
    vs_line = (tmp_path / "repo" / "mesh.yaml").read_text().splitlines().index("kind: VirtualService")  # its document
    with envoy_process.running(config, log=tmp_path / "gateway.log") as envoy:
        envoy.wait_ready(admin_port)
        eventually(lambda: (server.proxy(GATEWAY) or {}).get("state") == "SYNCED", "gateway synced")
        live_views = {v: meshward("proxy-config", v, GATEWAY, "--admin-address", server.admin)
                      for v in ("cluster", "listener", "route", "endpoint", "secret")}
        clusters = json.loads(meshward("proxy-config", "cluster", GATEWAY, "--admin-address", server.admin,
                                       "-o", "json"))
        assert {c["name"] for c in clusters} == envoy_clusters(admin_port)  # what Envoy holds, ACKed

    rows = cells(live_views["cluster"])
    assert rows[0] == ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"]
    assert ["web.shop.svc.cluster.local", "8080", "-", "outbound", "EDS", "-"] in rows
    (route,) = cells(live_views["route"])[1:]
    assert route[1].startswith("shop.example.com:") and route[2:4] == ["shop.example.com, shop.example.com:*", "/*"]
    assert route[4] == f"mesh.yaml:{vs_line}"
    (endpoint,) = [r for r in cells(live_views["endpoint"])[1:] if r[3] == "outbound|8080||web.shop.svc.cluster.local"]
    assert endpoint[0].startswith("127.0.0.1:") and endpoint[1:3] == ["HEALTHY", "-"]
    assert cells(live_views["secret"]) == [["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER",
                                            "NOT AFTER", "NOT BEFORE"]]
    # the same tree compiled offline gives the same rows (only file paths differ: the served tree is an export)
    for view in ("cluster", "listener", "endpoint"):
        assert meshward("proxy-config", view, GATEWAY, "--file", tree) == live_views[view], view
    shown = json.loads(meshward("proxy-config", "bootstrap", GATEWAY, "--admin-address", server.admin,
                                "--xds-address", xds))
    assert shown == bootstrap.render(GATEWAY, xds)

    described = json.loads(meshward("describe", GATEWAY, "--admin-address", server.admin, "-o", "json"))
    applied = {(a["kind"], a["name"]): a for a in described["applied"]}
    assert applied[("Gateway", "shop-gateway")]["why"] == "selector istio=ingressgateway matches the workload's labels"
    vs = applied[("VirtualService", "shop")]
    assert vs["why"] == "bound to gateway istio-system/shop-gateway; hosts shop.example.com, exportTo *"
    assert (vs["file"], vs["line"]) == ("mesh.yaml", vs_line)
    offline = json.loads(meshward("describe", GATEWAY, "--file", tree, "-o", "json"))
    assert [(a["kind"], a["name"], a["line"], a["why"]) for a in offline["applied"]] == [
        (a["kind"], a["name"], a["line"], a["why"]) for a in described["applied"]]


def test_an_unknown_proxy_exits_1_with_one_line(live: tuple[Server, str]) -> None:
    server, sha = live
    eventually(lambda: (server.get("/status").get("serving") or {}).get("sha") == sha, "commit served")
    for command in (["proxy-config", "all"], ["describe"]):
        err = meshward(*command, UNKNOWN, "--admin-address", server.admin, code=1, stderr=True)
        assert len(err.splitlines()) == 1 and err.startswith(f"meshward {command[0]}: unknown proxy {UNKNOWN}: ")
    unreachable = f"127.0.0.1:{envoy_process.free_port()}"
    assert "cannot reach" in meshward("proxy-config", "cluster", GATEWAY, "--admin-address", unreachable, code=2,
                                      stderr=True)
