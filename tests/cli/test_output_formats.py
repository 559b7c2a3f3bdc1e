"""Diagnostics output: the text line format is a contract; JSON, GitHub annotations and SARIF are machine formats."""

from __future__ import annotations

import io
import json
from pathlib import Path

from compiler import codes, diagnostics, output
from compiler.diagnostics import Position

ROOT = Path(__file__).resolve().parents[2]


def _sample() -> list[diagnostics.Diagnostic]:
    return [
        diagnostics.make("MW0303", 'subset "v9" is not defined by any DestinationRule for host reviews.shop.svc.cluster.local',
                         Position("mesh/reviews.yaml", 14, 9), path="spec.http[0].route[1].destination.subset",
                         resource="VirtualService shop/reviews"),
        diagnostics.make("MW0205", "weights add up to 90", Position("mesh/a,b:c.yaml", 3, 1)),
    ]


def test_text_line_format() -> None:
    stream = io.StringIO()
    output.render(_sample(), "text", stream)
    first = stream.getvalue().splitlines()[0]
    assert first == ("mesh/reviews.yaml:14:9: error MW0303: spec.http[0].route[1].destination.subset: subset \"v9\" "
                     "is not defined by any DestinationRule for host reviews.shop.svc.cluster.local "
                     f"({codes.get('MW0303').hint})")


def test_json_carries_istio_code_and_position() -> None:
    stream = io.StringIO()
    output.render(_sample(), "json", stream)
    first = json.loads(stream.getvalue())[0]
    assert (first["code"], first["istio_code"], first["line"], first["column"]) == ("MW0303", "IST0101", 14, 9)
    assert first["flagged"]


def test_github_annotations_escape_properties() -> None:
    stream = io.StringIO()
    output.render(_sample(), "github", stream)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("::error file=mesh/reviews.yaml,line=14,col=9,"
                               "title=MW0303 subset not found (IST0101%2C flagged%3A Pilot serves it)::")
    assert lines[1].startswith("::warning file=mesh/a%2Cb%3Ac.yaml,line=3,col=1,")


def test_sarif_shape() -> None:
    doc = output.sarif(_sample())
    run = doc["runs"][0]
    assert doc["version"] == "2.1.0"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["MW0205", "MW0303"]
    result = run["results"][0]
    assert result["ruleId"] == "MW0303" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 14, "startColumn": 9}


def test_messages_doc_is_current() -> None:
    assert (ROOT / "docs" / "messages.md").read_text() == codes.render_markdown(), "run: meshward messages --write docs"


def test_every_code_has_a_hint_and_a_known_severity() -> None:
    for code in codes.all_codes():
        assert code.hint and code.severity in ("error", "warning"), code
