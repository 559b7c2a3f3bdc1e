"""Telemetry access-log filters (compiler.validate.cel) against the real Envoy: each expression the checker accepts
goes on one listener that `envoy --mode validate` must load, and each it refuses must make Envoy refuse its
listener. The table sits on both sides of every rule (each nesting construct at the checker's deepest and one
deeper, functions and argument counts, comprehensions, literal patterns, cel-cpp's parser rules), so a rule that
drifts from Envoy's CEL fails here."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.validate import cel

NESTINGS: list[Callable[[int], str]] = [  # one expression per nesting construct, n deep
    lambda n: "(" * n + "request.size" + ")" * n + " == 1", lambda n: "1" + " + 1" * n + " > 0",
    lambda n: "request" + ".a" * n + " == 1", lambda n: "request.a" + "[0]" * n + " == 1",
    lambda n: "size(" * n + "'a'" + ")" * n + " == 1", lambda n: "[" * n + "1" + "]" * n + " == [1]",
    lambda n: "false ? 1 : " * n + "1 == 1", lambda n: "dyn(" * n + "true ? 1 : 2" + ")" * n + " == 1",
    lambda n: "{1: " * n + "1" + "}" * n + " == {}", lambda n: "request.path.startsWith(" * n + "'a'" + ")" * n,
    lambda n: "!" * n + "(" * n + "true" + ")" * n, lambda n: "-(" * n + "1" + ")" * n + " == 1",
    lambda n: "size(" * n + "- 1" + ")" * n + " == 1",
]
ACCEPTED = [
    "response.code >= 500", "response.code >= 500 && request.method == 'GET'", "request.headers['x-a'] == 'b'",
    "request.path.contains('a') || request.path.endsWith('b')", "re.extract(request.path, '(a', 'b') == ''",
    "request.time.getHours('UTC') == 1", "has(request.headers.x)", "timestamp('2020-01-01T00:00:00Z') < request.time",
    "request.path.matches(r'^/\\d+$')", "'\\x41\\u0041\\101\\?' == 'AAA?'", "b'\\xff' != b'a'", "!-1", "! - 1",
    "-9223372036854775808 < 0", "18446744073709551615u > 0u", "' ' + 'b' == ' b'", "1 in [1] ? true : false",
    "xds.cluster_name == 'a' || connection.mtls", "request.path // a comment", " || ".join(["true"] * 99),
    "x.y == 1",  # a warning only: Envoy builds it, and it evaluates to an error
]
REFUSED = [
    "response.code >=", "", "request.path.exists(x, true)", "request.path.map(x, true, 1)",
    "request.path.lowerAscii() == 'a'", "string(1) == '1'", "size('a', 'b') == 1", "getHours(request.time) == 1",
    "request.path.matches('(a')", "matches(request.path, 'a{1000}')", "has(request)", "if == 1", "request.in == 1",
    "!-request.size", "9223372036854775808 == 1", "18446744073709551616u == 1u", "'\\z' == 'a'", "b'\\u0041' == b'A'",
    "Foo{a: 1} == 1", "[" * 35 + "]" * 35 + " == []", "!-(1)",
]


def _errors(expression: str) -> list[cel.Problem]:
    return [p for p in cel.problems(expression) if p.verdict is not cel.Verdict.WARNING]


def _limit(nest: Callable[[int], str]) -> int:
    """The deepest nesting the checker accepts (and it accepts every shallower one)."""
    accepted = [n for n in range(1, 40) if not _errors(nest(n))]
    assert accepted == list(range(1, len(accepted) + 1)), nest(1)
    return len(accepted)


@pytest.fixture(scope="module")
def limits() -> list[int]:
    return [_limit(nest) for nest in NESTINGS]


def _config(expressions: list[str]) -> str:
    logs = [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": "/dev/null"},
        "filter": {"extension_filter": {"name": "envoy.access_loggers.extension_filters.cel", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": e}}}} for e in expressions]
    hcm = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                    "HttpConnectionManager", "stat_prefix": "x", "access_log": logs,
           "route_config": {"virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [
               {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
           "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
               "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    listener = {"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}]}
    return json.dumps({"static_resources": {"listeners": [listener]}})


def _validate(envoy_bin: str, directory: Path, name: str, expressions: list[str]) -> subprocess.CompletedProcess[str]:
    path = directory / f"{name}.json"
    path.write_text(_config(expressions))
    return subprocess.run([envoy_bin, "--mode", "validate", "-c", str(path), "-l", "critical"],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_table_is_split_as_the_checker_says(limits: list[int]) -> None:
    assert [e for e in ACCEPTED if _errors(e)] == []
    assert [e for e in REFUSED if not _errors(e)] == []
    assert min(limits) >= 29, limits  # Envoy takes 29 chained indexes, 30 selections, 32 parentheses


@pytest.mark.envoy
def test_envoy_loads_every_accepted_expression(envoy_bin: str, tmp_path: Path, limits: list[int]) -> None:
    deepest = [nest(n) for nest, n in zip(NESTINGS, limits, strict=True)]
    done = _validate(envoy_bin, tmp_path, "accepted", ACCEPTED + deepest)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.mark.envoy
def test_envoy_refuses_every_refused_expression(envoy_bin: str, tmp_path: Path, limits: list[int]) -> None:
    refused = REFUSED + [nest(n + 1) for nest, n in zip(NESTINGS, limits, strict=True)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda item: _validate(envoy_bin, tmp_path, str(item[0]), [item[1]]),
                             enumerate(refused)))
    loaded = [e[:80] for e, done in zip(refused, runs, strict=True) if done.returncode == 0]
    assert loaded == [], "Envoy loads what meshward refuses"


@pytest.mark.parametrize(("expression", "verdict", "words"), [
    ("response.code >=", cel.Verdict.SYNTAX, "not a CEL expression at 1:15"),
    ("  ", cel.Verdict.SYNTAX, "empty"),
    ("request.headers.all(h, true)", cel.Verdict.ENVOY, "all() at 1:17 is a comprehension"),
    ("request.path.trim() == ''", cel.Verdict.ENVOY, "x.trim() with 0 arguments at 1:14 is not a function"),
    ("request.path.matches('[')", cel.Verdict.ENVOY, "matches() at 1:22: invalid RE2 regex"),
    ("request.path.matches('(a|b){1000}')", cel.Verdict.ENVOY, "RE2 program of size"),
    ("respons.code >= 500", cel.Verdict.WARNING, "'respons' at 1:1 is not an attribute Envoy offers"),
    ("'a" * 50_001, cel.Verdict.ENVOY, "over the 100000"),
])
def test_each_problem_says_what_and_where(expression: str, verdict: cel.Verdict, words: str) -> None:
    found = cel.problems(expression)
    assert [p.verdict for p in found] == [verdict] and words in found[0].message, found


def test_a_pathological_expression_is_refused_quickly_without_recursion() -> None:
    """100,000 brackets (lark would take ten seconds to build their tree) are counted on tokens first."""
    found = cel.problems("(" * 50_000 + ")" * 50_000)
    assert [p.verdict for p in found] == [cel.Verdict.ENVOY] and "nested" in found[0].message


TOKENS = ["request", "response.code", ".", "a", "(", ")", "[", "]", "{", "}", ",", ":", "?", "!", "-", "+", "*",
          "==", ">=", "&&", "||", " in ", "1", "-1", "1u", "2.5", "'s'", "b'x'", "r'\\d'", "'\\z'", "'''m'''", "true",
          "null", "size", "has", "matches", "re", ".extract", "all", "map", "x", "if", " ", "\n", "//c\n", "\\", "\""]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_any_text_gets_problems_never_an_exception(tokens: list[str]) -> None:
    """Whatever the text, the checker answers: nothing it parses makes the walk fail on a shape it did not expect."""
    for problem in cel.problems("".join(tokens)):
        assert isinstance(problem.verdict, cel.Verdict) and problem.message
