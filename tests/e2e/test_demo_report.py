"""The demo without a terminal (a CI log, a pipe, a screen reader): plain summary lines of the split, one each time
the phase or the serving commit changes, instead of a live table that such output never shows (issue 16)."""

from __future__ import annotations

import collections
import io

from rich.console import Console

from reconciler.ops import demo

BEFORE, AFTER = "policy as committed (v1 80% / v2 20%)", "after commit 'v1 50% / v2 50%'"


def test_without_a_terminal_the_split_is_printed_as_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    split = collections.Counter({"reviews-v1": 160, "reviews-v2": 40})
    with demo.Report(console, every=5.0) as report:
        report.update(collections.Counter(), BEFORE, "aaaa", now=0.0)  # nothing served yet: no line
        report.update(split, BEFORE, "aaaa", now=1.0)
        report.update(split, BEFORE, "aaaa", now=2.0)  # same phase, within the interval: no line
        report.update(collections.Counter({"reviews-v1": 5, "reviews-v2": 5}), AFTER, "aaaa", now=3.0)
        report.update(collections.Counter({"reviews-v1": 5, "reviews-v2": 5}), AFTER, "bbbb", now=3.5)
        report.update(collections.Counter({"reviews-v1": 10, "reviews-v2": 10}), AFTER, "bbbb", now=9.0)
    head = "reviews through the productpage sidecar"
    assert out.getvalue().splitlines() == [
        f"{head}, {BEFORE}, serving commit aaaa: reviews-v1 160 (80%), reviews-v2 40 (20%)",
        f"{head}, {AFTER}, serving commit aaaa: reviews-v1 5 (50%), reviews-v2 5 (50%)",
        f"{head}, {AFTER}, serving commit bbbb: reviews-v1 5 (50%), reviews-v2 5 (50%)",
        f"{head}, {AFTER}, serving commit bbbb: reviews-v1 10 (50%), reviews-v2 10 (50%)",
    ]
