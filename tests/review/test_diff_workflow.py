"""The pull-request workflow (.github/workflows/diff-policies.yml) runs a `meshward diff` the parser accepts, in
markdown, and posts what it wrote as the job summary and as a comment it finds again by its marker."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from review_repos import BASE, POLICY, Repo, routing
from ruamel.yaml import YAML

from meshward import cli

WORKFLOW = Path(__file__).parents[2] / ".github" / "workflows" / "diff-policies.yml"


def _steps() -> list[dict[str, object]]:
    doc = YAML(typ="safe").load(WORKFLOW.read_text())
    return list(doc["jobs"]["diff"]["steps"])


def test_the_diff_step_runs_a_command_the_parser_accepts() -> None:
    (step,) = [s for s in _steps() if "meshward diff" in str(s.get("run", ""))]
    script = str(step["run"]).replace("\\\n", " ")
    line = next(ln for ln in script.splitlines() if "meshward diff" in ln)
    words = shlex.split(line.replace('"$(git merge-base "$BASE" "$HEAD")"', "BASE"))
    words = words[words.index("meshward") + 1:words.index(">")]
    # the DIFF_NODES loop makes "${nodes[@]}" a run of --node NODE pairs
    nodes = ["--node", "sidecar~10.0.0.9~web-5d8f9c7b6d-x2x4z.shop~shop.svc.cluster.local"]
    words = [x for w in words for x in (nodes if w == "${nodes[@]}" else [w.replace("$POLICY_DIR", "policies")])]
    args = cli._parser().parse_args(words)
    assert (args.command, args.format, args.rev_from, args.rev_to, args.node) == (
        "diff", "markdown", "BASE", "$HEAD", nodes[1:])
    assert 'for node in $DIFF_NODES; do nodes+=(--node "$node"); done' in script
    assert "GITHUB_STEP_SUMMARY" in script and "<!-- meshward-diff -->" in script


def test_the_comment_is_updated_by_its_marker() -> None:
    (step,) = [s for s in _steps() if str(s.get("uses", "")).startswith("actions/github-script")]
    script = str(step["with"]["script"])  # type: ignore[index]
    assert "<!-- meshward-diff -->" in script and "updateComment" in script and "createComment" in script


def test_the_diff_step_runs_in_bash_on_a_pull_request(tmp_path: Path) -> None:
    """The step's own script, run by bash as the runner runs it, on a repository with a base and a head commit."""
    (step,) = [s for s in _steps() if "meshward diff" in str(s.get("run", ""))]
    repo = Repo(tmp_path / "repo")
    base = repo.commit(BASE, "base")
    head = repo.commit({f"{POLICY}/routing.yaml": routing(50, 50)}, "weights")
    shim = tmp_path / "bin" / "meshward"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m meshward \"$@\"\n")
    shim.chmod(0o755)
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}", "POLICY_DIR": POLICY, "DIFF_NODES": "",
           "BASE": base, "HEAD": head, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
                          cwd=repo.root, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert output.read_text() == "code=1\n"
    text = summary.read_text()
    assert text.startswith("### `meshward diff ") and "```mermaid\n" in text and text.endswith("<!-- meshward-diff -->\n")
    assert (repo.root / "meshward-diff.md").read_text() == text
