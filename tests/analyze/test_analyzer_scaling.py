"""The analyzers stay near-linear in the size of one resource: a VirtualService with thousands of rules is legal
(up to the API server's object size), and a pairwise comparison of its matches took minutes (issue 13)."""

from __future__ import annotations

import itertools

import pytest

from compiler import load, typed
from compiler.analyze import analyze, matches
from compiler.resources import ResourceSet

_HEAD = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: shop}\n" \
        "spec:\n  hosts: [reviews]\n  http:\n"


def _vs(prefixes: list[str]) -> ResourceSet:
    rules = "".join(f"  - match:\n    - uri: {{prefix: '{p}'}}\n    route:\n    - destination: {{host: reviews}}\n"
                    for p in prefixes)
    resources, problems = typed.to_resources(load.load_text(_HEAD + rules).documents)
    assert not problems
    return ResourceSet(resources)


def test_unrelated_prefixes_are_not_compared_pairwise(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = matches.covers

    def counting(a: matches.HTTPMatchRequest, b: matches.HTTPMatchRequest) -> bool:
        nonlocal calls
        calls += 1
        return real(a, b)

    monkeypatch.setattr(matches, "covers", counting)
    found = [d for d in analyze(_vs([f"/p{i}/" for i in range(600)])) if d.code == "MW0312"]
    assert not found
    assert calls < 600  # pairwise: 600 * 599 / 2


def test_covering_prefixes_found_as_a_pairwise_comparison_finds_them() -> None:
    prefixes = ["/a", "/a/b", "/ab", "/a/b/c", "/b", "/a", "/a/bc", "/", "/b/x"]
    vs = _vs(prefixes)
    unique = list(dict.fromkeys(prefixes))
    expected = [(unique.index(a), unique.index(b)) for a, b in itertools.combinations(unique, 2)
                if b.startswith(a)]
    found = [d for d in analyze(vs) if d.code == "MW0312" and "is covered by" in d.message]
    assert [(d.message.split("prefix ")[2].split(")")[0], d.message.split("prefix ")[1].split(")")[0])
            for d in found] == [(unique[a], unique[b]) for a, b in expected]
