"""Property: a single-field mutation of a real policy tree is either rejected by `validate` with located errors, or
every proxy compiles without raising and real Envoy accepts every proxy's static bootstrap (`envoy --mode validate`).

The normal suite runs a bounded, derandomized slice and every mutation that ever broke the property
(`seeds.yaml`). The long run: `MESHWARD_LONG_FUZZ=1 MESHWARD_FUZZ_EXAMPLES=5000 pytest tests/reliability -k test_long`
(random, or MESHWARD_FUZZ_SEED=N to draw the same mutations again; MESHWARD_FUZZ_LOG=FILE keeps one line per
mutation and the summary).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import mutations
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from judge import Judge
from ruamel.yaml import YAML

SEEDS = Path(__file__).with_name("seeds.yaml")
LONG = os.environ.get("MESHWARD_LONG_FUZZ") == "1"
EXAMPLES = int(os.environ.get("MESHWARD_FUZZ_EXAMPLES", "1000"))
SLICE = 40  # mutations in the normal suite: about 10 s with Envoy's validations


def _seeds() -> list[mutations.Mutation]:
    entries: list[dict[str, Any]] = YAML(typ="safe").load(SEEDS.read_text(encoding="utf-8")) or []
    return [mutations.Mutation(e["tree"], e["file"], tuple(e["path"]), e["op"], e.get("value", ""))
            for e in entries]


class Run:
    """The mutations one test judged, and its findings. A finding on a tree that fails as it is (unmutated) is not
    the mutation's: it is counted as skipped."""

    def __init__(self, judge: Judge, log: Path | None) -> None:
        self.judge = judge
        self.log = log
        self.counts: collections.Counter[str] = collections.Counter()
        self.findings: list[str] = []
        self.started = time.monotonic()

    def check(self, mutation: mutations.Mutation) -> None:
        verdict = self.judge.tree(mutations.apply(mutation))
        if verdict.finding and self.judge.baseline(mutation.tree).kind != "accepted":
            self.counts["skipped"] += 1
            return
        self.counts[verdict.kind] += 1
        line = f"{verdict.kind}: {mutation.describe()}: {verdict.detail}"
        if verdict.finding:
            self.findings.append(line + "\n  seed: " + json.dumps(dataclasses.asdict(mutation)))
        if self.log is not None:
            with self.log.open("a", encoding="utf-8") as out:
                out.write(line.replace("\n", " | ")[:1500] + "\n")

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return (f"{sum(self.counts.values())} mutations in {time.monotonic() - self.started:.0f}s ({counts}); "
                f"{self.judge.envoy_runs} Envoy validations; {len(self.findings)} findings")


def _mutation(data: st.DataObject) -> mutations.Mutation:
    tree = data.draw(st.sampled_from(mutations.valid_trees()), label="tree")
    return data.draw(st.sampled_from(mutations.leaves(tree)), label="mutation")


def _explore(run: Run, examples: int, *, derandomize: bool, random_seed: int | None = None) -> None:
    @settings(max_examples=examples, derandomize=derandomize, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def explore(data: st.DataObject) -> None:
        run.check(_mutation(data))

    (seed(random_seed)(explore) if random_seed is not None else explore)()


@pytest.mark.envoy
def test_bounded_slice(judge: Judge) -> None:
    run = Run(judge, None)
    _explore(run, SLICE, derandomize=True)
    assert not run.findings, run.summary() + "\n" + "\n".join(run.findings)


@pytest.mark.envoy
@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="the long fuzz run: MESHWARD_LONG_FUZZ=1 (MESHWARD_FUZZ_EXAMPLES=N)")
@pytest.mark.timeout(120 + 2 * EXAMPLES)  # a mutation takes 0.05-0.5 s: the suite's 300 s would cut the run short
def test_long(judge: Judge) -> None:
    log = os.environ.get("MESHWARD_FUZZ_LOG")
    run = Run(judge, Path(log) if log else None)
    chosen = os.environ.get("MESHWARD_FUZZ_SEED")  # the same seed and count draw the same mutations
    _explore(run, EXAMPLES, derandomize=False,
             random_seed=int(chosen) if chosen else None)
    if run.log is not None:
        with run.log.open("a", encoding="utf-8") as out:
            out.write("SUMMARY " + run.summary() + "\n")
    assert not run.findings, run.summary() + "\n" + "\n".join(run.findings)


@pytest.mark.envoy
@pytest.mark.parametrize("seed", _seeds(), ids=mutations.Mutation.describe)
def test_found_before(seed: mutations.Mutation, judge: Judge) -> None:
    """Every mutation that once broke the property, replayed."""
    run = Run(judge, None)
    run.check(seed)
    assert run.counts["skipped"] == 0, f"{seed.tree} is no longer accepted as it is"
    assert not run.findings, "\n".join(run.findings)
