"""Istio's bookinfo as it is (../shared/corpus/istio-bookinfo: Deployments, Services, ServiceAccounts, routing),
with no WorkloadEntry added: every bookinfo proxy compiles, from the pod name a Deployment would give it, and real
Envoy accepts each config. Endpoints are empty (only the cluster knows the pods' IPs); the pods' labels, service
accounts and ports are the Deployments'."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compiler import build
from compiler.emit import bootstrap_static, dump
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


@pytest.mark.envoy
def test_envoy_accepts_every_bookinfo_proxy(bookinfo: build.Build, envoy_bin: str, tmp_path: Path) -> None:
    for at, name in enumerate(_deployments(bookinfo), start=1):
        cfg = build.proxy_config(bookinfo, _node(name, at))
        path = tmp_path / f"{name}.json"
        path.write_text(dump.to_json(bootstrap_static.static_bootstrap(cfg)))
        checked = subprocess.run([envoy_bin, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, f"{name}: {checked.stderr[-2000:]}"


def test_compile_of_the_tree_as_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = _node("productpage-v1", 3)
    assert cli.main(["compile", str(CORPUS), "--node", node, "-o", str(tmp_path / "pp.json")]) == 0
    assert "10.1.0.3_9080" in (tmp_path / "pp.json").read_text()  # the inbound listener at the pod's IP
    assert cli.main(["compile", str(CORPUS), "--node", node.replace("5d8f9b7c4", "bad")]) == 1
    assert "MW0401" in capsys.readouterr().err
