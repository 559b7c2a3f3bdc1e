"""A commit can never make `serve` read outside the repository (issue 13).

The chain that escaped: `0 -> a/b/c/../../..` and `a/b/c -> ../..`. git archive lists `0` before `a/`, so when tar
extracts `0`, `a/b/c` does not exist yet and `0` seems to stay inside; once `a/b/c` is there, `0` is three levels
above the export: a `--path 0/...` read YAML from outside the commit. Whether tar's `data` filter catches such a
chain depends on the Python patch release, so the loop and the loader check real paths themselves.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from gitops_fakes import FakeCache, FakeCompiler, snapshot_for
from gitops_repos import Remote

from reconciler import compose
from reconciler.git.source import GitSource, SourceConfig
from reconciler.loop import LoopConfig, Reconciler
from reconciler.ops.status import SyncResult

STOLEN = "apiVersion: v1\nkind: Namespace\nmetadata: {name: stolen}\n"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"


def _commit_escape(remote: Remote, outside: Path) -> None:
    """Commit the chain; `outside` (next to the source's workdir) holds YAML the chain leads to."""
    outside.mkdir()
    (outside / "x.yaml").write_text(STOLEN)
    (outside / "mesh.yaml").write_text("stolen\n")
    (remote.work / "a" / "b").mkdir(parents=True)
    os.symlink("../..", remote.work / "a" / "b" / "c")
    os.symlink("a/b/c/../../..", remote.work / "0")  # from commits/<sha>: commits, work, then the test's directory
    (remote.work / "_policies").mkdir()  # sorted before a/, as `0` is: extracted while `0` still seems inside
    os.symlink("../0/stolen/x.yaml", remote.work / "_policies" / "linked.yaml")
    remote.commit({"_policies/ns.yaml": NAMESPACE}, "escape")


def _source(remote: Remote, tmp_path: Path) -> GitSource:
    return GitSource(SourceConfig(url=str(remote.bare), workdir=tmp_path / "work"))


def test_the_chain_does_lead_outside_the_export(remote: Remote, tmp_path: Path) -> None:
    _commit_escape(remote, tmp_path / "stolen")
    fetched = _source(remote, tmp_path).poll()
    assert fetched is not None and fetched.tree is not None
    assert (fetched.tree / "0" / "stolen" / "x.yaml").read_text() == STOLEN  # what the checks below refuse
    assert (fetched.tree / "_policies" / "linked.yaml").read_text() == STOLEN


def test_the_loop_refuses_a_path_that_leaves_the_repository(remote: Remote, tmp_path: Path) -> None:
    _commit_escape(remote, tmp_path / "stolen")
    compiler, cache = FakeCompiler(), FakeCache()
    rec = Reconciler(_source(remote, tmp_path), build=compiler.build, snapshot_for=snapshot_for, publisher=cache,
                     config=LoopConfig(path="0/stolen"))
    assert asyncio.run(asyncio.wait_for(rec.reconcile_once(), 10.0)) is SyncResult.VALIDATION_FAILED
    assert compiler.calls == [] and cache.revisions == []
    assert any("MW0013" in line for line in rec.status.errors)


def test_the_loader_reads_nothing_outside_the_export(remote: Remote, tmp_path: Path) -> None:
    _commit_escape(remote, tmp_path / "stolen")
    fetched = _source(remote, tmp_path).poll()
    assert fetched is not None and fetched.tree is not None
    escaped = compose.Compiler(repo_path="0/stolen").load(fetched.tree / "0" / "stolen")
    assert escaped.documents == () and [d.code for d in escaped.diagnostics] == ["MW0013"]
    inside = compose.Compiler(repo_path="_policies").load(fetched.tree / "_policies")
    assert [d.data["metadata"]["name"] for d in inside.documents] == ["shop"]
    assert [(d.code, d.position.file) for d in inside.diagnostics] == [("MW0010", "_policies/linked.yaml")]
