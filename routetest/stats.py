"""How many requests of a weighted split may go to each destination before the test says the split is wrong.

Each of N requests picks destination i with probability p_i (its weight over the sum: Envoy draws a random number
per request, `RouteEntryImplBase::pickWeightedCluster` in source/common/router/config_impl.cc), so the count X_i is
Binomial(N, p_i). A test accepts X_i in [lo, hi], the exact binomial quantiles that leave FALSE_FAILURE / (2m) in
each tail for m destinations: by the union bound, a correct split fails with probability at most FALSE_FAILURE.

N is chosen so that a split whose shares are off by the tolerance (10 percentage points unless the test says)
passes with probability at most MISSED_SHIFT: it starts from the normal approximation, with z_a, z_b the normal
quantiles of the two probabilities, N = ((z_a sqrt(p(1-p)) + z_b sqrt(q(1-q))) / tolerance)^2 for each share p
and q = p +- tolerance, and grows by 5% until the exact binomial figures hold. For 50/50 that is 1,704 requests;
for 90/10, 831 (docs/policy.md, Routing tests).
"""

from __future__ import annotations

import math
import statistics

FALSE_FAILURE = 1e-6  # the most a correct split may fail, over all its destinations (one CI run in a million)
MISSED_SHIFT = 1e-3  # the most a split off by the tolerance may pass
DEFAULT_TOLERANCE = 0.1  # a share off by 10 percentage points is a wrong split


def _pmf(n: int, p: float) -> list[float]:
    if p <= 0.0 or p >= 1.0:
        return [1.0 if k == (0 if p <= 0.0 else n) else 0.0 for k in range(n + 1)]
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p)
            + (n - k) * math.log1p(-p) for k in range(n + 1)]
    return [math.exp(v) for v in logs]


def interval(n: int, p: float, tail: float) -> tuple[int, int]:
    """[lo, hi] such that P(X < lo) <= tail and P(X > hi) <= tail for X ~ Binomial(n, p), as narrow as that
    allows."""
    pmf = _pmf(n, p)
    lo, below = 0, 0.0
    while lo < n and below + pmf[lo] <= tail:
        below += pmf[lo]
        lo += 1
    hi, above = n, 0.0
    while hi > 0 and above + pmf[hi] <= tail:
        above += pmf[hi]
        hi -= 1
    return lo, hi


def bounds(n: int, shares: list[float], false_failure: float = FALSE_FAILURE) -> list[tuple[int, int]]:
    """The accepted count of each destination of a split with these expected shares."""
    tail = false_failure / (2 * len(shares))
    return [interval(n, p, tail) for p in shares]


def pass_probability(n: int, p_true: float, accepted: tuple[int, int]) -> float:
    """How likely a destination whose real share is `p_true` lands in `accepted` (a wrong split passing)."""
    pmf = _pmf(n, p_true)
    return sum(pmf[accepted[0]:accepted[1] + 1])


def requests_needed(shares: list[float], tolerance: float = DEFAULT_TOLERANCE) -> int:
    """The N that tells a split with these shares from one off by `tolerance` (module docstring)."""
    n = _normal_estimate(shares, tolerance)
    while _worst_miss(n, shares, tolerance) > MISSED_SHIFT:
        n = math.ceil(n * 1.05)
    return n


def _worst_miss(n: int, shares: list[float], tolerance: float) -> float:
    """The highest probability that one destination of a split off by `tolerance` lands in its accepted range."""
    return max(pass_probability(n, q, accepted) for p, accepted in zip(shares, bounds(n, shares), strict=True)
               for q in (p - tolerance, p + tolerance) if 0.0 <= q <= 1.0)


def _normal_estimate(shares: list[float], tolerance: float) -> int:
    normal = statistics.NormalDist()
    z_a = normal.inv_cdf(1 - FALSE_FAILURE / (2 * len(shares)))
    z_b = normal.inv_cdf(1 - MISSED_SHIFT)
    need = 100.0
    for p in shares:
        for q in (p - tolerance, p + tolerance):
            if 0.0 <= q <= 1.0:
                need = max(need, ((z_a * math.sqrt(p * (1 - p)) + z_b * math.sqrt(q * (1 - q))) / tolerance) ** 2)
    return math.ceil(need)
