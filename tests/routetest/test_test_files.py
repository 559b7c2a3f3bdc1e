"""Test files: bad ones are reported at file:line with a stable code and nothing runs; `--tests DIR` takes the
tests from a directory that is then not read as policy; a tree without tests is an error, not a pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshward import cli
from routetest import cases, run

TREES = Path(__file__).parent / "trees"
BAD = TREES / "bad"


def _located(outcome: run.Outcome) -> list[tuple[str, int, str]]:
    return [(Path(d.position.file).name, d.position.line, d.code) for d in outcome.diagnostics]


def test_bad_test_files_are_located_and_nothing_runs() -> None:
    """Each bad case on its own line (one bad case hides no other), a document that is no test, a YAML error, and
    a proxy the tree does not have; no Envoy is started (no envoy binary is given or needed)."""
    outcome = run.run([BAD], envoy_bin="/nonexistent/envoy")
    assert _located(outcome) == [
        ("bad_test.yaml", 31, "MW0001"),  # YAML syntax, in the third document
        ("bad_test.yaml", 5, "MW0101"),  # `rout`: unknown field
        ("bad_test.yaml", 7, "MW0103"),  # no request
        ("bad_test.yaml", 9, "MW0502"),  # a URL, not a path
        ("bad_test.yaml", 11, "MW0102"),  # a string, not a list
        ("bad_test.yaml", 13, "MW0502"),  # two proxies
        ("bad_test.yaml", 17, "MW0502"),  # not a duration
        ("bad_test.yaml", 21, "MW0502"),  # a method that is no HTTP token
        ("bad_test.yaml", 20, "MW0502"),  # a line break in the authority
        ("bad_test.yaml", 23, "MW0502"),  # a header name with a space
        ("bad_test.yaml", 23, "MW0502"),  # a line break in a header value
        ("bad_test.yaml", 25, "MW0501"),  # a document without testCases
        ("proxy_test.yaml", 2, "MW0503"),  # no such workload
    ]
    assert outcome.results == []
    messages = [d.message for d in outcome.diagnostics]
    assert 'unknown field "rout"; did you mean "route"?' in messages
    assert "'http://web/' is not a request path (it starts with /, no spaces)" in messages


def test_the_command_exits_2_with_located_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["test", str(BAD), "--envoy", "/nonexistent/envoy"]) == 2
    out = capsys.readouterr().out
    assert f"{BAD / 'bad_test.yaml'}:5:3: error MW0101: testCases[0].rout: unknown field" in out
    assert "Traceback" not in out


def test_junit_output_says_the_errors_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["test", str(BAD), "--envoy", "/nonexistent/envoy", "--format", "junit"]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith("<?xml")
    assert f"{BAD / 'proxy_test.yaml'}:2:3: error MW0503:" in captured.err


def test_a_tree_without_tests_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(BAD / "web.yaml", tmp_path)
    assert cli.main(["test", str(tmp_path), "--envoy", "/nonexistent/envoy"]) == 2
    assert "no test case found" in capsys.readouterr().err


def test_a_workload_is_a_deployment_by_its_name_too(tmp_path: Path) -> None:
    """`{workload: app/web}` leaves the pod the tree lists for Deployment web; the unknown one still stops the run
    before Envoy (none is given)."""
    shutil.copy(BAD / "web.yaml", tmp_path)
    (tmp_path / "deploy.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: "
                                          "app}\nspec:\n  template:\n    metadata: {labels: {app: web}}\n")
    case = "- description: {0}\n  from: {{workload: app/{0}}}\n  request: {{authority: [web], uri: [/]}}\n"
    (tmp_path / "from_test.yaml").write_text("testCases:\n" + case.format("web") + case.format("nobody"))
    assert _located(run.run([tmp_path], envoy_bin="/nonexistent/envoy")) == [("from_test.yaml", 5, "MW0503")]


def test_tests_dir_holds_the_tests_and_is_not_policy(tmp_path: Path) -> None:
    """With --tests, every YAML file there is a test (whatever its name) and none is read as policy."""
    shutil.copy(BAD / "web.yaml", tmp_path)
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "web.yaml").write_text("testCases:\n- description: d\n  request: {authority: [web], "
                                                  "uri: [/]}\n")
    assert [p.name for p in cases.find_files([tmp_path], tmp_path / "checks")] == ["web.yaml"]
    loaded = run._policy([tmp_path], tmp_path / "checks")
    assert [Path(d.file).name for d in loaded.documents] == ["web.yaml"] and loaded.diagnostics == []
    assert all("checks" not in d.file for d in loaded.documents)


def test_the_go_tools_defaults_and_combinations() -> None:
    """Every combination of the request's lists is one request; method GET when omitted; `wantMatch` true when
    omitted (see routetest.cases)."""
    found = cases.read([TREES / "shop" / "header_test.yaml", TREES / "shop" / "shop_test.yaml"])
    assert found.diagnostics == []
    by_name = {c.name: c for c in found.cases}
    assert [str(c) for c in by_name["match a header by presence"].calls()] == [
        "GET www.example.com/headers/v1", "POST www.example.com/headers/v1"]
    gone = by_name["gone answers 410 itself"]
    assert len(gone.calls()) == 4 and gone.spec.want_match
    assert not by_name["a header match is not a default"].spec.want_match
