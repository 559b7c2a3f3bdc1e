"""`meshward diff`'s contract beyond the reports: the work tree side, JSON, and errors as one line with exit 2
(not a repository, an unknown revision, a policy that does not compile), never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from review_repos import BASE, POLICY, Repo, routing

from meshward import cli


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.commit(BASE, "base")
    return repo


def test_the_work_tree_against_head_by_default(repo: Repo, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.root / POLICY)
    assert cli.main(["diff"]) == 0
    repo.write({f"{POLICY}/routing.yaml": routing(70, 30)})
    capsys.readouterr()
    assert cli.main(["diff", "--worktree"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("meshward diff HEAD (") and " -> worktree, mesh/\n" in out
    assert "clusters[outbound|9080|v1|reviews.shop.svc.cluster.local].weight: 80 -> 70\n" in out


def test_json_names_fields_values_and_causes(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    # a zero weight drops the destination (Pilot): one cluster left, so the route names it instead of weights
    repo.write({f"{POLICY}/routing.yaml": routing(0, 100)})
    assert cli.main(["diff", str(repo.root / POLICY), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["changed"] and doc["to"] == "worktree" and doc["path"] == POLICY
    client = next(p for p in doc["proxies"] if "~client." in p["node"])
    (route,) = client["resources"]
    assert (route["type"], route["name"], route["change"]) == ("routes", "9080", "changed")
    vhost = "vhost reviews.shop.svc.cluster.local:9080 / routes[1].route."
    assert [(f["path"], f["before"], f["after"]) for f in route["fields"]] == [
        (vhost + "cluster", None, "outbound|9080|v2|reviews.shop.svc.cluster.local"),
        (vhost + "weighted_clusters", {"clusters": [
            {"name": "outbound|9080|v1|reviews.shop.svc.cluster.local", "weight": 80},
            {"name": "outbound|9080|v2|reviews.shop.svc.cluster.local", "weight": 20}]}, None)]
    where = {"file": f"{POLICY}/routing.yaml", "line": 1, "kind": "VirtualService", "namespace": "shop",
             "name": "reviews"}
    assert all(f["causes"] == [where] for f in route["fields"])
    assert doc["documents"] == [where]


def test_a_metrics_setting_is_a_bootstrap_change(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    """Telemetry metrics change no xDS resource: diff shows them as the proxies' bootstrap, which a restart takes."""
    repo.write({f"{POLICY}/telemetry.yaml": "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\n"
                                            "metadata: {name: metrics, namespace: shop}\nspec:\n  metrics:\n"
                                            "  - overrides:\n    - match: {metric: REQUEST_DURATION}\n"
                                            "      disabled: true\n"})
    assert cli.main(["diff", str(repo.root / POLICY), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    client = next(p for p in doc["proxies"] if "~client." in p["node"])
    (stats,) = client["resources"]
    assert (stats["type"], stats["change"]) == ("bootstrap", "changed")
    assert [(f["path"], f["before"], f["after"]) for f in stats["fields"]] == [
        ("disabled", [], ["REQUEST_DURATION"])]
    assert stats["fields"][0]["causes"] == [{"file": f"{POLICY}/telemetry.yaml", "line": 1, "kind": "Telemetry",
                                             "namespace": "shop", "name": "metrics"}]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshward", "diff", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def test_errors_are_one_line_and_exit_2(repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    repo.write({f"{POLICY}/broken.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                         "metadata: {name: x, namespace: shop}\nspec: {hosts: 7}\n"})
    cases = {
        "not a repository": (_run(str(outside), cwd=tmp_path), "not inside a git repository"),
        "no such directory": (_run(str(tmp_path / "nope"), cwd=tmp_path), "not a directory"),
        "unknown revision": (_run(POLICY, "--from", "no-such-rev", cwd=repo.root), "unknown revision 'no-such-rev'"),
        "broken policy": (_run(POLICY, cwd=repo.root),
                          f"worktree does not compile (1 error(s), first: {POLICY}/broken.yaml:4"),
    }
    for what, (done, message) in cases.items():
        assert done.returncode == 2, (what, done.stderr)
        assert done.stdout == "", what
        assert done.stderr.count("\n") == 1 and message in done.stderr, (what, done.stderr)
        assert done.stderr.startswith("meshward diff: "), what


def test_a_revision_without_the_policy_directory_is_an_empty_tree(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit({"README.md": "policy to come\n"}, "empty")
    repo.commit(BASE, "policy")
    assert cli.main(["diff", str(repo.root / POLICY), "--from", "HEAD~1", "--to", "HEAD"]) == 1
    out = capsys.readouterr().out
    assert "0 proxies changed, 4 added, 0 removed; 8 documents changed" in out
    assert "proxies added:\n  sidecar~10.0.0.11~reviews-v1.shop~shop.svc.cluster.local\n" in out


DEPLOYMENT = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: shop}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: app, image: client}]}
"""
CLIENT_POD = "sidecar~10.0.0.9~client-5d8f9c7b6d-x2x4z.shop~shop.svc.cluster.local"


def test_a_deployments_pod_is_compared_with_no_node_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Deployment's pods have no name or IP in Git: one stands for them all, under a fixed name; a pod named with
    --node as the cluster names it is compared too."""
    repo = Repo(tmp_path / "repo")
    base = {**BASE, f"{POLICY}/workloads.yaml": DEPLOYMENT}
    repo.commit(base, "base")
    repo.write({f"{POLICY}/routing.yaml": routing(60, 40)})
    policy = str(repo.root / POLICY)
    assert cli.main(["diff", policy]) == 1
    out = capsys.readouterr().out
    assert 'route_config "9080" changed (proxy: sidecar~192.0.2.1~client-xxxxx-xxxxx.shop~shop.svc.cluster.local)\n' \
        in out and ".weight: 80 -> 60\n" in out
    assert cli.main(["diff", policy, "--node", CLIENT_POD]) == 1
    out = capsys.readouterr().out
    assert "2 proxies changed" in out and CLIENT_POD in out
    assert cli.main(["diff", policy, "--node", CLIENT_POD.replace("client-", "nobody-")]) == 2
    assert capsys.readouterr().err.startswith("meshward diff: unknown proxy sidecar~10.0.0.9~nobody-")
    assert cli.main(["graph", policy]) == 0
    assert '-->|"60%"|' in capsys.readouterr().out
