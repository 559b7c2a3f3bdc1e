"""`meshward test` on trees/shop, run once for the module (one Envoy per proxy, two proxies): istio-config-validator's
example shapes (header, query, scheme, delegate, multi-document) and meshward's own expectations pass; each
deliberately wrong expectation (wrong_test.yaml) fails with the message that names expected and actual; route
coverage is exactly the routes the tests reach; and each request names the VirtualService route it reached by its
own file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from routetest import run
from routetest.run import CaseResult, Outcome

TREE = Path(__file__).parent / "trees" / "shop"
SHOP = str(TREE / "shop.yaml")

pytestmark = pytest.mark.envoy

# description -> a part of the one message the failing test must give
WRONG = {
    "wrong: jason to v1": "expected destinations reviews subset v1, got reviews.shop.svc.cluster.local subset v2 "
                          "port 9080 (weight 100)",
    "wrong: jason not to v2": "expected the destinations not to be reviews subset v2, and they are",
    "wrong: timeout": "expected timeout 5s (5000 ms), the route has 3000 ms",
    "wrong: retries": "expected 5 retries after a 503, Envoy made 2",
    "wrong: rewrite": "expected the backend to receive path '/old/books', got '/new/books'",
    "wrong: header": "expected the backend to receive header x-from: 'someone-else', got 'meshward'",
    "wrong: redirect": "expected redirect status 301, got 308",
    "wrong: direct response": "expected direct response status 404, got 410",
    "wrong: abort": "expected an injected abort with status 418, got status 200 with flags none",
    "wrong: mirror": "expected a mirrored copy to reviews subset v2, got copies to outbound|9080||ratings",
    "wrong: https": "the proxy's listener on port 443 terminates TLS, which meshward test does not run",
}


@pytest.fixture(scope="module")
def outcome(envoy_bin: str) -> Outcome:
    return run.run([TREE], envoy_bin=envoy_bin)


def _result(outcome: Outcome, description: str) -> CaseResult:
    (found,) = [r for r in outcome.results if r.case.name == description]
    return found


def test_the_tree_and_its_tests_are_read_without_error(outcome: Outcome) -> None:
    assert outcome.errors == []
    assert outcome.files == 5
    assert len(outcome.results) == 32


def test_expected_behaviour_passes(outcome: Outcome) -> None:
    failing = {r.case.name: [p for c in r.calls for p in c.problems] for r in outcome.results
               if not r.passed and r.case.name not in WRONG}
    assert failing == {}


@pytest.mark.parametrize("description", sorted(WRONG))
def test_wrong_expectations_fail_saying_what_envoy_did(outcome: Outcome, description: str) -> None:
    result = _result(outcome, description)
    problems = [p for c in result.calls for p in c.problems]
    assert not result.passed
    assert len(problems) == 1 and WRONG[description] in problems[0]


def test_each_request_names_the_route_it_reached_by_its_own_line(outcome: Outcome) -> None:
    reached = {c.reached for c in _result(outcome, "jason goes to v2, with the route's timeout and retries").calls}
    assert reached == {f"{SHOP}:56: VirtualService shop/reviews route 'jason'"}
    delegated = _result(outcome, "Delegate to product, rewritten").calls[0].reached
    assert delegated == f"{TREE / 'delegate.yaml'}:41: VirtualService example/product-delegate route 0"
    (gone,) = {c.reached for c in _result(outcome, "gone answers 410 itself").calls}
    assert gone.startswith(f"{SHOP}:79:")


def test_test_cases_are_located_in_their_files(outcome: Outcome) -> None:
    """The Go tool's capitalized `TestCases` and a second document of a file are located too."""
    lines = {r.case.name: (Path(r.case.position.file).name, r.case.position.line) for r in outcome.results}
    assert lines["match a header by presence"] == ("header_test.yaml", 15)
    assert lines["if scheme matches https send to https endpoint"] == ("query_scheme_test.yaml", 23)


def test_each_test_leaves_the_proxy_it_names(outcome: Outcome) -> None:
    """`from` a gateway, a workload or a node id; by default the namespace's sidecar."""
    result = _result(outcome, "the storefront gateway sends /reviews to reviews v1, rewritten")
    assert result.proxy.startswith("router~10.0.0.9~ingressgateway.istio-system~")
    productpage = "sidecar~10.0.1.7~productpage.shop~shop.svc.cluster.local"
    assert _result(outcome, "from the productpage workload, jason still goes to v2").proxy == productpage
    assert _result(outcome, "from the productpage proxy by its node id").proxy == productpage
    assert _result(outcome, "moved is redirected").proxy.startswith("sidecar~240.240.0.")


def test_coverage_is_the_routes_reached(outcome: Outcome) -> None:
    """19 HTTP routes, the two delegating ones of example/merchants not counted; the tests reach all but two."""
    cov = outcome.coverage
    assert cov is not None
    assert (len(cov.routes), len(cov.hit())) == (19, 17)
    assert [str(r) for r in cov.missed()] == [f"{SHOP}:104: VirtualService shop/reviews route 'untested'",
                                              f"{SHOP}:126: VirtualService shop/storefront route 1"]
    assert round(cov.percent, 1) == 89.5
