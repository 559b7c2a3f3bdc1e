"""`meshward diff`'s report (meshward.review.compare) as text for a terminal, Markdown for a pull request, or JSON.

Text and Markdown group the changes by the document that caused them, and a change several proxies share (a route
weight every sidecar that sees the service gets) is written once with the proxies it reaches, so that a reviewer
reads what the commit does rather than the same lines per proxy.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

from meshward.review import changes, drawing
from meshward.review.causes import DocRef
from meshward.review.compare import FieldDiff, ProxyDiff, Report, ResourceDiff

FORMATS = ("text", "markdown", "json")
_SINGULAR = {"routes": "route_config", "clusters": "cluster", "listeners": "listener",
             "endpoints": "cluster_load_assignment", "secrets": "secret"}
_UNATTRIBUTED = "not traced to a changed document"
_SHOWN_PROXIES = 3


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class _Item:
    """One resource change as written under a document, shared by the proxies it reaches."""

    type: str
    name: str
    change: changes.Change
    lines: tuple[str, ...]


def render(report: Report, fmt: str) -> str:
    return {"text": text, "markdown": markdown, "json": to_json}[fmt](report)


def _groups(report: Report) -> dict[DocRef | None, dict[_Item, list[str]]]:
    groups: dict[DocRef | None, dict[_Item, list[str]]] = {}
    for proxy in report.proxies:
        for res in proxy.resources:
            for cause, lines in _by_cause(res):
                item = _Item(res.type, res.name, res.change, lines)
                groups.setdefault(cause, {}).setdefault(item, []).append(proxy.node_id)
    return groups


def _by_cause(res: ResourceDiff) -> Iterable[tuple[DocRef | None, tuple[str, ...]]]:
    if res.change is not changes.Change.CHANGED:
        return [(cause, ()) for cause in res.causes or (None,)]
    lines: dict[DocRef | None, list[str]] = {}
    for f in res.fields:
        for cause in f.causes or (None,):
            lines.setdefault(cause, []).append(_field_line(f))
    return [(cause, tuple(found)) for cause, found in lines.items()]


def _field_line(f: FieldDiff) -> str:
    if f.whole_entry:
        return f"{'+' if f.before is None else '-'} {f.path}"
    if f.before is None:
        return f"+ {f.path}: {changes.short(f.after)}"
    if f.after is None:
        return f"- {f.path}: {changes.short(f.before)}"
    return f"{f.path}: {changes.short(f.before)} -> {changes.short(f.after)}"


def _sorted_groups(report: Report) -> list[tuple[str, dict[_Item, list[str]]]]:
    groups = _groups(report)
    known = sorted((doc, items) for doc, items in groups.items() if doc is not None)
    out = [(str(doc), items) for doc, items in known]
    if None in groups:
        out.append((_UNATTRIBUTED, groups[None]))
    return out


def _proxies(nodes: list[str]) -> str:
    shown = ", ".join(nodes[:_SHOWN_PROXIES])
    more = f" (+{len(nodes) - _SHOWN_PROXIES} more)" if len(nodes) > _SHOWN_PROXIES else ""
    return f"{'proxy' if len(nodes) == 1 else _count(len(nodes), 'proxy', 'proxies')}: {shown}{more}"


def _item_lines(items: dict[_Item, list[str]], indent: str) -> list[str]:
    out = []
    for item in sorted(items):
        out.append(f"{indent}{_SINGULAR.get(item.type, item.type)} \"{item.name}\" {item.change.value} "
                   f"({_proxies(items[item])})")
        out += [f"{indent}    {line}" for line in item.lines]
    return out


def _headline(report: Report) -> str:
    where = f", {report.prefix}/" if report.prefix != "." else ""
    return f"meshward diff {report.before} -> {report.after}{where}"


def _summary(report: Report) -> str:
    counts = {c: sum(p.change is c for p in report.proxies) for c in changes.Change}
    return (f"{_count(counts[changes.Change.CHANGED], 'proxy', 'proxies')} changed, "
            f"{counts[changes.Change.ADDED]} added, {counts[changes.Change.REMOVED]} removed; "
            f"{_count(len(report.documents), 'document')} changed; "
            f"{_count(len(report.new_diagnostics), 'new diagnostic')}, {len(report.gone_diagnostics)} gone")


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def text(report: Report) -> str:
    lines = [_headline(report)]
    if not report.changed:
        return "\n".join([*lines, "no proxy's config changes, no diagnostic appears or goes"]) + "\n"
    lines.append(_summary(report))
    for title, items in _sorted_groups(report):
        lines += ["", title, *_item_lines(items, "  ")]
    for change in (changes.Change.ADDED, changes.Change.REMOVED):
        nodes = [p.node_id for p in report.proxies if p.change is change]
        if nodes:
            lines += ["", f"proxies {change.value}:", *(f"  {n}" for n in nodes)]
    for title, found in (("new diagnostics", report.new_diagnostics), ("gone diagnostics", report.gone_diagnostics)):
        if found:
            lines += ["", f"{title}:", *(f"  {d.render()}" for d in found)]
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _table(report: Report) -> list[str]:
    rows = ["| proxy | resources added | removed | changed | caused by |", "|---|---:|---:|---:|---|"]
    for p in report.proxies:
        if p.change is not changes.Change.CHANGED:
            rows.append(f"| `{_cell(p.node_id)}` | proxy {p.change.value} | | | |")
            continue
        counts = [sum(r.change is c for r in p.resources) for c in changes.Change]
        docs = sorted({c for r in p.resources for c in r.causes})
        cause = "<br>".join(f"`{_cell(str(d))}`" for d in docs) or _UNATTRIBUTED
        rows.append(f"| `{_cell(p.node_id)}` | {counts[0]} | {counts[1]} | {counts[2]} | {cause} |")
    return rows


def markdown(report: Report) -> str:
    """A pull-request comment: the summary table, the routing that changed as Mermaid (GitHub draws it), and the
    changes per document in collapsed sections."""
    lines = [f"### `{_cell(_headline(report))}`", ""]
    if not report.changed:
        return "\n".join([*lines, "No proxy's config changes; no diagnostic appears or goes."]) + "\n"
    lines += [_summary(report), "", *_table(report)]
    if report.routing_before.edges or report.routing_after.edges:
        graph = drawing.mermaid([("before: " + report.before, report.routing_before),
                                 ("after: " + report.after, report.routing_after)])
        lines += ["", "#### Routing that changed", "", "```mermaid", graph.rstrip("\n"), "```"]
    for title, items in _sorted_groups(report):
        body = _item_lines(items, "")
        lines += ["", f"<details><summary>{_html(title)}: {_count(len(items), 'change')}</summary>", "", "```text",
                  *(line.replace("```", "'''") for line in body), "```", "", "</details>"]
    for title, found in (("New diagnostics", report.new_diagnostics), ("Gone diagnostics", report.gone_diagnostics)):
        if found:
            lines += ["", f"#### {title}", "", *(f"- `{_cell(d.render())}`" for d in found)]
    return "\n".join(lines) + "\n"


def _html(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_json(report: Report) -> str:
    doc = {
        "from": report.before, "to": report.after, "path": report.prefix, "changed": report.changed,
        "documents": [d.to_json() for d in report.documents],
        "proxies": [_proxy_json(p) for p in report.proxies],
        "diagnostics": {"new": [d.render() for d in report.new_diagnostics],
                        "gone": [d.render() for d in report.gone_diagnostics]},
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _proxy_json(p: ProxyDiff) -> dict[str, Any]:
    return {"node": p.node_id, "change": p.change.value, "resources": [
        {"type": r.type, "name": r.name, "change": r.change.value, "causes": [c.to_json() for c in r.causes],
         "fields": [{"path": f.path, "before": f.before, "after": f.after,
                     "causes": [c.to_json() for c in f.causes]} for f in r.fields]}
        for r in p.resources]}
