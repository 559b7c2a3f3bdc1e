"""Weighted splits: the tolerance's statistics (exact binomial figures, no Envoy), and a real 90/10 split measured
through Envoy, which passes when expected and fails when an even split is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from routetest import run, stats
from routetest.run import Outcome

TREE = Path(__file__).parent / "trees" / "split"


@pytest.mark.parametrize(("shares", "requests"), [([0.5, 0.5], 1704), ([0.9, 0.1], 831), ([0.8, 0.2], 1234)])
def test_requests_tell_a_split_from_one_ten_points_off(shares: list[float], requests: int) -> None:
    """The figures docs/policy.md gives: a correct split fails at most once in a million runs, and one whose shares
    are off by 10 percentage points passes at most once in a thousand."""
    n = stats.requests_needed(shares)
    assert n == requests
    accepted = stats.bounds(n, shares)
    for p, (lo, hi) in zip(shares, accepted, strict=True):
        assert 1 - stats.pass_probability(n, p, (lo, hi)) <= stats.FALSE_FAILURE / len(shares)
        for off in (p - 0.1, p + 0.1):
            if 0 <= off <= 1:
                assert stats.pass_probability(n, off, (lo, hi)) <= stats.MISSED_SHIFT


def test_the_interval_is_the_narrowest_the_false_failure_rate_allows() -> None:
    n, p, tail = 1000, 0.3, 1e-7
    lo, hi = stats.interval(n, p, tail)
    assert stats.pass_probability(n, p, (0, lo - 1)) <= tail < stats.pass_probability(n, p, (0, lo))
    assert stats.pass_probability(n, p, (hi + 1, n)) <= tail < stats.pass_probability(n, p, (hi, n))
    assert stats.interval(100, 0.0, tail) == (0, 0) and stats.interval(100, 1.0, tail) == (100, 100)


@pytest.fixture(scope="module")
def outcome(envoy_bin: str) -> Outcome:
    return run.run([TREE], envoy_bin=envoy_bin)


@pytest.mark.envoy
def test_a_real_split_passes_its_weights(outcome: Outcome) -> None:
    (right,) = [r for r in outcome.results if r.case.name == "the canary gets a tenth"]
    assert right.passed, right.problems


@pytest.mark.envoy
def test_a_wrong_split_fails_with_the_counts(outcome: Outcome) -> None:
    (wrong,) = [r for r in outcome.results if r.case.name.startswith("wrong:")]
    assert [c.problems for c in wrong.calls] == [()]  # the route matched is the one expected
    assert len(wrong.problems) == 2
    assert wrong.problems[0].startswith("split: web subset stable got ")
    assert wrong.problems[0].endswith(" of 400 requests, expected 150..250 for weight 50%")
