"""The routing tests that ship beside policies-example (the validate-policies workflow runs them) pass, and reach
the routes they are written for."""

from __future__ import annotations

from pathlib import Path

import pytest

from routetest import run

EXAMPLE = Path(__file__).parents[2] / "policies-example"


@pytest.mark.envoy
def test_the_examples_tests_pass(envoy_bin: str) -> None:
    outcome = run.run([EXAMPLE], envoy_bin=envoy_bin)
    assert outcome.errors == []
    assert {r.case.name: [p for c in r.calls for p in c.problems] + list(r.problems) for r in outcome.results
            if not r.passed} == {}
    assert outcome.coverage is not None
    assert sorted(r.name for r in outcome.coverage.hit()) == ["canary-v2", "jason-v3", "productpage", "root-redirect"]
