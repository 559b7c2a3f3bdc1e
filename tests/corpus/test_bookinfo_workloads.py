"""Istio's bookinfo as it is (../shared/corpus/istio-bookinfo: Deployments, Services, ServiceAccounts, routing),
with no WorkloadEntry added: every bookinfo proxy compiles, from the pod name a Deployment would give it, and real
Envoy accepts each config. Endpoints are empty (only the cluster knows the pods' IPs); the pods' labels, service
accounts and ports are the Deployments'."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compiler import build, translate
from meshward import cli

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "istio-bookinfo"
POD = "{}-5d8f9b7c4-bq2xz"  # <deployment>-<pod-template-hash>-<suffix>, as Kubernetes names a Deployment's pods
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/istio-bookinfo is not present")


@pytest.fixture(scope="module")
def bookinfo() -> build.Build:
    result = build.build([CORPUS])
    assert result.ok, [d.render() for d in build.errors(result)]
    return result


def _node(deployment: str, at: int) -> str:
    return f"sidecar~10.1.0.{at}~{POD.format(deployment)}.default~default.svc.cluster.local"


def _deployments(result: build.Build) -> list[str]:
    assert result.model is not None
    return sorted(r.name for r in result.model.resources.of_kind("Deployment"))


def test_every_deployment_of_bookinfo_is_a_proxy(bookinfo: build.Build) -> None:
    names = _deployments(bookinfo)
    assert {"productpage-v1", "details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"} <= set(names)
    for at, name in enumerate(names, start=1):
        cfg = build.proxy_config(bookinfo, _node(name, at))
        assert cfg.proxy.label_map()["app"] == name.split("-")[0]
        assert all(not la.endpoints for la in cfg.load_assignments if "|9080|" in la.cluster_name)
        inbound = {li.port for li in cfg.listeners if li.address == f"10.1.0.{at}"}
        assert inbound, f"{name}: no inbound listener from the Service that selects it"


def test_reviews_v1_gets_the_routing_of_its_labels(bookinfo: build.Build) -> None:
    cfg = build.proxy_config(bookinfo, _node("reviews-v1", 9))
    assert cfg.proxy.label_map() == {"app": "reviews", "version": "v1"}
    assert "outbound|9080|v1|ratings.default.svc.cluster.local" in {c.name for c in cfg.clusters}


def test_the_tree_lists_one_proxy_per_deployment_that_resolves_back_to_it(bookinfo: build.Build) -> None:
    listed = bookinfo.proxies()
    assert sorted(p.node_id for p in listed) == sorted(
        f"sidecar~192.0.2.1~{name}-xxxxx-xxxxx.default~default.svc.cluster.local" for name in _deployments(bookinfo))
    assert len(listed) == 12
    assert bookinfo.model is not None
    for proxy in listed:
        assert translate.find_proxy(bookinfo.model, proxy.node_id) == proxy


@pytest.mark.envoy
def test_compile_all_writes_the_same_bytes_twice_and_envoy_accepts_each(envoy_bin: str, tmp_path: Path) -> None:
    written = []
    for run in ("a", "b"):
        assert cli.main(["compile", str(CORPUS), "--all", "--format", "bootstrap", "-o", str(tmp_path / run)]) == 0
        written.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert written[0] == written[1] and len(written[0]) == 12
    runs = [(name, subprocess.Popen([envoy_bin, "--mode", "validate", "-c", str(tmp_path / "a" / name),
                                     "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)) for name in written[0]]
    for name, proc in runs:
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{name}: {stderr[-2000:]}"


def test_graph_draws_bookinfo_routing_with_no_node_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["graph", str(CORPUS)]) == 0
    out = capsys.readouterr().out
    for service in ("productpage", "details", "ratings", "reviews"):
        assert f'["{service}.default"]' in out
    assert '("reviews.default v3")' in out and '-->|"end-user=jason"|' in out


def test_compile_of_the_tree_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = _node("productpage-v1", 3)
    assert cli.main(["compile", str(CORPUS), "--node", node, "-o", str(tmp_path / "pp.json")]) == 0
    assert "10.1.0.3_9080" in (tmp_path / "pp.json").read_text()  # the inbound listener at the pod's IP
    assert cli.main(["compile", str(CORPUS), "--node", node.replace("5d8f9b7c4", "bad")]) == 1
    assert "MW0401" in capsys.readouterr().err
