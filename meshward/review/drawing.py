"""A routing graph (compiler.routing_graph) as Mermaid (which GitHub renders in Markdown) or Graphviz dot.

Node ids are generated (`n0`, `n1`, ... in node order), labels quoted: host names hold dots, dashes and colons
that neither language takes bare in an id. Mermaid labels are escaped with its entity codes (`#quot;`), dot's with
backslashes, so any host, header or regex in a match stays a label and never becomes syntax.
"""

from __future__ import annotations

from collections.abc import Sequence

from compiler.routing_graph import Graph, Node, NodeKind

FORMATS = ("mermaid", "dot")
# Mermaid shapes: gateways as stadiums, services as rectangles, subsets as rounded boxes
_MERMAID_SHAPES = {NodeKind.GATEWAY: ('(["', '"])'), NodeKind.SERVICE: ('["', '"]'), NodeKind.SUBSET: ('("', '")')}
_DOT_SHAPES = {NodeKind.GATEWAY: "hexagon", NodeKind.SERVICE: "box", NodeKind.SUBSET: "ellipse"}
_MERMAID_ESCAPES = {"&": "#amp;", '"': "#quot;", "|": "#124;", "<": "#lt;", ">": "#gt;", "#": "#35;",
                    "\n": " ", "\r": " "}


def mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def mermaid(graphs: Sequence[tuple[str, Graph]]) -> str:
    """One flowchart; with several (title, graph) pairs each is a subgraph of its own ("before", "after")."""
    lines = ["flowchart LR"]
    for i, (title, graph) in enumerate(graphs):
        prefix, indent = (f"g{i}", "    ") if len(graphs) > 1 else ("", "  ")
        if len(graphs) > 1:
            lines.append(f'  subgraph {prefix}["{mermaid_text(title)}"]')
        lines += [indent + line for line in _mermaid_body(graph, prefix)]
        if len(graphs) > 1:
            lines.append("  end")
    return "\n".join(lines) + "\n"


def _mermaid_body(graph: Graph, prefix: str) -> list[str]:
    ids = _ids(graph.nodes(), prefix)
    lines = []
    for node, node_id in ids.items():
        opening, closing = _MERMAID_SHAPES[node.kind]
        lines.append(f"{node_id}{opening}{mermaid_text(node.label)}{closing}")
    for e in sorted(graph.edges):
        arrow = f'-->|"{mermaid_text(e.label)}"|' if e.label else "-->"
        lines.append(f"{ids[e.source]} {arrow} {ids[e.target]}")
    return lines


def dot(graph: Graph, title: str = "mesh") -> str:
    ids = _ids(graph.nodes(), "")
    lines = [f"digraph {_dot_text(title)} {{", "  rankdir=LR;"]
    for node, node_id in ids.items():
        lines.append(f"  {node_id} [label={_dot_text(node.label)}, shape={_DOT_SHAPES[node.kind]}];")
    for e in sorted(graph.edges):
        label = f" [label={_dot_text(e.label)}]" if e.label else ""
        lines.append(f"  {ids[e.source]} -> {ids[e.target]}{label};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    """A dot quoted string: backslash and double quote escaped, line breaks as spaces."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{escaped}"'


def _ids(nodes: Sequence[Node], prefix: str) -> dict[Node, str]:
    return {node: f"{prefix}n{i}" for i, node in enumerate(nodes)}
