"""The pull-request workflow (.github/workflows/diff-policies.yml) runs a `meshward diff` the parser accepts, in
markdown, and posts what it wrote as the job summary and as a comment it finds again by its marker."""

from __future__ import annotations

import shlex
from pathlib import Path

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
    args = cli._parser().parse_args([w.replace("$POLICY_DIR", "policies") for w in words])
    assert (args.command, args.format, args.rev_from, args.rev_to) == ("diff", "markdown", "BASE", "$HEAD")
    assert "GITHUB_STEP_SUMMARY" in script and "<!-- meshward-diff -->" in script


def test_the_comment_is_updated_by_its_marker() -> None:
    (step,) = [s for s in _steps() if str(s.get("uses", "")).startswith("actions/github-script")]
    script = str(step["with"]["script"])  # type: ignore[index]
    assert "<!-- meshward-diff -->" in script and "updateComment" in script and "createComment" in script
