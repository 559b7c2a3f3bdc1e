"""Files are named relative to the repository, whatever directory a commit was exported to: the names are in
diagnostics and in every emitted resource's metadata, so a name that changed per commit would change every
resource of every proxy on every commit (a full push instead of the changed routes)."""

from __future__ import annotations

import shutil
from pathlib import Path

from compiler import build
from reconciler import compose

ROOT = Path(__file__).resolve().parents[2]
NODE = "sidecar~127.0.0.11~productpage-v1.bookinfo~bookinfo.svc.cluster.local"


def _export(tmp: Path, sha: str) -> Path:
    tree = tmp / "commits" / sha / "mesh" / "policies"
    shutil.copytree(ROOT / "policies-example", tree)
    return tree


def test_names_are_relative_to_the_repository(tmp_path: Path) -> None:
    compiler = compose.Compiler(repo_path="mesh/policies")
    first = compiler.load(_export(tmp_path, "aaaa"))
    assert {d.file.split("/bookinfo/")[0] for d in first.documents if "/bookinfo/" in d.file} == {"mesh/policies"}


def test_an_unchanged_resource_is_the_same_in_two_commits(tmp_path: Path) -> None:
    compiler = compose.Compiler(repo_path="mesh/policies")
    one = compiler.build(compiler.load(_export(tmp_path, "aaaa")), None)
    second_tree = _export(tmp_path, "bbbb")
    reviews = second_tree / "bookinfo" / "routing" / "reviews.yaml"
    reviews.write_text(reviews.read_text().replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30"))
    two = compiler.build(compiler.load(second_tree), None)
    before, after = build.snapshot_for(one.build, NODE), build.snapshot_for(two.build, NODE)
    clusters = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    routes = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    assert after.versions[clusters] == before.versions[clusters]
    assert after.versions[routes] != before.versions[routes]
