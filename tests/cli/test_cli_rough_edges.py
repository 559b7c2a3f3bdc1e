"""Rough edges a new user hit (issue 16), each reproduced: the words and exit codes the CLI gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import load
from meshward import cli


@pytest.mark.parametrize(("text", "tab"), [
    ("a:\n\tb: 1\n", True),
    ("a:\n  b: 1\n\t c: 2\n", True),
    ("a: [1, 2\n", False),
    ("a: b: c\n", False),
])
def test_the_tab_hint_only_where_a_tab_is(text: str, tab: bool) -> None:
    (problem,) = load.load_text(text, "p.yaml").diagnostics
    assert problem.code == "MW0001"
    assert ("tabs are not allowed" in str(problem)) is tab


def test_one_error_is_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text("a: [1, 2\n")
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 file, 0 resources: 1 error, 0 warnings"
