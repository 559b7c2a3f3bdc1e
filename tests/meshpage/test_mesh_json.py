"""/mesh/graph's JSON (reconciler/ops/mesh_view.py): the served revision's routing graph with weights, each
proxy's sync state against the served commit, request rates per edge from Prometheus answers, a Prometheus that is
down or slow as a note rather than an error; and who may read the page (the admin port's exposure)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import meshpage_tree
import pytest
from aiohttp import web

from compiler import build
from meshward import cli
from reconciler import serve
from reconciler.ops import admin, envoy_process, mesh_page, mesh_view, prom_rates
from reconciler.ops import metrics as metrics_mod
from reconciler.ops.status import CommitRef, Status, SyncResult
from reconciler.xds import ads_status
from reconciler.xds.ads_status import SyncState

SERVED = CommitRef("a" * 40, "t <t@e>", "weights 80/20")
OLDER = "b" * 40
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
GATEWAY_NODE = "gateway|istio-system/istio-ingressgateway|"
REVIEWS = f"service|{meshpage_tree.REVIEWS}|"
V1, V2 = f"subset|{meshpage_tree.REVIEWS}|v1", f"subset|{meshpage_tree.REVIEWS}|v2"


def _build(tmp_path: Path, **tree: Any) -> build.Build:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "mesh.yaml").write_text(meshpage_tree.tree(**tree))
    result = build.build([tmp_path])
    assert result.ok, [d.render() for d in result.diagnostics]
    return result


def _proxy(node: str, version: str, state: SyncState, nack: str | None = None) -> ads_status.ProxyStatus:
    last_nack = ads_status.NackInfo("v9", "n1", nack) if nack else None
    cds = ads_status.TypeStatus(CDS, "v9" if nack else "v1", "v1", last_nack, state)
    return ads_status.ProxyStatus(node, 1, "sotw", 0.0, version, {CDS: cds}, state)


ORIGINS = {"snap-new": SERVED.sha, "snap-old": OLDER}
PROXIES = [_proxy(meshpage_tree.GATEWAY, "snap-new", SyncState.SYNCED),
           _proxy(meshpage_tree.CLIENT, "snap-old", SyncState.NACKED, "cluster outbound|9080|v1|reviews: bad")]


SERVING = Status(serving=SERVED, last_seen=SERVED, commit_result=SyncResult.SYNCED)


def _json(result: build.Build, status: Status = SERVING, view: mesh_view.MeshView | None = None) -> dict[str, Any]:
    view = view or mesh_view.MeshView()
    return asyncio.run(view.to_json(result, status, PROXIES, ORIGINS.get))


def _edges(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(e["source"], e["target"], e["label"]): e for e in doc["edges"]}


def test_graph_of_the_served_commit_with_weights(tmp_path: Path) -> None:
    doc = _json(_build(tmp_path))
    assert doc["serving"] == SERVED.to_json() and doc["lastResult"] == "Synced"
    kinds = {n["id"]: (n["kind"], n["label"]) for n in doc["nodes"]}
    assert kinds[GATEWAY_NODE] == ("gateway", "istio-system/istio-ingressgateway")
    assert kinds[REVIEWS] == ("service", "reviews.shop") and kinds[V2] == ("subset", "reviews.shop v2")
    assert {k: e["weight"] for k, e in _edges(doc).items()} == {
        (GATEWAY_NODE, REVIEWS, "prefix /reviews"): 100,
        (REVIEWS, V1, ""): 100,  # the gateway's route: all of it to v1
        (REVIEWS, V1, "80%"): 80, (REVIEWS, V2, "20%"): 20,
        (REVIEWS, V2, "end-user=jason"): 100,
    }
    assert all(e["rate"] is None for e in doc["edges"])
    assert doc["rates"] == {"configured": False, "window": "1m", "note": None}


def test_a_new_commit_is_a_new_graph(tmp_path: Path) -> None:
    view = mesh_view.MeshView()
    first = _json(_build(tmp_path / "a"), view=view)
    second = _json(_build(tmp_path / "b", v1=50, v2=50, ratings=True), view=view)
    assert "service|ratings.shop.svc.cluster.local|" not in {n["id"] for n in first["nodes"]}
    assert "service|ratings.shop.svc.cluster.local|" in {n["id"] for n in second["nodes"]}
    assert {e["label"] for e in second["edges"] if e["source"] == REVIEWS} == {"", "50%", "end-user=jason"}


def test_the_graph_is_made_once_per_served_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = _build(tmp_path), []
    routing = build.routing
    monkeypatch.setattr(build, "routing", lambda r: calls.append(r) or routing(r))
    view = mesh_view.MeshView()
    first, again = asyncio.run(view.graph(result)), asyncio.run(view.graph(result))
    assert first is again and calls == [result]
    other = dataclasses.replace(result)  # the same commit compiled again (a cluster change): another build
    asyncio.run(view.graph(other))
    assert calls == [result, other]


def test_each_proxy_with_its_sync_state_against_the_served_commit(tmp_path: Path) -> None:
    doc = _json(_build(tmp_path))
    gateway, client = doc["proxies"]
    assert (gateway["node"], gateway["state"], gateway["commit"], gateway["served"]) == (
        meshpage_tree.GATEWAY, "SYNCED", SERVED.sha, True)
    assert gateway["types"] == [{"type": "Cluster", "state": "SYNCED", "sent": "v1", "acked": "v1", "nack": None}]
    assert (client["node"], client["state"], client["commit"], client["served"]) == (
        meshpage_tree.CLIENT, "NACKED", OLDER, False)
    assert client["types"] == [{"type": "Cluster", "state": "NACKED", "sent": "v9", "acked": "v1",
                                "nack": "cluster outbound|9080|v1|reviews: bad"}]


def test_a_rejected_commit_is_named_beside_the_served_graph(tmp_path: Path) -> None:
    latest = CommitRef("c" * 40, "t <t@e>", "broken")
    status = Status(serving=SERVED, commit_result=SyncResult.SYNCED).seen(latest, rewritten=False).rejected(
        latest, SyncResult.VALIDATION_FAILED, ["mesh.yaml:3:1: error MW0204: weights must sum to 100"])
    doc = _json(_build(tmp_path), status)
    assert doc["serving"]["sha"] == SERVED.sha and doc["lastSeen"]["sha"] == latest.sha
    assert doc["lastResult"] == "ValidationFailed" and doc["errors"] == [
        "mesh.yaml:3:1: error MW0204: weights must sum to 100"]
    assert doc["nodes"]  # still the served commit's graph


SAMPLES = [
    prom_rates.Sample("istio-system/istio-ingressgateway", meshpage_tree.REVIEWS, "v1", 2.0),
    prom_rates.Sample("shop/client", meshpage_tree.REVIEWS, "v1", 6.0),
    prom_rates.Sample("shop/client", meshpage_tree.REVIEWS, "v2", 1.5),
    prom_rates.Sample("shop/client", "ratings.shop.svc.cluster.local", "", 9.0),
]


def test_rates_per_edge(tmp_path: Path) -> None:
    graph = build.routing(_build(tmp_path))
    status = Status(serving=SERVED, commit_result=SyncResult.SYNCED)
    doc = mesh_view.document(graph, status, [], ORIGINS.get, samples=SAMPLES, rates_configured=True)
    rates = {k: e["rate"] for k, e in _edges(doc).items()}
    assert rates[(GATEWAY_NODE, REVIEWS, "prefix /reviews")] == 2.0  # only what the gateway sent
    assert rates[(REVIEWS, V1, "80%")] == 8.0  # every caller's requests that reached v1
    assert rates[(REVIEWS, V2, "20%")] == rates[(REVIEWS, V2, "end-user=jason")] == 1.5


@asynccontextmanager
async def _prometheus(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """A stand-in for Prometheus's HTTP API on 127.0.0.1 and a free port; its base URL."""
    app = web.Application()
    app.router.add_get("/api/v1/query", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _vector(*rows: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": m, "value": [1.0, v]} for m, v in rows]}}


def test_fetch_reads_prometheus_answer() -> None:
    asked: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(request.query["query"])
        return web.json_response(_vector(
            ({"source": "shop/client", "destination_service": meshpage_tree.REVIEWS, "destination_subset": "v1"}, "1.25"),
            ({"source": "shop/client", "destination_service": meshpage_tree.REVIEWS}, "NaN")))

    async def go() -> list[prom_rates.Sample]:
        async with _prometheus(answer) as url:
            return await prom_rates.fetch(url + "/")

    assert asyncio.run(go()) == [prom_rates.Sample("shop/client", meshpage_tree.REVIEWS, "v1", 1.25)]
    assert asked == [prom_rates.QUERY]


@pytest.mark.parametrize(("status", "body", "why"), [
    (400, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}),
     "Prometheus answered 400: parse error"),
    (200, "<html>login</html>", "Prometheus answered 200 with no JSON"),
    (200, json.dumps({"status": "success", "data": {"result": [{"value": 3}]}}), "not an instant vector"),
])
def test_a_bad_answer_is_a_note(status: int, body: str, why: str) -> None:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(status=status, text=body)

    async def go() -> dict[str, Any]:
        async with _prometheus(answer) as url:
            return await _rates_of(url)

    rates = asyncio.run(go())
    assert rates["configured"] and why in rates["note"]


async def _rates_of(url: str, timeout: float = prom_rates.TIMEOUT_S) -> dict[str, Any]:
    doc = await mesh_view.MeshView(url, timeout=timeout).to_json(None, Status(), [], ORIGINS.get)
    rates: dict[str, Any] = doc["rates"]
    return rates


def test_prometheus_down_or_slow_is_a_note_within_the_timeout() -> None:
    down = asyncio.run(_rates_of(f"http://127.0.0.1:{envoy_process.free_port()}"))
    assert down["note"].startswith("no request rates: Prometheus is unreachable")

    async def go() -> dict[str, Any]:
        release = asyncio.Event()

        async def hang(_: web.Request) -> web.Response:
            await release.wait()
            return web.Response(text="late")

        async with _prometheus(hang) as url:
            try:
                return await _rates_of(url, timeout=0.5)
            finally:
                release.set()

    started = time.monotonic()
    slow = asyncio.run(go())
    assert slow["note"] == "no request rates: Prometheus did not answer within 0.5s"
    assert time.monotonic() - started < 10  # only bounds a hang (the server's start counts too); speed is for bench/


def _admin(mesh: Callable[[], Awaitable[Any]]) -> admin.AdminServer:
    return admin.AdminServer(status=Status, metrics=metrics_mod.Metrics(), mesh=mesh)


def _get(server: admin.AdminServer, path: str, peer: str) -> admin.Response:
    request = admin.Request("GET", path, {}, {"host": f"{peer}:15014"}, b"", peer)
    return asyncio.run(server._dispatch(request))


async def _document() -> dict[str, Any]:
    return {"nodes": []}


@pytest.mark.parametrize("peer", ["127.0.0.1", "10.1.2.3"])
def test_the_page_follows_the_admin_ports_exposure_not_debugs(peer: str) -> None:
    """Like /status, and unlike /debug/* (full configs), the page is served to whoever reaches the admin port: it
    holds the policy's routing and the proxies' states, no key or config dump (README, Seeing the mesh)."""
    server = _admin(_document)
    graph = _get(server, "/mesh/graph", peer)
    assert (graph.status, json.loads(graph.body)) == (200, {"nodes": []})
    page = _get(server, "/mesh", peer)
    assert page.status == 200 and page.content_type.startswith("text/html")


def test_the_page_runs_only_its_own_script() -> None:
    page = _get(_admin(_document), "/mesh", "127.0.0.1")
    csp = dict(page.headers)["Content-Security-Policy"]
    (script,) = re.findall(rb"<script>(.*?)</script>", page.body, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert b"http://" not in page.body.replace(b"http://www.w3.org/2000/svg", b"")  # nothing fetched elsewhere
    assert page.body == mesh_page.load().body


def test_serve_takes_a_prometheus_url(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli._parser().parse_args(["serve", "--repo", "r", "--prometheus-url", "http://prometheus:9090"])
    assert serve.config_from_args(args).prometheus_url == "http://prometheus:9090"
    assert serve.config_from_args(cli._parser().parse_args(["serve", "--repo", "r"])).prometheus_url is None
    for bad in ("prometheus:9090", "ftp://prometheus", "http://p:9090/?query=up"):
        with pytest.raises(SystemExit) as exit_:
            cli._parser().parse_args(["serve", "--repo", "r", "--prometheus-url", bad])
        assert exit_.value.code == 2 and "expected an http(s) URL" in capsys.readouterr().err
