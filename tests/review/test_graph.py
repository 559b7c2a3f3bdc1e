"""`meshward graph`: the mesh's routing as Mermaid or dot. The dot output is checked by Graphviz itself (`dot`,
Debian's graphviz, installed by .ci/run); Mermaid has no offline checker here, so every line is held to the grammar
of the flowchart subset meshward writes, and labels that hold the languages' own syntax are checked to stay labels."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler import build, model
from compiler import routing_graph as routing
from meshward import cli
from meshward.review import drawing

EXAMPLE = Path(__file__).parents[2] / "policies-example"
_ID = r"(?:g\d+)?n\d+"
_LABEL = r'"[^"|<>\n]*"'  # quoted, and none of what would end a Mermaid label or a line
_MERMAID_LINE = re.compile(
    rf"(flowchart LR|  subgraph g\d+\[{_LABEL}\]|  end"
    rf"|\s+{_ID}(?:\(\[{_LABEL}\]\)|\[{_LABEL}\]|\({_LABEL}\))"  # gateway, service, subset
    rf"|\s+{_ID} (?:-->\|{_LABEL}\||-->) {_ID})")


def _graph(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["graph", str(EXAMPLE), *args]) == 0
    return capsys.readouterr().out


def _assert_mermaid(text: str) -> None:
    lines = text.splitlines()
    bad = [line for line in lines if not _MERMAID_LINE.fullmatch(line)]
    assert not bad, bad
    declared = {m.group(1) for m in re.finditer(rf"^\s+({_ID})[\[(]", text, re.MULTILINE)}
    used = {i for m in re.finditer(rf"^\s+({_ID}) --\S* ({_ID})$", text, re.MULTILINE) for i in m.groups()}
    assert used <= declared


def test_mermaid_of_the_example_mesh(capsys: pytest.CaptureFixture[str]) -> None:
    text = _graph(capsys)
    _assert_mermaid(text)
    labels = dict(re.findall(rf'^\s+({_ID})[\[(]+"([^"]*)"', text, re.MULTILINE))
    edges = {(labels[a], label, labels[b]) for a, label, b in
             re.findall(rf'^\s+({_ID}) -->(?:\|"([^"]*)"\|)? ({_ID})$', text, re.MULTILINE)}
    gateway = "istio-system/istio-ingressgateway"
    assert {(gateway, "exact /productpage", "productpage.bookinfo"),
            ("reviews.bookinfo", "80%", "reviews.bookinfo v1"), ("reviews.bookinfo", "20%", "reviews.bookinfo v2"),
            ("reviews.bookinfo", "end-user=jason", "reviews.bookinfo v3")} <= edges
    assert f'(["{gateway}"])' in text  # gateways drawn as stadiums


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (.ci/run installs it)")
def test_dot_is_accepted_by_graphviz(capsys: pytest.CaptureFixture[str]) -> None:
    text = _graph(capsys, "--format", "dot")
    done = subprocess.run(["dot", "-Tplain"], input=text, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    nodes = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("node ")]
    assert len(nodes) == text.count("shape=")
    assert sum(line.startswith("edge ") for line in done.stdout.splitlines()) == text.count(" -> ")


def _hostile() -> routing.Graph:
    """Labels that hold each language's syntax: quotes, pipes, brackets, backslashes, a Mermaid entity."""
    service = routing.Node(routing.NodeKind.SERVICE, 'we"b|<x>')
    subset = routing.Node(routing.NodeKind.SUBSET, "web", 'v1\\"];#quot;')
    match = model.RouteMatch(headers=(model.HeaderMatch("x-a", model.StringMatch(model.MatchKind.REGEX, '"|]\\')),))
    return routing.Graph(frozenset({routing.Edge(service, subset, routing.short_match(match))}))


def test_labels_never_become_syntax() -> None:
    graph = _hostile()
    text = drawing.mermaid([("before", graph), ("after", graph)])
    _assert_mermaid(text)
    assert "#quot;" in text and "#35;quot;" in text  # quotes escaped, and an entity in the input kept literal
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    done = subprocess.run(["dot", "-Tplain"], input=drawing.dot(graph), capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert 'x-a~"|]\\' in done.stdout.replace('\\"', '"').replace("\\\\", "\\")


def test_a_header_or_query_that_must_be_present_or_absent_is_named() -> None:
    present = model.StringMatch(model.MatchKind.PRESENT)
    match = model.RouteMatch(headers=(model.HeaderMatch("x-canary", present),
                                      model.HeaderMatch("x-debug", present, invert=True)),
                             query=(model.QueryMatch("v", present),))
    assert routing.short_match(match) == "x-canary !x-debug ?v"


def test_a_policy_that_does_not_compile_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                       "metadata: {name: x, namespace: a}\nspec: {hosts: 7}\n")
    assert cli.main(["graph", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("meshward graph: ") and err.count("\n") == 1
    assert cli.main(["graph", str(tmp_path / "nope")]) == 2


@pytest.mark.parametrize("tree", [EXAMPLE, *(Path(__file__).parents[1] / "golden" / "cases" / case / "input" for case in (
    "shop", "sidecar-egress-scope", "sidecar-ingress", "sidecar-several-namespace-wide", "sidecar-vs-host-not-imported",
    "gw-http-ports-hosts", "vs-match-request"))])
def test_the_graph_from_shared_outbound_halves_is_every_proxys(tree: Path) -> None:
    """`build.routing` reads a sidecar scope's outbound half once instead of each proxy's config: what it leaves out
    (the inbound side, the other sidecars of the scope) must draw nothing."""
    result = build.build([tree])
    every = routing.of_configs(build.proxy_config(result, p) for p in result.proxies())
    assert every.nodes() and build.routing(result) == every
