"""The checked-in JSON Schemas match the models, and accept every corpus document the models accept
(jsonschema, draft 2020-12)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from compiler import load, schema, typed

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / ".." / "shared" / "corpus"


def test_checked_in_schemas_are_up_to_date() -> None:
    assert schema.check(ROOT / "schemas") == [], "run `meshward schemas --write schemas` (compiler.schema.write)"


def test_check_reports_drift(tmp_path: Path) -> None:
    schema.write(tmp_path)
    (tmp_path / "gateway.json").write_text("{}\n")
    (tmp_path / "stale.json").write_text("{}\n")
    problems = schema.check(tmp_path)
    assert any("gateway.json: out of date" in p for p in problems)
    assert any("stale.json" in p for p in problems)


def test_render_is_deterministic_and_well_formed() -> None:
    first, second = schema.render_all(), schema.render_all()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n")
    vs = schema.schema_for("VirtualService")
    assert vs["$schema"] == schema.DRAFT
    assert vs["properties"]["kind"] == {"const": "VirtualService"}
    jsonschema.Draft202012Validator.check_schema(vs)


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema.schema_for(kind))


def _corpus_documents() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if not CORPUS.is_dir():
        return out
    for path in sorted(CORPUS.rglob("*.yaml")):
        if path.name.endswith("-invalid.yaml") or "istio-crds" in path.parts:
            continue
        for index, part in enumerate(p for p in re.split(r"(?:^|\n)---", path.read_text()) if p.strip()):
            for doc in load.load_text(part).documents:
                resources, _ = typed.to_resources([doc])  # `kind: List` gives one resource per item
                for n, resource in enumerate(resources):
                    if "_err" not in resource.doc.data:
                        out.append((f"{path.relative_to(CORPUS)}#{index}.{n}", resource.doc.data))
    return out


VALID = _corpus_documents()


def test_corpus_found() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} missing (shared corpus not available)")
    assert len(VALID) > 20


@pytest.mark.parametrize(("name", "data"), VALID, ids=[n for n, _ in VALID])
def test_valid_corpus_document_passes_json_schema(name: str, data: dict[str, Any]) -> None:
    errors = [e.message for e in _validator(data["kind"]).iter_errors(data)]
    assert errors == [], name


def test_json_schema_rejects_unknown_field() -> None:
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "r"},
           "spec": {"hostz": ["r"]}}
    errors = list(_validator("VirtualService").iter_errors(doc))
    assert errors and "hostz" in errors[0].message
