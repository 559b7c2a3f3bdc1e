"""Every field Istio's CRD schemas declare is a field of our models, and our models declare no field Istio lacks."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

from compiler import kinds

CRDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "istio-crds" / "customresourcedefinitions.gen.yaml"
ISTIO_KINDS = [k for k, info in kinds.KINDS.items() if info.group.endswith("istio.io")]


@pytest.fixture(scope="module")
def crd_specs() -> dict[str, dict[str, Any]]:
    if not CRDS.exists():
        pytest.skip(f"{CRDS} missing (shared corpus not available)")
    out: dict[str, dict[str, Any]] = {}
    for doc in YAML(typ="safe").load_all(CRDS.read_text()):
        if doc:
            version = doc["spec"]["versions"][0]
            out[doc["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to (through Optional, list, dict values, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict:
        return _models_in(args[1])
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        return [m for a in args for m in _models_in(a)]
    return []


def _compare(model: type[BaseModel], schema: dict[str, Any], path: str, problems: list[str]) -> None:
    if "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        schema = schema["additionalProperties"]
    props = schema.get("properties", {})
    aliases = {(f.alias or name): f for name, f in model.model_fields.items()}
    for key in sorted(set(props) - set(aliases)):
        problems.append(f"{path}.{key}: in the CRD, missing from {model.__name__}")
    for key in sorted(set(aliases) - set(props)):
        problems.append(f"{path}.{key}: in {model.__name__}, not in the CRD")
    for key in sorted(set(props) & set(aliases)):
        sub = props[key]
        sub = sub.get("items", sub) if sub.get("type") == "array" else sub
        for child in _models_in(aliases[key].annotation):
            _compare(child, sub, f"{path}.{key}", problems)


@pytest.mark.parametrize("kind", ISTIO_KINDS)
def test_model_fields_match_crd(kind: str, crd_specs: dict[str, dict[str, Any]]) -> None:
    problems: list[str] = []
    _compare(kinds.KINDS[kind].model, crd_specs[kind], "spec", problems)
    assert problems == []
