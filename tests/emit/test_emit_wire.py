"""Route tables written from their virtual hosts' cached bytes must be byte-identical to protobuf's deterministic
serialization of the whole message: the version is the hash of these bytes, and replicas must agree on it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler import build, emit, model, translate
from compiler.emit import assembled, cluster, endpoint, route
from meshxds import refs, wire

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
        parts = route.serialized(rc, [route.vhost_field_of_parts(vh, [route.route(r).SerializeToString(deterministic=True)
                                                                       for r in vh.routes]) for vh in rc.virtual_hosts])
        assert parts == whole, rc.name


@pytest.mark.parametrize("tree", TREES, ids=lambda p: p.parent.name if p.name == "input" else p.name)
def test_clusters_and_load_assignments_from_parts_equal_whole_serialization(tree: Path) -> None:
    """EDS clusters (name + shape + metadata) and load assignments (name + endpoint encodings) written from parts
    equal the serialization of the message `cluster.of` / `endpoint.of` build, and carry the same references."""
    result = build.build([tree])
    if not result.ok:
        pytest.skip("a broken-input case")
    configs = [translate.proxy_config(result.model, proxy) for proxy in result.proxies()]
    clusters = {c for cfg in configs for c in cfg.clusters if assembled.applies(c)}
    assignments = {la for cfg in configs for la in cfg.load_assignments}
    if not clusters and not assignments:
        pytest.skip("no EDS clusters in this tree")
    memo = emit.EmitMemo()
    for c in clusters:
        message = cluster.of(c)
        res = assembled.eds_cluster(c, memo)
        assert res.serialized == message.SerializeToString(deterministic=True), c.name
        assert res.refs == refs.of(message), c.name
    for la in assignments:
        message = endpoint.of(la)
        res = assembled.load_assignment(la)
        assert res.serialized == message.SerializeToString(deterministic=True), la.cluster_name
        assert res.refs == refs.of(message), la.cluster_name


def test_split_before_cuts_at_the_first_field_of_that_number_or_higher() -> None:
    from envoy.config.cluster.v3 import cluster_pb2

    data = cluster_pb2.Cluster(name="a", connect_timeout={"seconds": 1}, alt_stat_name="x").SerializeToString(
        deterministic=True)
    head, tail = wire.split_before(data, 25)
    assert head + tail == data
    assert cluster_pb2.Cluster.FromString(head) == cluster_pb2.Cluster(name="a", connect_timeout={"seconds": 1})
    assert cluster_pb2.Cluster.FromString(tail) == cluster_pb2.Cluster(alt_stat_name="x")


@pytest.mark.parametrize("tree", TREES, ids=lambda p: p.parent.name if p.name == "input" else p.name)
def test_emitted_route_tables_equal_whole_serialization_across_patches(tree: Path) -> None:
    """The emitter's route tables (virtual hosts written from their routes' cached serializations, reused by
    position for a patched table) and their references (filters configured per route) equal what the whole
    message gives."""
    result = build.build([tree])
    if not result.ok:
        pytest.skip("a broken-input case")
    tables = sorted({rc for proxy in result.proxies()
                     for rc in translate.proxy_config(result.model, proxy).route_configs}, key=lambda rc: rc.name)
    if not any(rc.virtual_hosts for rc in tables):
        pytest.skip("no HTTP route tables in this tree")
    memo = emit.EmitMemo()
    for rc in (t for t in tables if t.virtual_hosts):
        # the table as emitted, then with its last virtual host's routes swapped for its first's (a patch)
        last = rc.virtual_hosts[-1]
        patched = dataclasses.replace(rc, virtual_hosts=(*rc.virtual_hosts[:-1], dataclasses.replace(
            last, routes=rc.virtual_hosts[0].routes)))
        for table in (rc, patched):
            res = assembled.route_table(table, memo)
            message = route.of(table)
            assert res.serialized == message.SerializeToString(deterministic=True), table.name
            assert res.refs == refs.of(message), table.name


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**21, 2**32 - 1, 2**63])
def test_varint_matches_protobuf(value: int) -> None:
    from google.protobuf.internal import encoder

    assert wire.varint(value) == encoder._VarintBytes(value)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300])
@pytest.mark.parametrize("field", ["name", "alt_stat_name", "load_assignment"])  # numbers 1, 28, 33: keys 1-2 bytes
def test_length_delimited_matches_protobuf(field: str, size: int) -> None:
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.config.endpoint.v3 import endpoint_pb2

    number = cluster_pb2.Cluster.DESCRIPTOR.fields_by_name[field].number
    if field == "load_assignment":
        inner = endpoint_pb2.ClusterLoadAssignment(cluster_name="x" * size)
        whole = cluster_pb2.Cluster(load_assignment=inner)
        data = inner.SerializeToString(deterministic=True)
    else:
        whole = cluster_pb2.Cluster(**{field: "x" * size})
        data = b"x" * size
    expected = whole.SerializeToString(deterministic=True)
    assert (wire.length_delimited(number, data) if size or field == "load_assignment" else b"") == expected


_UINT32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(st.builds(model.Endpoint, address=st.text(max_size=300), port=_UINT32, weight=_UINT32,
                 healthy=st.booleans()))
def test_lb_endpoint_written_by_fields_equals_the_message(ep: model.Endpoint) -> None:
    """Zero ports (written: a oneof) and weights (left out, the wrapper kept), empty, long and non-ASCII
    addresses (two-byte lengths), both health states."""
    expected = wire.length_delimited(2, endpoint.lb_endpoint(ep).SerializeToString(deterministic=True))
    assert assembled._lb_endpoint(ep) == expected
