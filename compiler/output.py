"""Diagnostics rendered for people and machines: text (colored on a terminal), JSON, GitHub annotations, SARIF."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from compiler import codes
from compiler.diagnostics import Diagnostic, Severity

FORMATS = ("text", "json", "github", "sarif")


def render(diagnostics: Sequence[Diagnostic], fmt: str, stream: IO[str], *, summary: str = "") -> None:
    if fmt == "text":
        _text(diagnostics, stream, summary)
    elif fmt == "json":
        stream.write(json.dumps([_as_dict(d) for d in diagnostics], indent=2, sort_keys=True) + "\n")
    elif fmt == "github":
        stream.writelines(_github(d) + "\n" for d in diagnostics)
    elif fmt == "sarif":
        stream.write(json.dumps(sarif(diagnostics), indent=2, sort_keys=True) + "\n")
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(fmt)


def _text(diagnostics: Sequence[Diagnostic], stream: IO[str], summary: str) -> None:
    console = Console(file=stream, highlight=False, soft_wrap=True)
    for d in diagnostics:
        if not console.is_terminal:
            stream.write(d.render() + "\n")
            continue
        style = "bold red" if d.severity is Severity.ERROR else "yellow"
        line = Text(f"{d.position}: ", style="bold")
        line.append(f"{d.severity} {d.code}", style=style)
        line.append(": " + d.render().split(f"{d.code}: ", 1)[1])
        console.print(line)
    if summary:
        console.print(summary, style="dim") if console.is_terminal else stream.write(summary + "\n")


def _as_dict(d: Diagnostic) -> dict[str, Any]:
    return {
        "file": d.position.file, "line": d.position.line, "column": d.position.column, "severity": str(d.severity),
        "code": d.code, "istio_code": d.istio_code, "message": d.message, "path": d.path, "resource": d.resource,
        "hint": d.hint, "flagged": d.flagged,
    }


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(d: Diagnostic) -> str:
    """A workflow command, shown as an inline annotation on the pull request."""
    level = "error" if d.severity is Severity.ERROR else "warning"
    props = f"file={_escape_property(d.position.file)},line={max(d.position.line, 1)},col={max(d.position.column, 1)}"
    props += f",title={_escape_property(_title(d))}"
    where = f"{d.path}: " if d.path else ""
    return f"::{level} {props}::{_escape_data(where + d.message + ' (' + d.hint + ')')}"


def _title(d: Diagnostic) -> str:
    """`MW0303 subset not found (IST0101, flagged: Pilot serves it)`: the code, Istio's, and for an error whether
    it blocks the revision."""
    notes = [n for n in (d.istio_code, "flagged: Pilot serves it" if d.flagged else "") if n]
    return f"{d.code} {codes.get(d.code).title}" + (f" ({', '.join(notes)})" if notes else "")


def sarif(diagnostics: Sequence[Diagnostic]) -> dict[str, Any]:
    """SARIF 2.1.0 for GitHub code scanning."""
    used = sorted({d.code for d in diagnostics})
    rules = [{"id": c, "name": codes.get(c).title, "shortDescription": {"text": codes.get(c).title},
              "help": {"text": codes.get(c).hint},
              "properties": {"istio": codes.get(c).istio} if codes.get(c).istio else {}} for c in used]
    results = [{
        "ruleId": d.code, "ruleIndex": used.index(d.code),
        "level": "error" if d.severity is Severity.ERROR else "warning",
        "message": {"text": (f"{d.path}: " if d.path else "") + d.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": d.position.file},
            "region": {"startLine": max(d.position.line, 1), "startColumn": max(d.position.column, 1)}}}],
    } for d in diagnostics]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "meshward", "informationUri": "https://github.com/meshward/meshward",
                                      "rules": rules}}, "results": results}],
    }
