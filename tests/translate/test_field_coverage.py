"""No field silently ignored: every field of every kind meshward models (Istio's CRD schemas, and meshward's own
schemas of the Kubernetes kinds) is compiled with a golden case that sets it, warned about (MW0403 at its line)
whenever set, or inert in Pilot too; the table is compiler.coverage, and README's lists come from it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import build, coverage
from meshward import cli

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT.parent / "shared" / "corpus" / "istio-crds" / "customresourcedefinitions.gen.yaml"
CASES = ROOT / "tests" / "golden" / "cases"
KUBE_KINDS = {"Service": ROOT / "schemas" / "service.json"}


def _paths(schema: dict[str, Any], at: str, defs: dict[str, Any]) -> Iterator[str]:
    """Every field path below `at` in an OpenAPI / JSON schema (`[]` list items, `{}` map values)."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    for option in schema.get("anyOf", ()):
        yield from _paths(option, at, defs)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        yield from _paths(schema["items"], at + "[]", defs)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _paths(schema["additionalProperties"], at + "{}", defs)
    for name, sub in (schema.get("properties") or {}).items():
        yield f"{at}.{name}"
        yield from _paths(sub, f"{at}.{name}", defs)


def _schemas() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for doc in yaml.safe_load_all(CRDS.read_text()):
        kind = doc["spec"]["names"]["kind"] if doc else None
        if kind in coverage.TABLE:
            version = next(v for v in doc["spec"]["versions"] if v.get("storage"))
            out[kind] = {"spec", *_paths(version["schema"]["openAPIV3Schema"]["properties"]["spec"], "spec", {})}
    for kind, path in KUBE_KINDS.items():
        schema = json.loads(path.read_text())
        out[kind] = {"spec", *_paths(schema["properties"]["spec"], "spec", schema.get("$defs", {}))}
    return out


needs_crds = pytest.mark.skipif(not CRDS.is_file(), reason="../shared/corpus/istio-crds is not present")


@needs_crds
def test_every_field_of_every_modeled_kind_has_an_entry() -> None:
    schemas = _schemas()
    assert set(schemas) == set(coverage.TABLE), "a kind of the table has no schema here"
    missing = sorted(f"{kind} {p}" for kind, paths in schemas.items() for p in paths
                     if p != "spec" and coverage.entry_for(kind, p) is None)
    assert not missing, "fields with no entry in compiler/coverage.py:\n" + "\n".join(missing)


@needs_crds
def test_every_entry_is_a_field_of_the_schema() -> None:
    schemas = _schemas()
    stale = [f"{kind} {key}" for kind, entries in coverage.TABLE.items() for key in entries
             if not any(p in schemas[kind] for p in coverage.schema_paths(kind, key))]
    assert not stale, stale


def _case_documents(case: str) -> list[dict[str, Any]]:
    files = sorted((CASES / case / "input").glob("*.yaml"))
    source = CASES / case / "source.txt"
    if source.is_file():
        for line in source.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            target = ROOT / line if line else None
            if target is not None and target.exists():
                files += sorted(target.rglob("*.yaml")) if target.is_dir() else [target]
    return [d for f in files for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict)]


@pytest.mark.parametrize("kind,key,case", [(k, key, e.case) for k, entries in coverage.TABLE.items()
                                           for key, e in entries.items() if isinstance(e, coverage.Compiled)])
def test_a_compiled_field_is_set_by_its_golden_case(kind: str, key: str, case: str) -> None:
    docs = [d for d in _case_documents(case) if d.get("kind") == kind]
    finder = coverage.Finder(kind, [key])
    assert any(next(finder.find(d), None) for d in docs), (
        f"golden case {case} sets no {kind} {key}")


WARNED_TREE = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: shop}
spec:
  hosts: [db.shop.svc.cluster.local]
  tcp:
  - match:
    - destinationSubnets: [10.0.0.0/8]
    route:
    - destination: {host: db.shop.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  ports: [{name: tcp, port: 5432}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: shop}
spec:
  host: db.shop.svc.cluster.local
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 5432}
        tls: {mode: SIMPLE, caCrl: /etc/crl.pem}
"""


def test_a_warned_field_gives_mw0403_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text(WARNED_TREE)
    notes = [d for d in build.build([tmp_path]).diagnostics if d.code == "MW0403"]
    found = {(d.path, d.position.line) for d in notes}
    assert found == {("spec.tcp[0].match[0].destinationSubnets", 8),
                     ("spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.caCrl", 29)}, [d.render() for d in notes]
    assert all(d.severity.value == "warning" for d in notes)


def test_readme_lists_are_generated_from_the_table() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- fields:begin -->\n(.*?)<!-- fields:end -->", readme, re.DOTALL)
    assert block is not None and block.group(1) == coverage.render_markdown(), (
        "README.md's field lists are out of date: run `meshward fields --write`")


def test_validate_reports_the_fields_it_does_not_compile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mesh.yaml").write_text(WARNED_TREE)
    assert cli.main(["validate", str(tmp_path)]) == 0, "a warning does not fail validate by default"
    out = capsys.readouterr().out
    assert out.count("warning MW0403") == 2 and "mesh.yaml:8:" in out, out
    assert cli.main(["validate", str(tmp_path), "--failure-threshold", "warning"]) == 1
