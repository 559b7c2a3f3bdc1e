"""Route tables written from their virtual hosts' cached bytes must be byte-identical to protobuf's deterministic
serialization of the whole message: the version is the hash of these bytes, and replicas must agree on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler import build, translate
from compiler.emit import route, wire

ROOT = Path(__file__).resolve().parents[2]
TREES = [ROOT / "policies-example", *sorted((ROOT / "tests" / "golden" / "cases").glob("*/input"))]


@pytest.mark.parametrize("tree", TREES, ids=lambda p: p.parent.name if p.name == "input" else p.name)
def test_route_tables_from_parts_equal_whole_serialization(tree: Path) -> None:
    result = build.build([tree])
    if not result.ok:
        pytest.skip("a broken-input case")
    tables = {rc for proxy in result.proxies() for rc in translate.proxy_config(result.model, proxy).route_configs}
    if not tables:
        pytest.skip("no HTTP route tables in this tree")
    for rc in tables:
        whole = route.of(rc).SerializeToString(deterministic=True)
        parts = route.serialized(rc, lambda vh: route.virtual_host(vh).SerializeToString(deterministic=True))
        assert parts == whole, rc.name


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**32 - 1, 2**63])
def test_varint_matches_protobuf(value: int) -> None:
    from google.protobuf.internal import encoder

    assert wire.varint(value) == encoder._VarintBytes(value)
