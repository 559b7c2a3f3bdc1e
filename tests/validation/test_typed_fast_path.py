"""typed's one-pass path for well-formed documents accepts only what the full path accepts, with the same result."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import typed
from compiler.load import Document
from tests.validation.test_validation_fuzz import SEEDS, VALUES, mutated

ENVELOPE_VALUES = st.one_of(VALUES, st.sampled_from(
    ["v1", "networking.istio.io/v1", "networking.istio.io/v2", "security.istio.io/v1alpha3", "discovery.k8s.io/v1",
     "List", "Namespace", "Service", "VirtualService", "EndpointSlice", "default", "a.b", "A", "x" * 64, None,
     "2020-01-01T00:00:00Z", "2020-13-01"]))


@st.composite
def envelopes(draw: st.DrawFn) -> Any:
    """A seed or mutated seed, with its apiVersion, kind and metadata fields also dropped or replaced."""
    data = copy.deepcopy(draw(st.one_of(st.sampled_from(SEEDS), mutated())))
    if not isinstance(data, dict):
        return data
    meta = data.get("metadata")
    for target, keys in ((data, ["apiVersion", "kind", "status", "extra"]),
                         (meta, ["name", "namespace", "labels", "annotations", "creationTimestamp"])):
        if isinstance(target, dict) and draw(st.booleans()):
            key = draw(st.sampled_from(keys))
            if draw(st.booleans()):
                target.pop(key, None)
            else:
                target[key] = draw(ENVELOPE_VALUES)
    return data


def _full(doc: Document) -> tuple[list[Any], list[Any]]:
    problems: list[Any] = []
    found = [res for item in typed._expand(doc, problems) if (res := typed._safe_one(item, problems)) is not None]
    return found, problems


def _fields(res: Any) -> tuple[Any, ...]:
    return (res.kind, res.api_version, res.name, res.namespace, res.namespace_declared, res.labels,
            res.annotations, type(res.spec), res.spec.model_dump(), res.doc)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes())
def test_fast_path_agrees_with_full_path(data: Any) -> None:
    doc = Document("fuzz.yaml", 0, 1, data, "", 1)
    fast = typed._well_formed(doc)
    if fast is None:
        return
    found, problems = _full(doc)
    assert problems == [] and len(found) == 1
    assert _fields(fast) == _fields(found[0])


def test_seeds_take_the_fast_path() -> None:
    for seed in SEEDS:
        assert typed._well_formed(Document("seed.yaml", 0, 1, seed, "", 1)) is not None, seed["kind"]
