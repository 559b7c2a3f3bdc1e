"""Conformance with Istio's own routing expectations: the simulation tests of Pilot (the corpus in
../shared/corpus/istio-simulation, beside the project; see its README).

Each case's proxy is compiled by meshward and run in a real Envoy (`sim_harness`, on `meshward test`'s runner); each call is sent with the
case's Host, path and port, and the upstream cluster Envoy picked (its access log) must be the one Istio's test
expects. A call Istio expects to find no virtual host for must get Envoy's 404 without a cluster (NR). Where meshward
differs on purpose, `DIFFERENCES` names the case and why; a listed difference must still be one.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping
from pathlib import Path

import pytest
import sim_harness
from sim_harness import Case, Outcome, Seen

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus" / "istio-simulation"
CASES = sorted((Case.read(d) for d in CORPUS.iterdir() if (d / "calls.json").is_file()),
               key=lambda c: c.name) if CORPUS.is_dir() else []
KNOWN_EXPECTATIONS = {"cluster", "fallback", "derived"}

# case -> why meshward reaches another cluster than Istio's test expects, on purpose.
DIFFERENCES: Mapping[str, str] = {}

pytestmark = [pytest.mark.envoy,
              pytest.mark.skipif(not CASES, reason=f"Istio simulation corpus not found at {CORPUS}")]


@pytest.fixture(scope="module")
def outcomes(envoy_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case compiled, its Envoy started (all at once), its calls sent: one run for the whole module."""
    workdir = tmp_path_factory.mktemp("istio-simulation")
    out: dict[str, Outcome] = {}
    plans = []
    for case in CASES:
        bootstrap, errors = sim_harness.compile_case(case)
        if bootstrap is None:
            out[case.name] = Outcome(errors=errors)
        else:
            plans.append((case, bootstrap))
    with sim_harness.started(plans, workdir, envoy_bin) as running:
        seen = sim_harness.send_all([case for case, _ in plans], running)
    out.update({name: Outcome(seen=calls) for name, calls in seen.items()})
    return out


def _matches(expect: Mapping[str, object], seen: Seen) -> bool:
    if expect.get("fallback"):
        return seen.status == 404 and seen.cluster == sim_harness.NO_CLUSTER and "NR" in seen.flags
    return seen.cluster == expect["cluster"]


def _mismatches(case: Case, outcome: Outcome) -> list[str]:
    if outcome.errors:
        return ["no call sent: " + "; ".join(outcome.errors)]
    return [f"{call.name}: expected {dict(call.expect)}, Envoy: {outcome.seen[call.name]}"
            for call in case.calls if not _matches(call.expect, outcome.seen[call.name])]


@functools.cache
def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


@pytest.mark.parametrize("name", [c.name for c in CASES if c.name not in DIFFERENCES])
def test_case_routes_as_istio(name: str, outcomes: dict[str, Outcome]) -> None:
    assert not _mismatches(_case(name), outcomes[name])


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_listed_differences_are_real(name: str, outcomes: dict[str, Outcome]) -> None:
    """When a listed case starts to match Istio, its entry must go."""
    assert _mismatches(_case(name), outcomes[name]), f"{name} now routes as Istio; remove it from DIFFERENCES"


def test_every_expectation_is_judged() -> None:
    """A corpus expectation (or protocol) this judge does not know must fail loudly rather than pass unjudged."""
    unknown = collections.Counter(key for case in CASES for call in case.calls for key in call.expect
                                  if key not in KNOWN_EXPECTATIONS)
    assert not unknown
    assert all("cluster" in call.expect or call.expect.get("fallback") for case in CASES for call in case.calls)
    assert {call.protocol for case in CASES for call in case.calls} == {"http"}


def test_summary(outcomes: dict[str, Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    rows = {c.name: ("difference" if c.name in DIFFERENCES
                     else "match" if not _mismatches(c, outcomes[c.name]) else "MISMATCH") for c in CASES}
    with capsys.disabled():
        print(f"\nIstio simulation corpus: {collections.Counter(rows.values())}")
        for name, row in rows.items():
            print(f"  {name}: {row}")
