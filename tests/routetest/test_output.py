"""`meshward test`'s formats (text, JUnit XML, GitHub annotations, JSON) and exit codes, on trees/mini: one
test passes, one fails, and one route of two is reached."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from meshward import cli
from routetest import report, run
from routetest.run import Outcome

TREE = Path(__file__).parent / "trees" / "mini"
TEST_FILE = str(TREE / "web_test.yaml")

pytestmark = pytest.mark.envoy


@pytest.fixture(scope="module")
def outcome(envoy_bin: str) -> Outcome:
    return run.run([TREE], envoy_bin=envoy_bin)


def _render(outcome: Outcome, fmt: str) -> str:
    out = io.StringIO()
    report.render(outcome, fmt, out, show_coverage=True)
    return out.getvalue()


def test_text(outcome: Outcome) -> None:
    web = TREE / "web.yaml"
    reached = f"[reached {web}:14: VirtualService app/web route 'api']"
    assert _render(outcome, "text").splitlines() == [
        f"PASS {TEST_FILE}:3 the API is served -> {web}:14: VirtualService app/web route 'api'",
        f"FAIL {TEST_FILE}:7 the API answers 500",
        ("    GET web/api/v2: expected a direct response, the request went to cluster "
         f"outbound|80||web.app.svc.cluster.local {reached}"),
        f"    GET web/api/v2: expected direct response status 500, got 200 {reached}",
        "2 tests (2 requests): 1 passed, 1 failed",
        "route coverage: 1/2 VirtualService routes (50.0%)",
        f"  not reached: {web}:19: VirtualService app/web route 1",
    ]


def test_junit(outcome: Outcome) -> None:
    root = ET.fromstring(_render(outcome, "junit"))
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    (suite,) = root
    passed, failed = suite
    assert (passed.get("name"), passed.get("line"), passed.find("failure")) == ("the API is served", "3", None)
    failure = failed.find("failure")
    assert failure is not None and "expected a direct response" in (failure.get("message") or "")
    assert "expected direct response status 500, got 200" in (failure.text or "")
    assert failed.get("file") == TEST_FILE


def test_github_annotates_the_failing_case_line(outcome: Outcome) -> None:
    lines = [line for line in _render(outcome, "github").splitlines() if line.startswith("::")]
    assert len(lines) == 1
    assert lines[0].startswith(f"::error file={TEST_FILE},line=7,title=meshward test%3A the API answers 500::GET ")


def test_json(outcome: Outcome) -> None:
    data = json.loads(_render(outcome, "json"))
    assert [(t["description"], t["passed"]) for t in data["tests"]] == [
        ("the API is served", True), ("the API answers 500", False)]
    assert data["coverage"] == {"percent": 50.0, "routes": 2, "reached": 1, "not_reached": [
        {"file": str(TREE / "web.yaml"), "line": 19, "virtual_service": "app/web", "route": 1}]}


def test_exit_codes(envoy_bin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """1 for a failing test; with every test passing, 1 under --fail-under and 0 at it."""
    assert cli.main(["test", str(TREE), "--envoy", envoy_bin]) == 1
    (tmp_path / "web.yaml").write_text((TREE / "web.yaml").read_text())
    (tmp_path / "web_test.yaml").write_text("\n".join((TREE / "web_test.yaml").read_text().splitlines()[:6]) + "\n")
    assert cli.main(["test", str(tmp_path), "--envoy", envoy_bin, "--fail-under", "60"]) == 1
    assert "route coverage 50.0% is under --fail-under 60%" in capsys.readouterr().err
    assert cli.main(["test", str(tmp_path), "--envoy", envoy_bin, "--fail-under", "50"]) == 0
