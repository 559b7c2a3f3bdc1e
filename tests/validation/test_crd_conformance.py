"""Istio's own CRD accept/reject fixtures: every valid document of a kind we model passes typed + validate with no
rejected error (a flagged one is about a config Pilot serves, as the webhook does); every invalid one yields at least
one error. Kinds we do not model are skipped (with a note)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from compiler import diagnostics, kinds, load, typed, validate
from compiler.load import Document

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "istio-crd-validation"
_SPLIT = re.compile(r"(?:^|\n)---")
UNMODELED = {"EnvoyFilter", "WasmPlugin", "ProxyConfig", "WorkloadGroup"}


def corpus_documents() -> list[tuple[str, int, Any]]:
    """(file, index, parsed document or the loader's diagnostics when our YAML parser rejects the text)."""
    if not CORPUS.is_dir():
        return []
    out: list[tuple[str, int, Any]] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        parts = [p.strip() for p in _SPLIT.split(path.read_text())]
        for index, part in enumerate(p for p in parts if p):
            loaded = load.load_text(part, f"{path.name}#{index}")
            out.append((path.name, index, loaded.documents[0] if loaded.documents else loaded.diagnostics))
    return out


def _kind(item: Any) -> Any:
    return item.data.get("kind") if isinstance(item, Document) and isinstance(item.data, dict) else None


def errors_for(doc: Document) -> list[diagnostics.Diagnostic]:
    body = {k: v for k, v in doc.data.items() if k != "_err"}
    doc = Document(doc.file, doc.index, doc.line, body, doc.text, doc.first_line)
    resources, problems = typed.to_resources([doc])
    problems += validate.validate(resources)
    return [p for p in problems if p.severity is diagnostics.Severity.ERROR and not p.flagged]


DOCS = corpus_documents()
UNPARSED = [d for d in DOCS if not isinstance(d[2], Document)]
MODELED = [d for d in DOCS if _kind(d[2]) in kinds.KINDS]


def test_corpus_present() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} missing (shared corpus not available)")
    skipped = sorted({_kind(d[2]) for d in DOCS if isinstance(d[2], Document)} - set(kinds.KINDS))
    assert set(skipped) <= UNMODELED, f"kinds skipped by this test: {skipped}"
    assert len(MODELED) >= 60


@pytest.mark.parametrize(("file", "index", "data"), MODELED, ids=[f"{f}#{i}" for f, i, _ in MODELED])
def test_corpus_document(file: str, index: int, data: Document) -> None:
    found = errors_for(data)
    if "_err" in data.data:
        assert found, f"{file}#{index} should be rejected ({data.data['_err']!r}) but was accepted"
    else:
        assert not found, [d.render() for d in found]


# Documents ruamel.yaml cannot parse although Go's YAML parser does: `[1.2.3.4, 001:db8::]` (a plain scalar ending
# in ':' inside a flow sequence). The loader (compiler/load.py) reports MW0001 for them; see the report to the lead.
KNOWN_UNPARSED = {("serviceentry-valid.yaml", 0)}


@pytest.mark.parametrize(("file", "index", "problems"), UNPARSED, ids=[f"{f}#{i}" for f, i, _ in UNPARSED])
def test_corpus_unparsed(file: str, index: int, problems: list[diagnostics.Diagnostic]) -> None:
    if (file, index) in KNOWN_UNPARSED:
        pytest.xfail("ruamel.yaml rejects a flow-sequence scalar ending in ':' that Go's YAML parser accepts")
    assert "invalid" in file, [p.render() for p in problems]
